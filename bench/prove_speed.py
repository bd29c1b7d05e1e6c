"""How fast is `sumonce prove`, and z3 against brute-force truth tables (the PR's own method).

1. Wall time of `sumonce prove --era E` as a user runs it (start-up included), per era asked
   (default: every era, `all`, and issue 13's two, `0.5.11,0.5.23`): median and min of RUNS runs.
2. The refactor-equivalence and no-drift claims (22 sites + 2), checked side by side in this run
   (a) by z3 with tp, dp, ep bounded at B, and (b) by enumerating every valid configuration with
   tp, dp, ep <= B and every value of the other settings these claims read, and F, R. Enumeration
   stops at CAP seconds; its total is then extrapolated from its rate (marked '~').

With --trees A B ..., part 1 runs `python -m sumonce.cli prove` from each checkout in turn
(PYTHONPATH=tree, run after run alternating, so a loaded machine weighs on each alike) and gives
wall and CPU time (user + system, of the child) for each tree and era, min and median, the trees
side by side (the first is the baseline), and the same for process start (`python -c 'import
sumonce.cli, sumonce.spec.cli'`). A baseline checkout: `git worktree add /tmp/base main` or
`git archive main | tar -x -C /tmp/base`.

usage: python bench/prove_speed.py [--runs 5] [--eras all 0.5.11,0.5.23 0.5.23] [--cap 30] [--bounds 8 64 512]
                                   [--trees DIR DIR ... [--pycache DIR]]
"""
from __future__ import annotations

import argparse
import itertools
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

from sumonce.proto import ServerConfig, validation
from sumonce.proto.catalogue import SITES
from sumonce.proto.config import MoeA2ABackend, MoeRunnerBackend, Quantization
from sumonce.spec import claims
from sumonce.spec.check import run_property
from sumonce.spec.properties import drift, refactor
from sumonce.spec.world import World


def prove_wall(runs: int, era: str = "all") -> list[float]:
    exe = str(Path(sys.executable).with_name("sumonce"))
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run([exe, "prove", "--era", era], check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return times


def prove_once(tree: str, era: str) -> tuple[float, float]:
    """Wall and CPU seconds of one `sumonce prove --era era` from the checkout `tree`."""
    return _timed([sys.executable, "-m", "sumonce.cli", "prove", "--era", era], tree)


START_UP = "start-up"
"""The row for process start: `python -c 'import sumonce.cli'` and `import sumonce.spec.cli`
(what `sumonce prove` imports before its first proof)."""


def start_once(tree: str) -> tuple[float, float]:
    """Wall and CPU seconds of starting Python and importing the CLI and prove's modules."""
    return _timed([sys.executable, "-c", "import sumonce.cli, sumonce.spec.cli"], tree)


PYCACHE: list[str] = []
"""--pycache DIR: children keep bytecode under DIR (PYTHONPYCACHEPREFIX) as an installed package
keeps it beside its modules; without it they inherit the environment (PYTHONDONTWRITEBYTECODE=1
on the development machine: every run compiles every module it imports, about 0.15 s)."""


def _timed(cmd: list[str], tree: str) -> tuple[float, float]:
    env = {**os.environ, "PYTHONPATH": str(Path(tree).resolve())}
    if PYCACHE:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = PYCACHE[0]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True, env=env, cwd=tree)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def compare_trees(trees: list[str], eras: list[str], runs: int) -> dict:
    """Each tree and era (and start-up), run after run in turn; prints min and median wall and
    CPU, one row per era with the trees side by side (the first tree is the baseline)."""
    rows = [*eras, START_UP]
    got = {(t, e): [] for t in trees for e in rows}
    if PYCACHE:  # NOTE: one untimed run per tree writes the bytecode
        for t in trees:
            prove_once(t, eras[0])
    for _ in range(runs):
        for e in rows:
            for t in trees:
                got[(t, e)].append(start_once(t) if e == START_UP else prove_once(t, e))
    out = {}
    for (t, e), pairs in got.items():
        out[f"{t} {e}"] = {"wall": [p[0] for p in pairs], "cpu": [p[1] for p in pairs]}
    print_side_by_side(trees, rows, out, runs)
    return out


def _mm(xs: list[float]) -> str:
    return f"{min(xs):.2f} / {statistics.median(xs):.2f}"


def print_side_by_side(trees: list[str], rows: list[str], out: dict, runs: int) -> None:
    """A markdown table: per row (era or start-up), each tree's wall and CPU min / median."""
    names = [Path(t).resolve().name for t in trees]
    head = ["what"] + [f"{n} wall min / median (s)" for n in names] + [f"{n} CPU min / median (s)" for n in names]
    print(f"{runs} runs each, alternating; load average before: {os.getloadavg()[0]:.2f}")
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for e in rows:
        what = "start-up (import sumonce.cli, sumonce.spec.cli)" if e == START_UP else f"prove --era {e}"
        walls = [_mm(out[f"{t} {e}"]["wall"]) for t in trees]
        cpus = [_mm(out[f"{t} {e}"]["cpu"]) for t in trees]
        print("| " + " | ".join([what, *walls, *cpus]) + " |")


def z3_bounded(bound: int) -> tuple[float, bool]:
    start = time.perf_counter()
    w = World()
    w.rules["bound"] = w.c.tp_size <= bound
    w.rules["bound_dp"] = w.c.dp_size <= bound
    w.rules["bound_ep"] = w.c.ep_size <= bound
    ok = all(run_property(w, p, 60_000).passed for p in refactor() + drift())
    return time.perf_counter() - start, ok


def space(bound: int):
    sizes = range(1, bound + 1)
    return itertools.product(sizes, sizes, sizes, (False, True), tuple(MoeA2ABackend),
                             (MoeRunnerBackend.AUTO, MoeRunnerBackend.FLASHINFER_CUTLASS),
                             (Quantization.NONE, Quantization.MODELOPT_FP4), (False, True))


def space_size(bound: int) -> int:
    return bound ** 3 * 2 * len(MoeA2ABackend) * 2 * 2 * 2


CHECKS = [(claims.guards_equal(s), claims.guards_equal_but_q(s)) for s in SITES]


def brute(bound: int, cap: float) -> dict:
    start, points, valid = time.perf_counter(), 0, 0
    for tp, dp, ep, dpa, a2a, runner, quant, dis in space(bound):
        points += 1
        c = ServerConfig(tp_size=tp, dp_size=dp, ep_size=ep, enable_dp_attention=dpa, moe_a2a_backend=a2a,
                         moe_runner_backend=runner, quantization=quant,
                         disable_flashinfer_cutlass_moe_fp4_allgather=dis)
        if validation.violations(c):
            continue
        valid += 1
        for F, R in itertools.product((False, True), repeat=2):
            for exact, up_to_q in CHECKS:
                assert exact(c, None, F, R) or up_to_q(c, None, F, R)
            assert claims.paths_differ_only_by_q(c, None, F, R) and claims.ep_skip_implies_tp_skip(c, None, F, R)
        if time.perf_counter() - start > cap:
            rate = points / (time.perf_counter() - start)
            return {"points": points, "of": space_size(bound), "seconds": space_size(bound) / rate,
                    "estimated": True}
    return {"points": points, "valid": valid, "of": space_size(bound),
            "seconds": time.perf_counter() - start, "estimated": False}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--cap", type=float, default=30.0, help="seconds of enumeration before extrapolating")
    p.add_argument("--bounds", type=int, nargs="*", default=[8, 64, 512], help="none: skip part 2")
    p.add_argument("--eras", nargs="+", default=["all", "0.5.11,0.5.23"], help="`sumonce prove --era` values to time")
    p.add_argument("--json", help="also write the numbers here")
    p.add_argument("--trees", nargs="+", help="checkouts to time side by side (part 1 only)")
    p.add_argument("--pycache", metavar="DIR", help="with --trees: let the runs keep bytecode under DIR")
    args = p.parse_args(argv)
    if args.pycache:
        PYCACHE[:] = [str(Path(args.pycache).resolve())]
    if args.trees:
        walls = compare_trees(args.trees, args.eras, args.runs)
        if args.json:
            Path(args.json).write_text(json.dumps({"trees": walls}, indent=1))
        return 0
    walls = {}
    for era in args.eras:
        walls[era] = w = prove_wall(args.runs, era)
        print(f"sumonce prove --era {era} (start-up included): median {statistics.median(w):.2f} s over "
              f"{len(w)} runs (min {min(w):.2f}, max {max(w):.2f})")
    rows = []
    print(f"\n{'bound':>6} {'z3 (s)':>8} {'brute force (s)':>18} {'points':>16} {'ratio':>10}")
    for bound in args.bounds:
        z3_s, ok = z3_bounded(bound)
        b = brute(bound, args.cap)
        mark = "~" if b["estimated"] else " "
        ratio = b["seconds"] / z3_s
        print(f"{bound:>6} {z3_s:>8.2f} {mark}{b['seconds']:>17.1f} {b['of']:>16,} {ratio:>9.0f}x"
              + ("" if ok else "  (z3: a property failed!)"))
        rows.append({"bound": bound, "z3_seconds": z3_s, "z3_ok": ok, **{f"brute_{k}": v for k, v in b.items()}})
    if args.json:
        Path(args.json).write_text(json.dumps({"prove_wall": walls, "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
