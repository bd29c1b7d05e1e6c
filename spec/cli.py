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


class _Parser(argparse.ArgumentParser):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, allow_abbrev=False, **kwargs)

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
    return {"property": r.prop.name, "kind": r.prop.kind.value, "meaning": r.prop.meaning,
            "scope": r.prop.scope, "expect": r.prop.expect.value, "verdict": r.status.value,
            "passed": r.passed, "seconds": round(r.seconds, 4), "detail": r.detail,
            "counterexample": r.counterexample, "lift_ok": r.lift_ok,
            **{k: v for k, v in r.extra.items() if k != "wall"}}


def print_table(results: list[Result], wall: float) -> None:
    from rich.console import Console
    from rich.table import Table
    console = Console(width=None if sys.stdout.isatty() else 160, highlight=False)
    table = Table(title=f"sumonce prove: {len(results)} properties", show_lines=False)
    for col in ("property", "kind", "verdict", "time", "detail"):
        table.add_column(col, overflow="fold")
    for r in results:
        style = "green" if r.passed else "bold red"
        table.add_row(r.prop.name, r.prop.kind.value, f"[{style}]{verdict_text(r)}[/]",
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
    if cx.get("upstream"):
        lines.append(f"  upstream   {cx['upstream']}")
    lines.append(f"  python     the claim evaluated in plain Python here: {cx['python_claim']}"
                 + ("" if r.lift_ok else "  <- differs from z3: the lift is wrong"))
    print("\n".join(lines))


def write_counterexamples(results: list[Result], folder: str) -> None:
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    for r in results:
        if r.counterexample and r.counterexample.get("model"):
            name = r.prop.name.replace(":", "_").replace("@", "_").replace("#", "").replace("/", "_")
            (out / f"{name}.json").write_text(json.dumps(r.counterexample, indent=2))


def writable_dir(folder: str) -> str | None:
    """Why `folder` cannot take the counterexamples (None when it can): checked before the proofs."""
    out = Path(folder)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        return f"--counterexamples {folder}: cannot create it ({e.strerror})"
    if not out.is_dir() or not os.access(out, os.W_OK | os.X_OK):
        return f"--counterexamples {folder}: not a writable directory"
    return None


def bad_arguments(args) -> str | None:
    if args.timeout_ms < 1:
        return "--timeout-ms must be at least 1"
    if args.jobs < 1:
        return f"--jobs {args.jobs}: give at least 1 worker process"
    if args.only is not None and not args.only.strip():
        return "--only '': give a glob, e.g. 'exactly-once:*' (see `sumonce prove --list`)"
    if args.counterexamples is not None:
        return writable_dir(args.counterexamples)
    return None


def prove_main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    why = bad_arguments(args)
    if why:
        print(f"sumonce prove: {why}", file=sys.stderr)
        return 2
    props = all_properties(known_findings=not args.no_known_findings)
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
    results = run_all(props, args.timeout_ms, jobs=args.jobs)
    wall = time.perf_counter() - start
    if args.counterexamples:
        try:
            write_counterexamples(results, args.counterexamples)
        except OSError as e:  # NOTE: checked up front; this is the folder changing during the proofs
            print(f"sumonce prove: cannot write counterexamples to {args.counterexamples}: {e.strerror}",
                  file=sys.stderr)
    if args.json:
        print(json.dumps({"results": [as_json(r) for r in results], "seconds": round(wall, 3),
                          "passed": all(r.passed for r in results)}, indent=2))
    else:
        print_table(results, wall)
    return 0 if all(r.passed for r in results) else 1
