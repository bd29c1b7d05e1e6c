"""`sumonce report OUT.html [--audit TARGET ...] [--sweep RESULTS.json] [--perf docs/perf/MACHINE ...]`

Writes one self-contained HTML page (opens offline: styles, script and charts inline): the
configuration map of every catalogued model and guard version, checked against z3's verdicts;
with --audit, the audit of each SGLang release (a tree, a wheel or sglang==X), or with
--history-json, the releases of a `sumonce audit --history ... --json` document; with --sweep, the
sweep's predicted vs measured outcomes; with --perf, the benchmark charts.
Exit 0: written, and the map agrees with every proof; 1: written, but some drawn square contradicts
a proof or a property's verdict is not the expected one; 2: bad arguments or unreadable input.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path


class UsageError(ValueError):
    """One line naming what is wrong and what is allowed."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise UsageError(message)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="sumonce report", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("out", metavar="OUT.html", help="the page to write")
    p.add_argument("--audit", nargs="+", default=[], metavar="TARGET",
                   help="SGLang releases to audit: a source tree, a wheel or sglang==X (several: a matrix)")
    p.add_argument("--history-json", metavar="FILE",
                   help="the model x release matrix of `sumonce audit --history A..B --json` (written to FILE)")
    p.add_argument("--sweep", metavar="RESULTS.json", help="a sweep's rows (docs/REPORT.md: the format)")
    p.add_argument("--perf", nargs="+", default=[], metavar="DIR", help="docs/perf/<machine> folders or JSON files")
    p.add_argument("--jobs", type=int, default=2, help="worker processes for the proofs (default 2)")
    return p


def _inputs(args):
    from . import audit_view, mapdata, page, perf, proofs, sweep
    start = time.perf_counter()
    rows = sweep.load(args.sweep) if args.sweep else []
    perfs = [perf.section(p) for p in args.perf]
    releases = audit_view.run(args.audit) if args.audit else []
    if args.history_json:
        try:
            releases += audit_view.from_history(args.history_json)
        except ValueError as e:
            raise UsageError(str(e)) from None
    found, witnesses = proofs.run_proofs(jobs=max(1, args.jobs))
    inputs = page.Inputs(mapdata.build(found, witnesses), releases, rows,
                         sweep.bars(rows) if rows else "", perfs, era_maps=mapdata.build_era())
    inputs.seconds = time.perf_counter() - start
    return inputs


def main(argv: list[str]) -> int:
    from .perf import PerfError
    from .sweep import SweepError
    from sumonce.audit.source import TargetError
    try:
        args = build_parser().parse_args(argv)
        out = Path(args.out)
        if not out.parent.is_dir():
            raise UsageError(f"{args.out}: folder {out.parent} does not exist")
        if out.suffix.lower() not in (".html", ".htm"):
            raise UsageError(f"{args.out}: the page is HTML; name it OUT.html")
        inputs = _inputs(args)
    except (UsageError, PerfError, SweepError, TargetError) as e:
        print(f"sumonce report: {e}", file=sys.stderr)
        return 2
    from .page import era_summary, render, summary
    html = render(inputs)
    try:
        out.write_text(html, encoding="utf-8")
    except OSError as e:
        print(f"sumonce report: cannot write {args.out}: {e.strerror}", file=sys.stderr)
        return 2
    s, e = summary(inputs.maps), era_summary(inputs.era_maps)
    print(f"wrote {out} ({len(html.encode()) / 1024:.0f} KiB, {inputs.seconds:.1f} s): {s['cells']} squares, "
          f"{s['wrong']} wrong (0.5.11 guards; 0.5.23 era: {e['cells']} squares, {e['wrong']} wrong); z3 {s['proved']} proved, {s['refuted']} refuted; "
          f"{s['disagree']} squares contradict a proof")
    return 1 if s["disagree"] or s["unexpected"] else 0
