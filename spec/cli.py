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

from sumonce import __version__
from sumonce.output import dump

from .catalogue_file import CatalogueError, catalogue_properties, load_models
from .check import Result, run_all
from .output import FORMATS, plain_format, print_results, prove_document
from .properties import all_properties, era_tables
from .solve import DEFAULT_TIMEOUT_MS


ERA_NAMES = tuple(era_tables())  # the eras with a property table (proto.eras.Era values)


class _Parser(argparse.ArgumentParser):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, allow_abbrev=False, **kwargs)

    def error(self, message):
        print(f"sumonce prove: {message}", file=sys.stderr)
        raise SystemExit(2)


EXIT_CODES = """exit codes:
  0  every property has its expected verdict (proved, or refuted as expected)
  1  some property does not (z3 `unknown` included)
  2  bad arguments (one line on stderr)"""


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="sumonce prove", description=__doc__.split("\n\n")[0], epilog=EXIT_CODES,
                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--json", action="store_true",
                   help="print the results as JSON (schema: docs/OUTPUT.md, sumonce/schemas/prove.schema.json)")
    p.add_argument("--junit-xml", metavar="FILE", help="also write the results as JUnit XML, one testcase per property")
    p.add_argument("--format", choices=FORMATS, default="auto",
                   help="the table: rich, or plain lines (whole names, never wrapped); "
                        "auto: rich on a terminal, plain otherwise (default: %(default)s)")
    p.add_argument("--timeout-ms", type=int, default=DEFAULT_TIMEOUT_MS,
                   help="z3 timeout per check, at least 1 (default: %(default)s)")
    p.add_argument("--only", metavar="GLOB", help="run the properties whose name matches, e.g. 'exactly-once:*'")
    p.add_argument("--catalogue", metavar="FILE.py",
                   help="also prove the models a Python file defines in MODELS (docs/SPEC.md)")
    p.add_argument("--no-known-findings", action="store_true",
                   help="do not exclude the known findings (spec/findings.py) from exactly-once")
    p.add_argument("--counterexamples", metavar="DIR", help="write each counterexample as JSON for `sumonce repro`")
    p.add_argument("--list", action="store_true", help="list the properties and exit")
    p.add_argument("--era", default="all", metavar="ERA",
                   help="an era (named by its first release: " + ", ".join(ERA_NAMES) + "), several joined by "
                        "commas (e.g. 0.5.11,0.5.23), or all (default); docs/ERAS.md lists each era's releases")
    p.add_argument("--version", action="version", version=f"sumonce {__version__}",
                   help="print sumonce's version and exit")
    p.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1),
                   help="worker processes, at least 1 (default: up to 2)")
    return p


def write_counterexamples(results: list[Result], folder: str) -> None:
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    for r in results:
        # NOTE: `sumonce repro` executes the 0.5.11 era only; other eras' witnesses stay in --json.
        if r.counterexample and r.counterexample.get("model") and r.prop.era == "0.5.11":
            name = r.prop.name.replace(":", "_").replace("@", "_").replace("#", "").replace("/", "_")
            (out / f"{name}.json").write_text(json.dumps(r.counterexample, indent=2))


def select(args) -> list:
    """The properties to run: the table (and a --catalogue file's models), filtered by --only."""
    props = [p for era in eras_asked(args.era) for p in all_properties(known_findings=not args.no_known_findings, era=era)]
    if args.catalogue:
        props += catalogue_properties(load_models(args.catalogue), known=not args.no_known_findings)
    if args.only:
        props = [p for p in props if fnmatch.fnmatch(p.name, args.only)]
        if not props:
            raise CatalogueError(f"no property matches {args.only!r}; see `sumonce prove --list`")
    return props


def eras_asked(text: str) -> list[str]:
    """--era's eras in table order: ["all"], or each era named (commas between, each once)."""
    if text == "all":
        return ["all"]
    named = {e.strip() for e in text.split(",")}
    return [e for e in ERA_NAMES if e in named]


def _bad_era(text: str) -> str | None:
    if text == "all":
        return None
    for era in (e.strip() for e in text.split(",")):
        if era not in ERA_NAMES:
            from sumonce.proto.eras import RELEASE_ERA
            hint = f" (sglang {era} is in era {RELEASE_ERA[era].value})" if era in RELEASE_ERA else ""
            return f"unknown --era {era!r}{hint}; allowed: {', '.join(ERA_NAMES)} (several joined by commas), all"
    return None


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
    why = _bad_era(args.era)
    if why:
        return why
    if args.counterexamples is not None:
        return writable_dir(args.counterexamples)
    return None


def prove_main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    why = bad_arguments(args)
    if why:
        print(f"sumonce prove: {why}", file=sys.stderr)
        return 2
    try:
        props = select(args)
    except CatalogueError as e:
        print(f"sumonce prove: {e}", file=sys.stderr)
        return 2
    if args.list:
        for p in props:
            print(f"{p.name}\t{p.kind.value}\t{p.expect.value}\t{p.meaning}")
        return 0
    start = time.perf_counter()
    results = run_all(props, args.timeout_ms, jobs=args.jobs)
    from .eras import annotate_findings
    annotate_findings(results)
    wall = time.perf_counter() - start
    if args.counterexamples:
        try:
            write_counterexamples(results, args.counterexamples)
        except OSError as e:  # NOTE: checked up front; this is the folder changing during the proofs
            print(f"sumonce prove: cannot write counterexamples to {args.counterexamples}: {e.strerror}",
                  file=sys.stderr)
    if args.junit_xml:
        from .junit import write_junit  # NOTE: xml.etree only when asked (start-up time)
        write_junit(results, wall, args.junit_xml)
    if args.json:
        dump(prove_document(results, wall))
    else:
        print_results(results, wall, plain_format(args.format))
    return 0 if all(r.passed for r in results) else 1
