"""What `sumonce prove` prints: the verdict table (rich on a terminal, plain lines elsewhere), the
counterexamples, the JSON document (schema: sumonce/schemas/prove.schema.json) and the summary.
"""
from __future__ import annotations

import sys

from sumonce.output import document

from .check import Result
from .properties import Expect

FORMATS = ("auto", "rich", "plain")


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


def prove_document(results: list[Result], wall: float) -> dict:
    return document("prove", {"passed": all(r.passed for r in results), "seconds": round(wall, 3),
                              "counts": tally(results), "results": [as_json(r) for r in results]})


def tally(results: list[Result]) -> dict:
    out = {}
    for r in results:
        out[r.status.value] = out.get(r.status.value, 0) + 1
    return dict(sorted(out.items()))


def plain_format(fmt: str) -> bool:
    """auto: rich on a terminal, plain lines (never wrapped, whole names) anywhere else."""
    return fmt == "plain" or (fmt == "auto" and not sys.stdout.isatty())


def print_results(results: list[Result], wall: float, plain: bool) -> None:
    print_plain_table(results) if plain else print_rich_table(results)
    for r in results:
        if r.counterexample:
            print_counterexample(r)
    failed = [r for r in results if not r.passed]
    summary = ", ".join(f"{n} {k}" for k, n in tally(results).items())
    print(f"\n{summary}; {len(failed)} not as expected; {wall:.2f} s")


def print_plain_table(results: list[Result]) -> None:
    """One line per property: name, era, verdict, kind, time, detail; columns padded, never wrapped."""
    name_w = max(len(r.prop.name) for r in results)
    verdict_w = max(len(verdict_text(r)) for r in results)
    print(f"sumonce prove: {len(results)} properties")
    for r in results:
        line = (f"{r.prop.name:<{name_w}}  {r.prop.era:<7}  {verdict_text(r):<{verdict_w}}  {r.prop.kind.value:<12}  "
                f"{r.seconds * 1000:6.0f} ms  {r.detail}")
        print(line.rstrip())


def print_rich_table(results: list[Result]) -> None:
    from rich.console import Console
    from rich.table import Table
    console = Console(highlight=False)
    table = Table(title=f"sumonce prove: {len(results)} properties", show_lines=False)
    for col in ("property", "era", "kind", "verdict", "time", "detail"):
        table.add_column(col, overflow="fold")
    for r in results:
        style = "green" if r.passed else "bold red"
        table.add_row(r.prop.name, r.prop.era, r.prop.kind.value, f"[{style}]{verdict_text(r)}[/]",
                      f"{r.seconds * 1000:.0f} ms", r.detail)
    console.print(table)
    console.file.flush()


def counterexample_lines(r: Result) -> list[str]:
    """Plain lines (fast, and the same on a terminal, in a log and under grep)."""
    cx = r.counterexample
    lines = [f"{r.prop.name} ({verdict_text(r)}): {r.prop.meaning}"]
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
    if cx.get("era_story"):
        lines.append(f"  {cx['era']:<10} " + ", ".join(f"{k}={v}" for k, v in cx["era_story"].items()))
    elif cx.get("era"):
        lines.append("  0.5.23     " + ", ".join(f"{k}={cx[k]}" for k in
                                                ("model_0523", "V_0523", "complete", "ffn_exit", "reduction_group",
                                                 "counts_0523", "model_runs_0523") if k in cx))
    if cx.get("upstream"):
        lines.append(f"  upstream   {cx['upstream']}")
    lines.append(f"  python     the claim evaluated in plain Python here: {cx['python_claim']}"
                 + ("" if r.lift_ok else "  <- differs from z3: the lift is wrong"))
    return lines


def print_counterexample(r: Result) -> None:
    print("\n" + "\n".join(counterexample_lines(r)))
