"""`sumonce demo` (what `make demo` runs): the proofs, then a small CPU conformance sweep on Ray
actors. Each half runs in its own process, so neither loads the other's layer."""
from __future__ import annotations

import subprocess
import sys


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
    steps = [
        ("the proofs: sumonce prove", [sys.executable, "-m", "sumonce.cli", "prove"]),
        ("a small conformance sweep on Ray actors (CPU, gloo): sumonce run --sweep small",
         [sys.executable, "-m", "sumonce.cli", "run", "--sweep", "small", "--device", "cpu", "--table", "summary",
          "--num-cpus", cpus]),
    ]
    worst = 0
    for title, cmd in steps:
        print(f"\n=== {title}\n", flush=True)
        worst = max(worst, subprocess.run(cmd).returncode)
    return worst
