"""Time `sumonce audit` of whole releases (wheel already in the cache). Goal: under 1 s for
sglang==0.5.23.

    python bench/audit_speed.py [--runs 5] [VERSION ...]
    python bench/audit_speed.py --trees BEFORE AFTER [--runs 5] [VERSION ...]

Each run is a fresh interpreter (nothing parsed or remembered before), timed two ways: the audit
itself (reading the wheel and auditing it, inside the process: wall, and CPU with the forked child
that reads coverage facts, audit/prefetch.py, and each apart), and the whole command
`sumonce audit sglang==X --json` (start-up and imports included: wall, and the CPU of the process).
With --trees the two trees run alternately, side by side, and the ratio of the medians is printed.
On a shared machine the CPU time is the steadier number; compare only numbers of one run.
"""
import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

_ONE = """
import json, resource, sys, time
def child():  # NOTE: the coverage facts' forked child (audit/prefetch.py)
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime
from sumonce.audit.audit import audit
from sumonce.audit.source import load
t, c, k = time.perf_counter(), time.process_time(), child()
rep = audit(load(sys.argv[1]))
own, kid = time.process_time() - c, child() - k
print(json.dumps({"wall": time.perf_counter() - t, "cpu": own + kid, "own": own, "child": kid,
                  "era": str(rep.era), "files": rep.files, "sites": len(rep.sites)}))
"""


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def _run(tree: str, cmd: list[str]) -> tuple[subprocess.CompletedProcess, float, float]:
    env = dict(os.environ, PYTHONPATH=os.path.abspath(tree))
    t, c = time.perf_counter(), _children_cpu()
    p = subprocess.run(cmd, env=env, cwd=os.path.abspath(tree), capture_output=True, text=True, check=False)
    return p, time.perf_counter() - t, _children_cpu() - c


def once(tree: str, version: str) -> dict:
    p, _w, _c = _run(tree, [sys.executable, "-c", _ONE, f"sglang=={version}"])
    if p.returncode != 0:
        raise SystemExit(f"{tree}: {p.stderr.strip()[-300:]}")
    got = json.loads(p.stdout.strip().splitlines()[-1])
    p, got["cmd_wall"], got["cmd_cpu"] = _run(tree, [sys.executable, "-m", "sumonce.cli", "audit", f"sglang=={version}",
                                                     "--json"])
    if p.returncode not in (0, 1, 4):
        raise SystemExit(f"{tree}: sumonce audit exited {p.returncode}: {p.stderr.strip()[-300:]}")
    return got


def _stats(xs: list[float]) -> str:
    return f"{statistics.median(xs):.2f} / {min(xs):.2f}"


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("versions", nargs="*", default=["0.5.23", "0.5.11", "0.5.10.post1"])
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--trees", nargs="+", default=["."], metavar="TREE")
    args = p.parse_args()
    for v in args.versions:
        once(args.trees[0], v)  # fetches the wheel once; not timed
        runs: dict[str, list[dict]] = {t: [] for t in args.trees}
        for _ in range(args.runs):
            for t in args.trees:
                runs[t].append(once(t, v))
        print(f"sglang=={v} (load average {os.getloadavg()[0]:.1f}), median / min over {args.runs} runs:")
        for t, rs in runs.items():
            r = rs[-1]
            print(f"  {t}: era {r['era']}, {r['files']} model files, {r['sites']} sites; "
                  f"audit wall {_stats([x['wall'] for x in rs])} s, CPU {_stats([x['cpu'] for x in rs])} s "
                  f"(its process {_stats([x['own'] for x in rs])} s, the child {_stats([x['child'] for x in rs])} s); "
                  f"command wall {_stats([x['cmd_wall'] for x in rs])} s, CPU {_stats([x['cmd_cpu'] for x in rs])} s")
        if len(args.trees) == 2:
            a, b = (runs[t] for t in args.trees)
            ratio = {k: statistics.median([x[k] for x in a]) / statistics.median([x[k] for x in b])
                     for k in ("wall", "cpu", "cmd_wall", "cmd_cpu")}
            print("  before / after (medians): " + ", ".join(f"{k} {x:.2f}x" for k, x in ratio.items()))


if __name__ == "__main__":
    main()
