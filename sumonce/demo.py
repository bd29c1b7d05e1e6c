"""`sumonce demo` (what `make demo` runs): the proofs, then a small CPU conformance sweep on Ray
actors. Each half runs in its own process, so neither loads the other's layer.

exit codes: the larger of the two steps' (0 both as expected; 1 a property or a row not as
expected; 2 bad input; 3 a shard died or hung)."""
from __future__ import annotations

import subprocess
import sys


def main(argv: list[str]) -> int:
    if argv and argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0
    steps = [
        ("the proofs: sumonce prove", [sys.executable, "-m", "sumonce.cli", "prove"]),
        ("a small conformance sweep on Ray actors (CPU, gloo): sumonce run --sweep small",
         [sys.executable, "-m", "sumonce.cli", "run", "--sweep", "small", "--device", "cpu", "--table", "summary"]),
    ]
    worst = 0
    for title, cmd in steps:
        print(f"\n=== {title}\n", flush=True)
        worst = max(worst, subprocess.run(cmd).returncode)
    return worst
