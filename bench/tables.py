"""Markdown tables for docs/PERF.md from the JSON that bench/gpu_comm.py and bench/moe_step.py
write. No GPU needed: it only reads files.

usage: python bench/tables.py fused|goal|floors|moe FILE.json
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


def fused(path) -> list[str]:
    """(a): per world, hidden and tokens: unfused, fused (flashinfer's choice), two-shot, speedups."""
    lines = ["| GPUs | hidden | tokens | unfused µs | fused µs | fused speedup | two-shot µs | two-shot speedup |",
             "|---|---|---|---|---|---|---|---|"]
    for res in _worlds(path):
        for r in res["rows"]:
            if r["kind"] == "fused-vs-unfused":
                lines.append(f"| {r['world']} | {r['hidden']} | {r['tokens']} | {_us(r['unfused_us'])} | "
                             f"{_us(r.get('fused_us'))} | {_x(r.get('speedup'))} | "
                             f"{_us(r.get('fused_twoshot_us'))} | {_x(r.get('speedup_twoshot'))} |")
    return lines


def goal(path, max_tokens: int = 128, target: float = 2.0) -> list[str]:
    """Per world and hidden: the smallest fused speedup at <= max_tokens, and where it is met."""
    lines = [f"| GPUs | hidden | min speedup at ≤ {max_tokens} tokens | ≥ {target}× up to |", "|---|---|---|---|"]
    for res in _worlds(path):
        by_hidden = {}
        for r in res["rows"]:
            if r["kind"] == "fused-vs-unfused" and "speedup" in r and r["tokens"] <= max_tokens:
                by_hidden.setdefault(r["hidden"], []).append(r)
        for hidden, rows in sorted(by_hidden.items()):
            rows.sort(key=lambda r: r["tokens"])
            met = None
            for r in rows:
                if r["speedup"] < target:
                    break
                met = r["tokens"]
            lines.append(f"| {res['world']} | {hidden} | {min(r['speedup'] for r in rows):.2f}× | "
                         f"{'–' if met is None else f'{met} tokens'} |")
    return lines


def floors(path) -> list[str]:
    """(c): the bf16 matmul rate and NCCL bus bandwidth per message size."""
    lines = []
    for res in _worlds(path):
        for r in res["rows"]:
            if r["kind"] == "matmul":
                lines.append(f"bf16 matmul {r['n']}×{r['n']}×{r['n']}: {r['us']:.0f} µs, {r['TFLOPs']:.0f} TFLOP/s")
    lines += ["", "| GPUs | hidden | tokens | bytes | all-reduce µs | bus bandwidth GB/s |", "|---|---|---|---|---|---|"]
    for res in _worlds(path):
        for r in res["rows"]:
            if r["kind"] == "fused-vs-unfused":
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
        pairs.setdefault((r["world"], r["tokens"]), {})["double" if r["sites"] else "once"] = r
    for (world, tokens), p in sorted(pairs.items()):
        once, double = p["once"], p["double"]
        busbw = bus_bandwidth_GBps(world, tokens * MOE_HIDDEN * 2, once["raw_allreduce_us"])
        lines.append(f"| {world} | {tokens} | {once['step_us']:.1f} µs | {double['step_us']:.1f} µs | "
                     f"+{(double['step_us'] / once['step_us'] - 1) * 100:.1f}% | {once['comm_us']:.1f} µs | "
                     f"{double['comm_us']:.1f} µs | {once['raw_allreduce_us']:.1f} µs | "
                     f"{once['comm_vs_allreduce']:.2f} | {busbw:.0f} GB/s |")
    return lines


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("table", choices=("fused", "goal", "floors", "moe"))
    p.add_argument("path")
    args = p.parse_args(argv)
    try:
        lines = {"fused": fused, "goal": goal, "floors": floors, "moe": moe}[args.table](args.path)
    except (OSError, ValueError, KeyError) as e:
        print(f"bench/tables.py: cannot read {args.path} as {args.table} results: {type(e).__name__}: {e}",
              file=sys.stderr)
        return 2
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
