"""Time `sumonce audit --history RANGE --json` end to end (a fresh interpreter each run: imports,
the registry's version list, hashing, auditing), wheels already cached. Goal: under 20 s for the
17 releases 0.5.10.post1..0.5.23 on a 2-core machine.

    python bench/history_speed.py [--runs 3] [--cold-runs 1] [--jobs 2] [RANGE]

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


def once(spec: str, fresh: bool, jobs: int) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the command and its workers)."""
    cmd = [sys.executable, "-m", "sumonce.cli", "audit", "--history", spec, "--json"] + (["--fresh"] if fresh else [])
    env = dict(os.environ, SUMONCE_HISTORY_JOBS=str(jobs))
    t, cpu = time.perf_counter(), _cpu()
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
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
    args = p.parse_args()
    once(args.range, fresh=False, jobs=2)  # fetches the wheels and fills the result cache; not timed
    for jobs in args.jobs:
        times, loads = [], []
        for _ in range(args.cold_runs):
            loads.append(os.getloadavg()[0])
            times.append(once(args.range, fresh=True, jobs=jobs))
        if times:
            report(f"cold, {jobs} worker(s)", times, loads)
    times, loads = [], []
    for _ in range(args.runs):
        loads.append(os.getloadavg()[0])
        times.append(once(args.range, fresh=False, jobs=2))
    report("warm (result cache)", times, loads)


if __name__ == "__main__":
    main()
