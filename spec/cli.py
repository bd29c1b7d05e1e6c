"""`sumonce prove`: run the property table, print verdicts and counterexamples.

Exit 0 only when every property expected to hold is proved and every expected refutation (known
finding, historical guard) is refuted; 1 otherwise (including any `unknown`); 2 on bad arguments.
"""
from __future__ import annotations

import argparse
import fnmatch
import json
import os
import sys
import time
from pathlib import Path

from .check import Result, run_all
from .properties import Expect, all_properties
from .solve import DEFAULT_TIMEOUT_MS
from sumonce.proto.eras import Era

ERA_NAMES = tuple(e.value for e in Era)


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        print(f"sumonce prove: {message}", file=sys.stderr)
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="sumonce prove", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    p.add_argument("--timeout-ms", type=int, default=DEFAULT_TIMEOUT_MS, help="z3 timeout per check")
    p.add_argument("--only", metavar="GLOB", help="run the properties whose name matches, e.g. 'exactly-once:*'")
    p.add_argument("--no-known-findings", action="store_true",
                   help="do not exclude the known findings (spec/findings.py) from exactly-once")
    p.add_argument("--counterexamples", metavar="DIR", help="write each counterexample as JSON for `sumonce repro`")
    p.add_argument("--list", action="store_true", help="list the properties and exit")
    p.add_argument("--era", default="all", metavar="ERA",
                   help="0.5.11 (the #23748 helper), 0.5.23 (the stage boundary sums), or all (default)")
    p.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1),
                   help="worker processes (default: up to 2)")
    return p


def verdict_text(r: Result) -> str:
    text = r.status.value
    if not r.lift_ok:
        return text + " (LIFT MISMATCH)"
    if r.prop.expect == Expect.REFUTED:
        text += " (expected)" if r.passed else " (expected refuted)"
    return text


def as_json(r: Result) -> dict:
    return {"property": r.prop.name, "era": r.prop.era, "kind": r.prop.kind.value, "meaning": r.prop.meaning,
            "scope": r.prop.scope, "expect": r.prop.expect.value, "verdict": r.status.value,
            "passed": r.passed, "seconds": round(r.seconds, 4), "detail": r.detail,
            "counterexample": r.counterexample, "lift_ok": r.lift_ok,
            **{k: v for k, v in r.extra.items() if k != "wall"}}


def print_table(results: list[Result], wall: float) -> None:
    from rich.console import Console
    from rich.table import Table
    console = Console(width=None if sys.stdout.isatty() else 160, highlight=False)
    table = Table(title=f"sumonce prove: {len(results)} properties", show_lines=False)
    for col in ("property", "era", "kind", "verdict", "time", "detail"):
        table.add_column(col, overflow="fold")
    for r in results:
        style = "green" if r.passed else "bold red"
        table.add_row(r.prop.name, r.prop.era, r.prop.kind.value, f"[{style}]{verdict_text(r)}[/]",
                      f"{r.seconds * 1000:.0f} ms", r.detail)
    console.print(table)
    console.file.flush()
    for r in results:
        if r.counterexample:
            print_counterexample(r)
    failed = [r for r in results if not r.passed]
    tally = {}
    for r in results:
        tally[r.status.value] = tally.get(r.status.value, 0) + 1
    summary = ", ".join(f"{n} {k}" for k, n in sorted(tally.items()))
    print(f"\n{summary}; {len(failed)} not as expected; {wall:.2f} s")


def print_counterexample(r: Result) -> None:
    """Plain lines (fast, and the same on a terminal, in a log and under grep)."""
    cx = r.counterexample
    lines = [f"\n{r.prop.name} ({verdict_text(r)}): {r.prop.meaning}"]
    if cx.get("model"):
        lines.append(f"  model      {cx['model']}  {cx.get('variant', '')}  guards@{cx.get('version', '')}")
    lines.append(f"  flags      {cx['flags'] or '(defaults)'}")
    lines.append("  state      " + ", ".join(f"{k}={v}" for k, v in cx["state"].items()))
    lines.append("  sizes      " + ", ".join(f"{k}={v}" for k, v in cx["sizes"].items()))
    lines.append(f"  flags seen Q={cx['Q']} V={cx['V']} F(block)={cx['block_F']} R(block)={cx['block_R']}"
                 + (f" F(decoder)={cx['decoder_F']} R(decoder)={cx['decoder_R']}" if "decoder_F" in cx else ""))
    for variant, n in cx.get("counts", {}).items():
        lines.append(f"  sums       {variant}: EP {n['ep']}, MoE-TP {n['moe_tp']}")
    if cx.get("axes"):
        lines.append(f"  wrong      {cx['axes']}")
    if cx.get("outcome"):
        lines.append(f"  outcome    {cx['outcome']}")
    if cx.get("label"):
        lines.append(f"  reachable  NO: {cx['label']}")
    if cx.get("era"):
        lines.append(f"  0.5.23     " + ", ".join(f"{k}={cx[k]}" for k in
                                                 ("model_0523", "V_0523", "complete", "ffn_exit", "reduction_group",
                                                  "counts_0523", "model_runs_0523") if k in cx))
    if cx.get("upstream"):
        lines.append(f"  upstream   {cx['upstream']}")
    lines.append(f"  python     the claim evaluated in plain Python here: {cx['python_claim']}"
                 + ("" if r.lift_ok else "  <- differs from z3: the lift is wrong"))
    print("\n".join(lines))


def write_counterexamples(results: list[Result], folder: str) -> None:
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    for r in results:
        # NOTE: `sumonce repro` executes the 0.5.11 era only; other eras' witnesses stay in --json.
        if r.counterexample and r.counterexample.get("model") and r.prop.era == "0.5.11":
            name = r.prop.name.replace(":", "_").replace("@", "_").replace("#", "").replace("/", "_")
            (out / f"{name}.json").write_text(json.dumps(r.counterexample, indent=2))


def prove_main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    if args.timeout_ms < 1:
        print("sumonce prove: --timeout-ms must be at least 1", file=sys.stderr)
        return 2
    if args.era != "all" and args.era not in ERA_NAMES:
        print(f"sumonce prove: unknown --era {args.era!r}; allowed: {', '.join(ERA_NAMES)}, all", file=sys.stderr)
        return 2
    props = all_properties(known_findings=not args.no_known_findings, era=args.era)
    if args.only:
        props = [p for p in props if fnmatch.fnmatch(p.name, args.only)]
        if not props:
            print(f"sumonce prove: no property matches {args.only!r}; see `sumonce prove --list`", file=sys.stderr)
            return 2
    if args.list:
        for p in props:
            print(f"{p.name}\t{p.kind.value}\t{p.expect.value}\t{p.meaning}")
        return 0
    start = time.perf_counter()
    results = run_all(props, args.timeout_ms, jobs=max(1, args.jobs))
    from .eras import annotate_findings
    annotate_findings(results)
    wall = time.perf_counter() - start
    if args.counterexamples:
        write_counterexamples(results, args.counterexamples)
    if args.json:
        print(json.dumps({"results": [as_json(r) for r in results], "seconds": round(wall, 3),
                          "passed": all(r.passed for r in results)}, indent=2))
    else:
        print_table(results, wall)
    return 0 if all(r.passed for r in results) else 1
