"""Time `sumonce audit` of whole releases (wheel already in the cache): median of several runs.
Goal: under 5 s for sglang==0.5.23 (about 255 model files) on a 2-core machine.

    python bench/audit_speed.py [--runs 5] [VERSION ...]
"""
import argparse
import statistics
import time

from sumonce.audit.audit import audit
from sumonce.audit.source import load


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("versions", nargs="*", default=["0.5.23", "0.5.11", "0.5.10.post1"])
    p.add_argument("--runs", type=int, default=5)
    args = p.parse_args()
    for v in args.versions:
        load(f"sglang=={v}")  # fetch once; not timed
        times, rep = [], None
        for _ in range(args.runs):
            t = time.perf_counter()
            rep = audit(load(f"sglang=={v}"))
            times.append(time.perf_counter() - t)
        counts = ", ".join(f"{k}: {n}" for k, n in sorted(__import__("collections").Counter(
            s.verdict for s in rep.sites).items()))
        print(f"sglang=={v}: {rep.files} model files, {len(rep.sites)} sites ({counts}); "
              f"median {statistics.median(times):.2f} s over {args.runs} runs "
              f"(min {min(times):.2f}, max {max(times):.2f})")


if __name__ == "__main__":
    main()
