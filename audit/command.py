"""`sumonce audit TARGET [--json] [--sarif FILE] [--baseline FILE]`, `--compare A B`, `--history A..B`.

TARGET: an SGLang source tree (a git checkout, or its sglang/srt directory), a wheel file, sglang==X, or
sglang (the newest release on the registry, named in the output). The era is read from the code.
"""
from __future__ import annotations

import argparse
import json
import sys

from sumonce import __version__
from sumonce.output import document, dump

from .source import TargetError, load


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise TargetError(message)


EXIT_CODES = """exit codes:
  0  every site calls the helper or is equivalent to it (with --baseline: no site's verdict is new
     or changed against it; --compare and --write-baseline: written/printed)
  1  some site differs or is not understood (with --baseline: only new or changed ones count;
     with --history: in any release of the range), or a MoE model file is unaccounted for (no site,
     layer boundary or reason accounts for its sum; listed by name; with --baseline: only a newly
     unaccounted one)
  2  bad target, file or flag (one line on stderr)
  4  some file could not be read or parsed (each named, in the table, the JSON and the SARIF; the
     other files were audited); a differing site still gives 1"""


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="sumonce audit", description=__doc__.splitlines()[0], epilog=EXIT_CODES, allow_abbrev=False,
                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("target", nargs="?", help="SGLang tree (git checkout or srt dir), wheel, sglang==X, or sglang (newest)")
    p.add_argument("--json", action="store_true",
                   help="print the report as JSON (schema: docs/OUTPUT.md, sumonce/schemas/audit.schema.json)")
    p.add_argument("--sarif", metavar="FILE", help="write SARIF 2.1.0 findings to FILE")
    p.add_argument("--baseline", metavar="FILE",
                   help="fail only on sites whose verdict is new or changed against this recorded baseline")
    p.add_argument("--write-baseline", metavar="FILE", help="record every site's verdict in FILE (exit 0)")
    p.add_argument("--format", choices=("auto", "rich", "plain"), default="auto",
                   help="the table: rich, or plain lines (whole names, never wrapped); "
                        "auto: rich on a terminal, plain otherwise (default: %(default)s)")
    p.add_argument("--compare", nargs=2, metavar=("A", "B"),
                   help="per MoE model file, its row in A and in B; and the sites whose verdict changed")
    p.add_argument("--history", metavar="RANGE",
                   help="sglang==A..sglang==B: audit every registry release from A to B (docs/AUDIT.md)")
    p.add_argument("--fresh", action="store_true", help="with --history: ignore the audit result cache")
    p.add_argument("--version", action="version", version=f"sumonce {__version__}",
                   help="print sumonce's version and exit")
    return p


def main(argv: list[str]) -> int:
    try:
        args = _parser().parse_args(argv)
        if args.compare:
            extra = [x for x, given in ((f"target {args.target!r}", args.target), ("--sarif", args.sarif),
                                        ("--baseline", args.baseline), ("--write-baseline", args.write_baseline))
                     if given]
            if extra:
                raise TargetError(f"--compare A B takes no {' or '.join(extra)}: it compares two targets "
                                  "(only --json applies)")
            return _compare(*args.compare, as_json=args.json)
        if args.history:
            if args.target or args.sarif or args.baseline or args.write_baseline:
                raise TargetError("--history RANGE takes no target, --sarif or baseline (only --json, --fresh)")
            from .history import command
            return command(args.history, as_json=args.json, fresh=args.fresh)
        if not args.target:
            raise TargetError("give a target: an SGLang tree, a wheel, sglang==X or sglang (the newest release)")
        return _audit(args)
    except TargetError as e:
        print(f"sumonce audit: {e}", file=sys.stderr)
        return 2


def _run(target: str):
    from .audit import audit
    return audit(load(target))


def _audit(args) -> int:
    from . import baseline, report
    from .sarif import sarif
    rep = _run(args.target)
    gate = baseline.check(rep, args.baseline) if args.baseline else None
    if args.write_baseline:
        baseline.write(rep, args.write_baseline)
    if args.sarif:
        _write_json(args.sarif, sarif(rep, gate))
    bad = any(v.verdict.bad for v in rep.sites)
    if args.json:
        body = report.to_json(rep)
        passed = not bad and not rep.unparsed and not rep.coverage.unaccounted
        dump(document("audit", {**body, "passed": passed, **({"baseline": gate} if gate else {})}))
    else:
        plain = args.format == "plain" or (args.format == "auto" and not sys.stdout.isatty())
        print(report.plain_table(rep) if plain else report.table(rep))
        print("\n".join(report.summary_lines(rep) + (baseline.lines(gate) if gate else [])))
    if args.write_baseline:
        return 0
    if (not gate["passed"]) if gate else (bad or rep.coverage.unaccounted):
        return 1
    return 4 if rep.unparsed else 0


def _write_json(path: str, doc: dict) -> None:
    try:
        with open(path, "w") as f:
            json.dump(doc, f, indent=2)
    except OSError as e:
        raise TargetError(f"cannot write {path}: {e.strerror}") from None


def _compare(a: str, b: str, as_json: bool) -> int:
    from . import report
    ra, rb = _run(a), _run(b)
    changes, models = report.compare(ra, rb), report.compare_models(ra, rb)
    if as_json:
        dump(document("audit-compare", {"a": ra.label, "b": rb.label, "changes": changes, "models": models,
                                        "coverage": {"a": ra.coverage.totals(), "b": rb.coverage.totals()}}))
    else:
        print("\n".join(report.compare_lines(ra, rb, models)))
        print(f"{len(changes)} sites changed verdict from {ra.label} to {rb.label}")
        for c in changes:
            print(f"  {c['model']:<18} {c['method']:<50} {c['path']:<10} {c['before']} -> {c['after']}")
    return 0
