"""Performance, from the JSON bench/gpu_comm.py and bench/moe_step.py write (docs/perf/<machine>/):
bus bandwidth against message size, fused vs unfused against tokens, and the MoE step's
communication per configuration. The numbers are the benchmarks'; nothing is measured here."""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

from . import charts

BF16 = 2
"""bench/gpu_comm.py's all-reduce rows are bf16 (tokens x hidden x 2 bytes)."""


class PerfError(ValueError):
    """A perf folder or file the report cannot read: names what is wrong."""


@dataclass
class PerfSection:
    machine: str
    charts: list[str]


def load(path: str) -> list[dict]:
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise PerfError(f"--perf {path}: {getattr(e, 'strerror', None) or e}") from None
    return data if isinstance(data, list) else [data]


def comm_rows(worlds: list[dict]) -> list[dict]:
    return [r for w in worlds for r in w.get("rows", []) if r.get("kind") == "fused-vs-unfused"]


def _log2_labels(values):
    return [f"2^{int(math.log2(v))}" if v > 0 and float(v).is_integer() and (int(v) & (int(v) - 1)) == 0
            else str(v) for v in values]


def bandwidth(rows: list[dict], machine: str) -> str:
    """Bus bandwidth (GB/s) against message size (bytes, log scale), one line per (GPUs, hidden)."""
    c = charts.chart(charts.XY, f"{machine}: all-reduce bus bandwidth vs message size", logarithmic=True,
                     x_title="message size (bytes, log)", y_title="bus bandwidth (GB/s, log)", columns=2,
                     x_value_formatter=_bytes)
    sizes = set()
    for (world, hidden), rs in sorted(_by(rows, "world", "hidden").items()):
        pts = [(r["tokens"] * r["hidden"] * BF16, r["busbw_GBps"]) for r in rs if r.get("busbw_GBps")]
        sizes |= {x for x, _ in pts}
        c.add(f"{world} GPUs, hidden {hidden}", sorted(pts))
    if sizes:
        lo, hi = int(math.log2(min(sizes))), int(math.log2(max(sizes))) + 1
        c.x_labels = [2 ** k for k in range(lo, hi + 1, 2)]
        c.y_labels = [v for v in (0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50, 100, 200, 500)]
    return charts.svg(c)


def fused(rows: list[dict], machine: str, world: int) -> str:
    """Fused vs unfused (and flashinfer's two-shot) time against tokens, at one world size."""
    mine = [r for r in rows if r["world"] == world]
    tokens = sorted({r["tokens"] for r in mine})
    c = charts.chart(charts.LINE, f"{machine}, {world} GPUs: all-reduce + RMSNorm, fused vs unfused",
                     x_title="tokens", y_title="µs (log)", logarithmic=True, x_labels=_log2_labels(tokens),
                     columns=3)
    for hidden, rs in sorted(_by(mine, "hidden").items()):
        at = {r["tokens"]: r for r in rs}
        for key, name in (("unfused_us", "unfused"), ("fused_us", "fused"), ("fused_twoshot_us", "two-shot")):
            values = [at[t].get(key) if t in at else None for t in tokens]
            if any(v is not None for v in values):
                c.add(f"{name}, hidden {hidden}", values)
    return charts.svg(c)


def moe_step(rows: list[dict], machine: str) -> str:
    """The MoE step's communication time per configuration (exactly once vs double sums)."""
    worlds = sorted({r["world"] for r in rows})
    c = charts.chart(charts.BAR, f"{machine}: MoE step communication per configuration",
                     y_title="µs", x_labels=[f"{w} GPUs" for w in worlds], columns=2)
    for config in sorted({r["config"] for r in rows}):
        by_world = {r["world"]: r["comm_us"] for r in rows if r["config"] == config}
        c.add(config, [by_world.get(w) for w in worlds])
    return charts.svg(c)


def _bytes(n: float) -> str:
    for unit, size in (("MiB", 2 ** 20), ("KiB", 2 ** 10)):
        if n >= size:
            return f"{n / size:g} {unit}"
    return f"{n:g} B"


def _by(rows, *keys):
    out = {}
    for r in rows:
        out.setdefault(tuple(r[k] for k in keys) if len(keys) > 1 else r[keys[0]], []).append(r)
    return out


def section(folder: str) -> PerfSection:
    """Every chart a docs/perf/<machine> folder (or one JSON file of it) has data for."""
    p = Path(folder)
    files = [p] if p.is_file() else sorted(p.glob("*.json"))
    if not files:
        raise PerfError(f"--perf {folder}: no JSON files there; give a docs/perf/<machine> folder or a file")
    machine = (p.parent if p.is_file() else p).name
    out = []
    for f in files:
        if ".run" in f.name:
            continue  # NOTE: earlier runs kept beside the result (gpu_comm.run1.json): not drawn
        worlds = load(str(f))
        comm = comm_rows(worlds)
        if comm:
            out.append(bandwidth(comm, machine))
            out += [fused(comm, machine, w) for w in sorted({r["world"] for r in comm})]
        steps = [r for r in worlds if "comm_us" in r and "config" in r]
        if steps:
            out.append(moe_step(steps, machine))
    if not out:
        raise PerfError(f"--perf {folder}: no gpu_comm or moe_step rows found")
    return PerfSection(machine, out)
