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
SWEEP = "sumonce-sweep.json"
PERF = Path(__file__).resolve().parent.parent / "docs" / "perf" / "h200x4"


def report_command(out: str, sweep: str) -> list[str]:
    """The report of the catalogue, with the sweep just run, the audit of each SGLang release
    already in the audit's cache (no download in the demo) and the checkout's GPU numbers where it
    has them."""
    from sumonce.audit.source import cache_dir
    cmd = [sys.executable, "-m", "sumonce.cli", "report", out]
    if Path(sweep).is_file() and Path(sweep).stat().st_size:
        cmd += ["--sweep", sweep]
    cached = sorted(p.name.split("-")[1] for p in cache_dir().glob("sglang-*.whl")) if cache_dir().is_dir() else []
    wanted = [v for v in ("0.5.10.post1", "0.5.11", "0.5.23") if v in cached]
    if wanted:
        cmd += ["--audit", *(f"sglang=={v}" for v in wanted)]
    if PERF.is_dir():
        cmd += ["--perf", str(PERF)]
    return cmd


def sweep_summary(path: str) -> str:
    """One line from the sweep's JSON document: rows, mismatches, world sizes, seconds."""
    import json
    try:
        doc = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return f"sweep: no results in {path}"
    eras = ", ".join(f"era {e}: {n['rows']}" for e, n in doc.get("eras", {}).items())
    return (f"sweep: {len(doc['rows'])} rows ({eras}) at world sizes {', '.join(map(str, doc['worlds']))}, "
            f"{doc['mismatches']} mismatches between proto's prediction and the measurement, "
            f"{doc['seconds']:.0f} s; rows in {Path(path).resolve()}")


def main(argv: list[str]) -> int:
    if argv and argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0
    if argv:
        print(f"sumonce demo: unexpected argument(s) {' '.join(argv)!r}; demo takes none (--help)",
              file=sys.stderr)
        return 2
    import os
    cpus = str(max(4, os.cpu_count() or 1))  # NOTE: the sweep's worlds 2 and 4, oversubscribed where fewer cores
    worst = 0
    print("\n=== the proofs: sumonce prove\n", flush=True)
    worst = max(worst, subprocess.run([sys.executable, "-m", "sumonce.cli", "prove"]).returncode)
    print(f"\n=== a small conformance sweep on Ray actors (CPU, gloo): sumonce run --sweep small --json > {SWEEP}\n",
          flush=True)
    with open(SWEEP, "w") as out:  # NOTE: the document on stdout, progress on stderr (docs/OUTPUT.md)
        worst = max(worst, subprocess.run([sys.executable, "-m", "sumonce.cli", "run", "--sweep", "small",
                                           "--device", "cpu", "--num-cpus", cpus, "--json"],
                                          stdout=out).returncode)
    print(sweep_summary(SWEEP))
    print(f"\n=== the report: sumonce report {REPORT}\n", flush=True)
    worst = max(worst, subprocess.run(report_command(REPORT, SWEEP)).returncode)
    print(f"\nreport: {Path(REPORT).resolve()}")
    return worst
