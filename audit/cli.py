"""`sumonce audit TARGET [--json] [--sarif FILE]` and `sumonce audit --compare A B`.

TARGET: an SGLang source tree, a wheel file, or sglang==X. Exit 0 when every site calls the helper
or is equivalent to it, 1 when some site differs or is not understood, 2 for a bad target, 4 when
some file could not be read or parsed (each named; the other files were audited).
"""
from __future__ import annotations

import argparse
import json
import sys

from .source import TargetError, load


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise TargetError(message)


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="sumonce audit", description=__doc__.splitlines()[0], allow_abbrev=False)
    p.add_argument("target", nargs="?", help="SGLang tree, wheel, or sglang==X")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--sarif", metavar="FILE", help="write SARIF 2.1.0 findings to FILE")
    p.add_argument("--compare", nargs=2, metavar=("A", "B"), help="sites whose verdict changed from A to B")
    return p


def main(argv: list[str]) -> int:
    try:
        args = _parser().parse_args(argv)
        if args.compare:
            extra = [x for x, given in ((f"target {args.target!r}", args.target), ("--sarif", args.sarif)) if given]
            if extra:
                raise TargetError(f"--compare A B takes no {' or '.join(extra)}: it compares two targets "
                                  "(only --json applies)")
            return _compare(*args.compare, as_json=args.json)
        if not args.target:
            raise TargetError("give a target: an SGLang tree, a wheel or sglang==X")
        return _audit(args)
    except TargetError as e:
        print(f"sumonce audit: {e}", file=sys.stderr)
        return 2


def _run(target: str):
    from .audit import audit
    return audit(load(target))


def _audit(args) -> int:
    from . import report
    rep = _run(args.target)
    if args.sarif:
        try:
            with open(args.sarif, "w") as f:
                json.dump(report.sarif(rep), f, indent=2)
        except OSError as e:
            raise TargetError(f"cannot write {args.sarif}: {e.strerror}") from None
    if args.json:
        print(json.dumps(report.to_json(rep), indent=2))
    else:
        print(report.table(rep))
        print("\n".join(report.summary_lines(rep)))
    bad = report.counts(rep).get("differs", 0) + report.counts(rep).get("not understood", 0)
    return 1 if bad else 4 if rep.unparsed else 0


def _compare(a: str, b: str, as_json: bool) -> int:
    from . import report
    ra, rb = _run(a), _run(b)
    changes = report.compare(ra, rb)
    if as_json:
        print(json.dumps({"a": ra.label, "b": rb.label, "changes": changes}, indent=2))
    else:
        print(f"{len(changes)} sites changed verdict from {ra.label} to {rb.label}")
        for c in changes:
            print(f"  {c['model']:<18} {c['method']:<50} {c['path']:<10} {c['before']} -> {c['after']}")
    return 0
