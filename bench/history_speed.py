"""Time `sumonce audit --history RANGE --json` end to end (a fresh interpreter each run: imports,
the registry's version list, hashing, auditing), wheels already cached. Goal: under 20 s for the
17 releases 0.5.10.post1..0.5.23 on a 2-core machine.

    python bench/history_speed.py [--runs 3] [--cold-runs 1] [--jobs 2] [RANGE]
    python bench/history_speed.py --trees BEFORE AFTER --runs 0 --cold-runs 3 [RANGE]

With --trees, each tree's command runs in turn (side by side, alternating) and the ratio of the
medians is printed.

cold: every release audited again (--fresh: the result cache is neither read nor written);
warm: every result read from the cache (keyed by wheel sha256 + a fingerprint of sumonce's code).
The load average is printed beside each time: the machine is shared, and the audit is CPU-bound;
CPU seconds (the command and its workers) are what the load does not inflate: on an idle machine
the cold wall time with 2 workers is about half of them.
"""
import argparse
import os
import resource
import statistics
import subprocess
import sys
import time

RANGE = "sglang==0.5.10.post1..sglang==0.5.23"


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def once(spec: str, fresh: bool, jobs: int, tree: str = ".") -> tuple[float, float]:
    """(wall seconds, CPU seconds of the command and its workers)."""
    cmd = [sys.executable, "-m", "sumonce.cli", "audit", "--history", spec, "--json"] + (["--fresh"] if fresh else [])
    env = dict(os.environ, SUMONCE_HISTORY_JOBS=str(jobs), PYTHONPATH=os.path.abspath(tree))
    t, cpu = time.perf_counter(), _cpu()
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False, cwd=os.path.abspath(tree))
    seconds, cpu = time.perf_counter() - t, _cpu() - cpu
    if p.returncode not in (0, 1, 4):
        raise SystemExit(f"{' '.join(cmd)} exited {p.returncode}: {p.stderr.strip()[-300:]}")
    return seconds, cpu


def report(name: str, runs: list[tuple[float, float]], loads: list[float]) -> None:
    wall, cpu = [r[0] for r in runs], [r[1] for r in runs]
    print(f"{name}: wall min {min(wall):.1f} s, median {statistics.median(wall):.1f} s; CPU min {min(cpu):.1f} s, "
          f"median {statistics.median(cpu):.1f} s over {len(runs)} runs "
          f"(load average {', '.join(f'{x:.1f}' for x in loads)})", flush=True)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("range", nargs="?", default=RANGE)
    p.add_argument("--runs", type=int, default=3, help="warm runs")
    p.add_argument("--cold-runs", type=int, default=1)
    p.add_argument("--jobs", type=int, nargs="+", default=[2], help="worker processes (several: each timed cold)")
    p.add_argument("--trees", nargs="+", default=["."], metavar="TREE")
    args = p.parse_args()
    if args.runs:
        once(args.range, fresh=False, jobs=2, tree=args.trees[0])  # fills the result cache; not timed
    for jobs in args.jobs:
        times: dict[str, list] = {t: [] for t in args.trees}
        loads: dict[str, list] = {t: [] for t in args.trees}
        for _ in range(args.cold_runs):
            for t in args.trees:
                loads[t].append(os.getloadavg()[0])
                times[t].append(once(args.range, fresh=True, jobs=jobs, tree=t))
        for t in args.trees:
            if times[t]:
                report(f"{t}: cold, {jobs} worker(s)", times[t], loads[t])
        if len(args.trees) == 2 and args.cold_runs:
            a, b = (times[t] for t in args.trees)
            print(f"before / after (medians): wall {statistics.median(x[0] for x in a) / statistics.median(x[0] for x in b):.2f}x, "
                  f"CPU {statistics.median(x[1] for x in a) / statistics.median(x[1] for x in b):.2f}x", flush=True)
    for t in args.trees:
        times_, loads_ = [], []
        if args.runs and t != args.trees[0]:
            once(args.range, fresh=False, jobs=2, tree=t)  # NOTE: each tree's code has its own cache key
        for _ in range(args.runs):
            loads_.append(os.getloadavg()[0])
            times_.append(once(args.range, fresh=False, jobs=2, tree=t))
        if times_:
            report(f"{t}: warm (result cache)", times_, loads_)


if __name__ == "__main__":
    main()
