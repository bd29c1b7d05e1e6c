"""`sumonce demo` (what `make demo` runs): the proofs, then a small CPU conformance sweep on Ray
actors, then the report (`sumonce report`), whose path it prints last. Each step runs in its own
process, so none loads another's layer.

exit codes: the largest of the steps' (0 all as expected; 1 a property or a row not as
expected; 2 bad input; 3 a shard died or hung)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPORT = "sumonce-report.html"
PERF = Path(__file__).resolve().parent.parent / "docs" / "perf" / "h200x4"


def report_command(out: str) -> list[str]:
    """The report of the catalogue, with the audit of each SGLang release already in the audit's
    cache (no download in the demo) and the checkout's GPU numbers where it has them."""
    from sumonce.audit.source import cache_dir
    cmd = [sys.executable, "-m", "sumonce.cli", "report", out]
    cached = sorted(p.name.split("-")[1] for p in cache_dir().glob("sglang-*.whl")) if cache_dir().is_dir() else []
    wanted = [v for v in ("0.5.10.post1", "0.5.11", "0.5.23") if v in cached]
    if wanted:
        cmd += ["--audit", *(f"sglang=={v}" for v in wanted)]
    if PERF.is_dir():
        cmd += ["--perf", str(PERF)]
    return cmd


def main(argv: list[str]) -> int:
    if argv and argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0
    steps = [
        ("the proofs: sumonce prove", [sys.executable, "-m", "sumonce.cli", "prove"]),
        ("a small conformance sweep on Ray actors (CPU, gloo): sumonce run --sweep small",
         [sys.executable, "-m", "sumonce.cli", "run", "--sweep", "small", "--device", "cpu", "--table", "summary"]),
        (f"the report: sumonce report {REPORT}", report_command(REPORT)),
    ]
    worst = 0
    for title, cmd in steps:
        print(f"\n=== {title}\n", flush=True)
        worst = max(worst, subprocess.run(cmd).returncode)
    print(f"\nreport: {Path(REPORT).resolve()}")
    return worst
