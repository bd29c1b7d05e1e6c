"""Check that two trees of sumonce give byte-equal audits (times aside) of every release in a
range: each tree audits the releases in one process, oldest first (as one `--history` worker
does, so what one release remembers is used by the next, and gc.freeze after each as a worker
of a tree that has one), and the newer tree also audits each release in a process of its own,
newest first (nothing remembered). Exit 1 on any difference.

    python bench/audit_same.py --trees BEFORE AFTER [RANGE]

Each entry is the one `--history` keeps per release (audit/history.py's audit_one: era, the
audit's JSON, the upstream bugs decided), with every "seconds" key dropped.
"""
import argparse
import json
import os
import subprocess
import sys

RANGE = "sglang==0.5.10.post1..sglang==0.5.23"
_AUDIT = """
import gc, json, sys
from sumonce.audit import history
from sumonce.audit.history import audit_one
from sumonce.audit.source import fetch

def strip(x):
    if isinstance(x, dict):
        return {k: strip(v) for k, v in x.items() if k not in ("seconds", "cached")}
    return [strip(v) for v in x] if isinstance(x, list) else x

for v in sys.argv[1:]:
    print(json.dumps({v: strip(audit_one(v, str(fetch(v)), None))}, sort_keys=True), flush=True)
    if hasattr(history, "_serve"):  # a --history worker of this tree freezes what it keeps after each
        gc.freeze()
"""


def releases(spec: str) -> list[str]:
    from sumonce.audit.history import parse_range, releases_in, registry_versions
    a, b = parse_range(spec)
    return releases_in(a, b, registry_versions())


def audited(tree: str, versions: list[str]) -> dict[str, str]:
    env = dict(os.environ, PYTHONPATH=os.path.abspath(tree))
    out = subprocess.run([sys.executable, "-c", _AUDIT, *versions], env=env, capture_output=True, text=True,
                         check=False, cwd=os.path.abspath(tree))
    if out.returncode != 0:
        raise SystemExit(f"{tree}: {out.stderr.strip()[-400:]}")
    lines = [json.loads(ln) for ln in out.stdout.splitlines() if ln.startswith("{")]
    return {v: json.dumps(e[v], sort_keys=True) for e in lines for v in e}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("range", nargs="?", default=RANGE)
    p.add_argument("--trees", nargs=2, required=True, metavar=("BEFORE", "AFTER"))
    args = p.parse_args()
    versions = releases(args.range)
    before = audited(args.trees[0], versions)
    runs = {"in one process": audited(args.trees[1], versions)}
    runs["each alone"] = {}
    for v in reversed(versions):
        runs["each alone"] |= audited(args.trees[1], [v])
    bad = 0
    for how, after in runs.items():
        for v in versions:
            same = before.get(v) is not None and before.get(v) == after.get(v)
            bad += not same
            if not same:
                print(f"sglang=={v} ({how}): DIFFERS ({len(before.get(v) or '')} vs {len(after.get(v) or '')} bytes)")
    print(f"{len(versions)} releases, {len(runs)} ways: {'all byte-equal' if not bad else f'{bad} differ'}")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
