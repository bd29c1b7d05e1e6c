"""Does a change to how `sumonce prove` proves leave its results table the same?

Runs `python -m sumonce.cli prove --json --era ERA` in each checkout (PYTHONPATH=tree) and compares
the documents with every time dropped (the document's and each row's `seconds`): the same rows in
the same order, with the same verdicts, details, counterexamples and extra fields. Prints the
first differences and exits 1 if there are any. Speed work (docs/PERF.md) keeps this at 0.

usage: python bench/prove_same.py BASELINE_TREE TREE [--era all] [--jobs 1 2]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

TIMES = ("seconds",)


def prove_json(tree: str, era: str, jobs: int) -> dict:
    env = {**os.environ, "PYTHONPATH": str(Path(tree).resolve())}
    out = subprocess.run([sys.executable, "-m", "sumonce.cli", "prove", "--json", "--era", era, "--jobs", str(jobs)],
                         capture_output=True, text=True, env=env, cwd=tree)
    if out.returncode not in (0, 1):
        raise SystemExit(f"prove in {tree} exited {out.returncode}: {out.stderr.strip()[-500:]}")
    return json.loads(out.stdout)


def timeless(doc):
    """The document without its times."""
    if isinstance(doc, dict):
        return {k: timeless(v) for k, v in doc.items() if k not in TIMES}
    if isinstance(doc, list):
        return [timeless(v) for v in doc]
    return doc


def differences(a, b, where: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for k in sorted(set(a) | set(b), key=str):
            if k not in a or k not in b:
                out.append(f"{where}.{k}: only in {'after' if k in b else 'before'}")
            else:
                out += differences(a[k], b[k], f"{where}.{k}")
        return out
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return [f"{where}: {len(a)} rows before, {len(b)} after"]
        out = []
        for i, (x, y) in enumerate(zip(a, b)):
            name = x.get("property", i) if isinstance(x, dict) else i
            out += differences(x, y, f"{where}[{name}]")
        return out
    return [] if a == b else [f"{where}: {a!r} before, {b!r} after"]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("before")
    p.add_argument("after")
    p.add_argument("--era", default="all")
    p.add_argument("--jobs", type=int, nargs="+", default=[1, 2])
    args = p.parse_args(argv)
    bad = 0
    for jobs in args.jobs:
        before = timeless(prove_json(args.before, args.era, jobs))
        after = timeless(prove_json(args.after, args.era, jobs))
        found = differences(before, after)
        rows = len(before.get("results", []))
        print(f"--era {args.era} --jobs {jobs}: {rows} rows, {len(found)} differences")
        for line in found[:20]:
            print("  " + line)
        bad += len(found)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
