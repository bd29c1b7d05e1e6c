"""Check that `sumonce audit --history` of one tree gives, for every release of a range, the
entry another tree's audit of that release alone gives (a fresh process per release: era, the
audit's JSON, the upstream bugs decided), byte for byte with every "seconds" key dropped. The
history runs with 2 workers and with 1, each into a private result cache (the wheels linked from
the real one), whose entries are the history's per-release results; each release is also audited
as `sumonce audit sglang==X` does it (its coverage facts read in a forked child) and compared with
the same reference. Exit 1 on any difference.

    python bench/audit_same.py --trees BEFORE AFTER [RANGE]

Audited one after another in one process, a release's witnesses may differ from its audit alone
(audit/history.py's _audit_each says why), so "alone" is the reference.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

RANGE = "sglang==0.5.10.post1..sglang==0.5.23"
_ALONE = """
import json, sys
from sumonce.audit.history import audit_one
from sumonce.audit.source import fetch
v = sys.argv[1]
print(json.dumps(audit_one(v, str(fetch(v)), None)))
"""


_COMMAND = """
import json, sys
from sumonce.audit import report
from sumonce.audit.audit import audit
from sumonce.audit.source import load
print(json.dumps(report.to_json(audit(load(sys.argv[1])))))
"""


def strip(x):
    if isinstance(x, dict):
        return {k: strip(v) for k, v in x.items() if k not in ("seconds", "cached")}
    return [strip(v) for v in x] if isinstance(x, list) else x


def _env(tree: str, **more) -> dict:
    return dict(os.environ, PYTHONPATH=os.path.abspath(tree), **more)


def alone(tree: str, version: str) -> str:
    out = subprocess.run([sys.executable, "-c", _ALONE, version], env=_env(tree), capture_output=True, text=True,
                         check=False, cwd=os.path.abspath(tree))
    if out.returncode != 0:
        raise SystemExit(f"{tree}: {out.stderr.strip()[-400:]}")
    return json.dumps(strip(json.loads(out.stdout.splitlines()[-1])), sort_keys=True)


def command(tree: str, version: str) -> str:
    """The audit as `sumonce audit sglang==X` makes it (audit.audit's defaults: the coverage facts
    read in a forked child where that is possible, audit/prefetch.py)."""
    out = subprocess.run([sys.executable, "-c", _COMMAND, f"sglang=={version}"], env=_env(tree), capture_output=True,
                         text=True, check=False, cwd=os.path.abspath(tree))
    if out.returncode != 0:
        raise SystemExit(f"{tree}: {out.stderr.strip()[-400:]}")
    return json.dumps(strip(json.loads(out.stdout.splitlines()[-1])), sort_keys=True)


def history(tree: str, spec: str, jobs: int) -> dict[str, str]:
    from sumonce.audit.source import cache_dir
    with tempfile.TemporaryDirectory() as tmp:
        for w in cache_dir().glob("sglang-*.whl"):
            (Path(tmp) / w.name).symlink_to(w)
        out = subprocess.run([sys.executable, "-m", "sumonce.cli", "audit", "--history", spec, "--json"],
                             env=_env(tree, SUMONCE_CACHE=tmp, SUMONCE_HISTORY_JOBS=str(jobs)),
                             capture_output=True, text=True, check=False, cwd=os.path.abspath(tree))
        if out.returncode not in (0, 1, 4):
            raise SystemExit(f"{tree}: --history exited {out.returncode}: {out.stderr.strip()[-400:]}")
        entries = [json.loads(f.read_text()) for f in (Path(tmp) / "audits").glob("*.json")]
    return {e["release"]: json.dumps(strip(e), sort_keys=True) for e in entries}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("range", nargs="?", default=RANGE)
    p.add_argument("--trees", nargs=2, required=True, metavar=("BEFORE", "AFTER"))
    args = p.parse_args()
    from sumonce.audit.history import parse_range, registry_versions, releases_in
    versions = releases_in(*parse_range(args.range), registry_versions())
    before = {v: alone(args.trees[0], v) for v in versions}
    bad = 0
    for jobs in (2, 1):
        after = history(args.trees[1], args.range, jobs)
        for v in versions:
            if before[v] != after.get(v):
                bad += 1
                print(f"sglang=={v} (--history, {jobs} worker(s)): DIFFERS from its audit alone")
    for v in versions:
        if json.dumps(json.loads(before[v])["audit"], sort_keys=True) != command(args.trees[1], v):
            bad += 1
            print(f"sglang=={v} (sumonce audit alone): DIFFERS from its audit alone in {args.trees[0]}")
    print(f"{len(versions)} releases, --history with 2 and 1 workers and each `sumonce audit` against each release alone: "
          f"{'all byte-equal' if not bad else f'{bad} differ'}")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
