"""Markdown tables for docs/PERF.md from the JSON that bench/gpu_comm.py and bench/moe_step.py
write. No GPU needed: it only reads files.

usage: python bench/tables.py fused|goal|floors|moe|moe-fused FILE.json
"""
from __future__ import annotations

import argparse
import json
import sys


MOE_HIDDEN = 2048  # bench/moe_step.py's D; its rows do not record it


def bus_bandwidth_GBps(world: int, nbytes: int, us: float) -> float:
    """NCCL's all-reduce bus bandwidth: 2(n-1)/n of the message per rank, over the time."""
    return 2 * (world - 1) / world * nbytes / (us * 1e-6) / 1e9


def _worlds(path):
    with open(path) as f:
        data = json.load(f)
    return data if isinstance(data, list) else [data]


def _x(v):
    return "–" if v is None else f"{v:.2f}×"


def _us(v):
    return "–" if v is None else f"{v:.1f}"


VARIANT_COLS = (("oneshot", "one-shot"), ("twoshot", "two-shot"), ("default", "flashinfer's pick"))


def _rows(res):
    """fused-vs-unfused rows; files written before the table existed name flashinfer's pick
    `fused_us` and the two-shot kernel `fused_twoshot_us`."""
    for r in res["rows"]:
        if r["kind"] == "fused-vs-unfused":
            if "fused_us" in r and "default_us" not in r:
                r = dict(r, default_us=r["fused_us"], twoshot_us=r.get("fused_twoshot_us"))
            yield r


def peak_busbw(res) -> float | None:
    return max((r["busbw_GBps"] for r in res["rows"] if r["kind"] == "peak-busbw"), default=None)


def floor_us(world: int, tokens: int, hidden: int, peak_GBps: float | None, itemsize: int = 2) -> float | None:
    """The bus-bandwidth floor: the all-reduce's bus bytes (2(n-1)/n of the message) at the peak
    NCCL bus bandwidth of the same run."""
    if not peak_GBps:
        return None
    return 2 * (world - 1) / world * tokens * hidden * itemsize / (peak_GBps * 1e3)


def best(r) -> tuple[str, float]:
    """The fastest timing of the row (unfused included; flashinfer's pick is one of the two kernels
    timed again, so it counts too: a variant "reaches" what any timing of it reached)."""
    us = {v: r[f"{v}_us"] for v in ("oneshot", "twoshot", "default", "unfused") if r.get(f"{v}_us") is not None}
    v = min(us, key=us.get)
    return v, us[v]


def fused(path) -> list[str]:
    """(a): per world, hidden and tokens: each variant's time and speedup over unfused, the chosen
    variant, and the best variant's distance from the bus-bandwidth floor."""
    head = " | ".join(f"{name} µs | ×" for _, name in VARIANT_COLS)
    lines = [f"| GPUs | hidden | tokens | unfused µs | {head} | chosen | chosen × | floor µs | best / floor |",
             "|---|---|---|---|" + "---|---|" * len(VARIANT_COLS) + "---|---|---|---|"]
    for res in _worlds(path):
        peak = peak_busbw(res)
        for r in _rows(res):
            cols = [f"{_us(r.get(f'{v}_us'))} | {_ratio(r, v)}" for v, _ in VARIANT_COLS]
            floor = floor_us(r["world"], r["tokens"], r["hidden"], peak)
            lines.append(f"| {r['world']} | {r['hidden']} | {r['tokens']} | {_us(r['unfused_us'])} | "
                         + " | ".join(cols) + f" | {r.get('chosen', '–')} | {_ratio(r, r.get('chosen'))} | "
                         f"{'–' if floor is None else f'{floor:.2f}'} | "
                         f"{'–' if floor is None else _times(best(r)[1] / floor)} |")
    return lines


def _times(v: float) -> str:
    return f"{v:.1f}×" if v < 10 else f"{v:.0f}×"


def _ratio(r, v):
    if v is None or r.get(f"{v}_us") is None:
        return "–"
    return _x(r["unfused_us"] / r[f"{v}_us"])


def goal(path, max_tokens: int = 128, target: float = 2.0) -> list[str]:
    """Per world and hidden: the smallest chosen/unfused ratio (goal: >= 1.0 at every size); at
    <= max_tokens, the sizes where some variant reaches `target` and whether the chosen one does
    there; the smallest ratio of flashinfer's pick; the best variant's distance from the floor."""
    lines = [f"| GPUs | hidden | min chosen / unfused | sizes ≤ {max_tokens} tokens where a variant reaches "
             f"{target}×: chosen reaches it | min flashinfer's pick / unfused | best / floor |",
             "|---|---|---|---|---|---|"]
    for res in _worlds(path):
        peak, by_hidden = peak_busbw(res), {}
        for r in _rows(res):
            if "chosen" in r:
                by_hidden.setdefault(r["hidden"], []).append(r)
        for hidden, rows in sorted(by_hidden.items()):
            small = [r for r in rows if r["tokens"] <= max_tokens and r["unfused_us"] / best(r)[1] >= target]
            met = [r for r in small if r["unfused_us"] / r["chosen_us"] >= target]
            missed = ", ".join(str(r["tokens"]) for r in small if r not in met)
            dist = [best(r)[1] / f for r in rows if (f := floor_us(r["world"], r["tokens"], hidden, peak))]
            lines.append(f"| {res['world']} | {hidden} | {min(r['unfused_us'] / r['chosen_us'] for r in rows):.2f}× | "
                         f"{len(met)} of {len(small)}{f' (not at {missed})' if missed else ''} | "
                         f"{min(r['unfused_us'] / r['default_us'] for r in rows if r.get('default_us')):.2f}× | "
                         f"{f'{_times(min(dist))[:-1]}–{_times(max(dist))}' if dist else '–'} |")
    return lines


def floors(path) -> list[str]:
    """(c): the bf16 matmul rate, the peak NCCL bus bandwidth and the bus bandwidth per message size."""
    lines = []
    for res in _worlds(path):
        for r in res["rows"]:
            if r["kind"] == "matmul":
                lines.append(f"bf16 matmul {r['n']}×{r['n']}×{r['n']}: {r['us']:.0f} µs, {r['TFLOPs']:.0f} TFLOP/s")
            if r["kind"] == "peak-busbw":
                lines.append(f"{r['world']} GPUs: NCCL all-reduce of {r['bytes'] / 2 ** 20:.0f} MiB: "
                             f"{r['us']:.0f} µs, bus bandwidth {r['busbw_GBps']:.0f} GB/s (the floor's peak)")
    lines += ["", "| GPUs | hidden | tokens | bytes | all-reduce µs | bus bandwidth GB/s |", "|---|---|---|---|---|---|"]
    for res in _worlds(path):
        for r in _rows(res):
            nbytes = r["tokens"] * r["hidden"] * 2
            lines.append(f"| {r['world']} | {r['hidden']} | {r['tokens']} | {nbytes:,} | "
                         f"{r['allreduce_us']:.1f} | {r['busbw_GBps']:.1f} |")
    return lines


def moe(path) -> list[str]:
    """(b): the MoE step, exactly once against the #23729 double sum, and its communication."""
    lines = ["| GPUs | T | step, exactly once | step, double sum | double costs | comm, exactly once | "
             "comm, double | raw all-reduce | comm / raw | busbw of raw |", "|---|---|---|---|---|---|---|---|---|---|"]
    pairs = {}
    with open(path) as f:
        rows = json.load(f)  # moe_step.py writes one flat list of rows
    for r in rows:
        if "variant" not in r:  # the fused-next-layer rows: moe_fused
            pairs.setdefault((r["world"], r["tokens"]), {})["double" if r["sites"] else "once"] = r
    for (world, tokens), p in sorted(pairs.items()):
        once, double = p["once"], p["double"]
        busbw = bus_bandwidth_GBps(world, tokens * MOE_HIDDEN * 2, once["raw_allreduce_us"])
        lines.append(f"| {world} | {tokens} | {once['step_us']:.1f} µs | {double['step_us']:.1f} µs | "
                     f"+{(double['step_us'] / once['step_us'] - 1) * 100:.1f}% | {once['comm_us']:.1f} µs | "
                     f"{double['comm_us']:.1f} µs | {once['raw_allreduce_us']:.1f} µs | "
                     f"{once['comm_vs_allreduce']:.2f} | {busbw:.0f} GB/s |")
    return lines


def moe_fused(path) -> list[str]:
    """(b'): the MoE step ending in the next layer's fused step: the chosen variant beside the
    unfused one, flashinfer's pick and each kernel forced (step with experts, and comm alone)."""
    with open(path) as f:
        rows = [r for r in json.load(f) if "variant" in r]
    by = {}
    for r in rows:
        by.setdefault((r["world"], r["tokens"]), {})[r["variant"]] = r
    lines = ["| GPUs | T | chosen | step, chosen | step, unfused | chosen saves | step, flashinfer's pick | "
             "comm, chosen | comm, unfused | comm, one-shot | comm, two-shot |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for (world, tokens), v in sorted(by.items()):
        c, u = v[v["unfused"]["chosen"]], v["unfused"]
        comm = lambda k: f"{v[k]['comm_us']:.1f} µs" if k in v else "–"  # noqa: E731
        lines.append(f"| {world} | {tokens} | {c['variant']} | {c['step_us']:.1f} µs | {u['step_us']:.1f} µs | "
                     f"{(1 - c['step_us'] / u['step_us']) * 100:.1f}% | {v['default']['step_us']:.1f} µs | "
                     f"{c['comm_us']:.1f} µs | {u['comm_us']:.1f} µs | {comm('oneshot')} | {comm('twoshot')} |")
    return lines


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("table", choices=("fused", "goal", "floors", "moe", "moe-fused"))
    p.add_argument("path")
    args = p.parse_args(argv)
    try:
        lines = {"fused": fused, "goal": goal, "floors": floors, "moe": moe, "moe-fused": moe_fused}[args.table](args.path)
    except (OSError, ValueError, KeyError) as e:
        print(f"bench/tables.py: cannot read {args.path} as {args.table} results: {type(e).__name__}: {e}",
              file=sys.stderr)
        return 2
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
