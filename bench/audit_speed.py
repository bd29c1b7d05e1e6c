"""Time `sumonce audit` of whole releases (wheel already in the cache): each run reads the wheel and
audits it, in this process. Prints the median and min wall time and the min CPU time of this process
(on a shared machine the CPU time is the steadier number). Goal: under 1 s for sglang==0.5.23.

    python bench/audit_speed.py [--runs 5] [VERSION ...]
"""
import argparse
import collections
import statistics
import time

from sumonce.audit.audit import audit
from sumonce.audit.coverage import forget
from sumonce.audit.era import parse_utils
from sumonce.audit.source import load


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("versions", nargs="*", default=["0.5.23", "0.5.11", "0.5.10.post1"])
    p.add_argument("--runs", type=int, default=5)
    args = p.parse_args()
    for v in args.versions:
        load(f"sglang=={v}")  # fetch once; not timed
        wall, cpu, rep = [], [], None
        for _ in range(args.runs):
            parse_utils.cache_clear()  # each run as a fresh process would: nothing parsed before
            forget()
            t, c = time.perf_counter(), time.process_time()
            rep = audit(load(f"sglang=={v}"))
            wall.append(time.perf_counter() - t)
            cpu.append(time.process_time() - c)
        counts = ", ".join(f"{k}: {n}" for k, n in sorted(collections.Counter(s.verdict for s in rep.sites).items()))
        print(f"sglang=={v} (era {rep.era}): {rep.files} model files, {len(rep.sites)} sites ({counts}); "
              f"wall median {statistics.median(wall):.2f} s, min {min(wall):.2f} s; cpu min {min(cpu):.2f} s "
              f"over {args.runs} runs")


if __name__ == "__main__":
    main()
