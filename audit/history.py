"""`sumonce audit --history sglang==A..sglang==B`: every registry release from A to B (both
included), each audited in its era; the aggregation (per model, per finding, per upstream bug) is
audit/history_report.py.

The releases in the range are the registry's (`pip index versions sglang`), ordered by version
(release segments, then `.postN`); wheels are fetched into the cache (audit/source.py). The
registry is asked beside the audits of the range's cached wheels (audit/registry.py), which takes
about a second. An audit
result depends only on the wheel's bytes and on sumonce's own code, so it is kept in
`<cache>/audits/` under the wheel's sha256 and a fingerprint of the code that judged it (every .py
file of proto, spec and audit, sumonce's, z3's and Python's versions): any change to one of them
is a different key, never a stale answer.
"""
from __future__ import annotations

import gc
import hashlib
import json
import multiprocessing
import multiprocessing.connection
import os
import re
import sys
from pathlib import Path

from sumonce.procs import fork_is_safe

from . import memo
from .history_workers import Workers
from .registry import VERSION, Registry, cached_versions
from .source import TargetError, cache_dir, fetch

_END = r"sglang==([0-9][0-9A-Za-z.]*)"
_RANGE = re.compile(rf"^{_END}\.\.{_END}$")
_VERSION = VERSION


def version_key(v: str) -> tuple:
    """PEP 440 order for final releases and post-releases (X.Y.Z[.postN]); ValueError otherwise."""
    m = _VERSION.match(v)
    if not m:
        raise ValueError(v)
    parts = [int(x) for x in m.group(1).split(".")]
    while len(parts) > 1 and parts[-1] == 0:  # 0.5 == 0.5.0
        parts.pop()
    return tuple(parts), int(m.group(2)) if m.group(2) is not None else -1


def parse_range(text: str) -> tuple[str, str]:
    m = _RANGE.match(text.strip())
    if not m:
        raise TargetError(f"--history {text!r}: give a range as sglang==A..sglang==B "
                          "(e.g. sglang==0.5.10.post1..sglang==0.5.23)")
    for v in m.groups():
        try:
            version_key(v)
        except ValueError:
            raise TargetError(f"--history: {v!r} is not a release version X.Y.Z or X.Y.Z.postN") from None
    return m.group(1), m.group(2)


def registry_versions() -> list[str]:
    """sglang's versions on the package registry (final and post releases), oldest first."""
    registry = Registry()
    try:
        return sorted(registry.versions(), key=version_key)
    finally:
        registry.close()


def releases_in(a: str, b: str, known: list[str]) -> list[str]:
    """The registry releases from a to b, both included, oldest first; TargetError on an unknown
    end or an empty range."""
    for v in (a, b):
        if v not in known:
            raise TargetError(f"--history: sglang=={v} is not on the package registry "
                              f"(it has {known[0]} .. {known[-1]})")
    lo, hi = version_key(a), version_key(b)
    if lo > hi:
        raise TargetError(f"--history: the range sglang=={a}..sglang=={b} is empty "
                          f"({a} is newer than {b}; give the older release first)")
    return [v for v in known if lo <= version_key(v) <= hi]


def code_fingerprint() -> str:
    """sha256 over the code an audit result depends on (proto, spec, audit) and the versions of
    sumonce, z3 and Python."""
    import z3

    from sumonce import __version__, audit, proto, spec
    h = hashlib.sha256(f"{__version__}|{z3.get_version_string()}|{sys.version}".encode())
    for pkg in (proto, spec, audit):
        root = Path(pkg.__file__).parent
        for f in sorted(root.rglob("*.py")):
            h.update(f"{pkg.__name__}/{f.relative_to(root)}\0".encode())
            h.update(f.read_bytes())
    return h.hexdigest()


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _results_dir() -> Path:
    return cache_dir() / "audits"


def audit_one(version: str, wheel: str, cache_file: str | None) -> dict:
    """One release's entry: era, era_reason, wheel, the audit's JSON (audit/report.to_json).
    Read from the result cache file when there; written there after a fresh audit. (The parent
    names the file: a spawned child would not see where the parent keeps its cache.)"""
    cached = Path(cache_file) if cache_file else None
    if cached is not None and cached.is_file():
        try:
            entry = json.loads(cached.read_text())
            return entry | {"cached": True}
        except (OSError, ValueError):
            pass  # NOTE: an unreadable cache file is audited afresh and rewritten
    from . import history_bugs, report
    from .audit import audit
    from .source import from_wheel
    src = from_wheel(Path(wheel))
    src.label = f"sglang=={version}"
    rep = audit(src, prefetch=False)  # NOTE: the workers keep every core busy already
    entry = {"release": version, "era": str(rep.era) if rep.era is not None else None,
             "era_reason": rep.era_reason, "wheel": Path(wheel).name, "audit": report.to_json(rep),
             "bugs": history_bugs.decide(rep.release, version)}
    if cached is not None:
        _store(cached, entry)
    return entry | {"cached": False}


def _store(path: Path, entry: dict) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(entry))
        os.replace(tmp, path)  # NOTE: atomic: a concurrent reader sees the whole file or none
    except OSError:
        pass  # a cache that cannot be written costs time only


def run(versions: list[str], jobs: int = 2, use_cache: bool = True) -> list[dict]:
    """Every release's entry, oldest first; TargetError naming a release no era fits."""
    done = _entries(versions, jobs, use_cache)
    return _in_eras([done[v] for v in versions])


def run_range(a: str, b: str, jobs: int = 2, use_cache: bool = True) -> list[dict]:
    """run() of the registry's releases from a to b. The registry is asked beside the audits:
    the cached wheels in the range are audited meanwhile (one it does not list is dropped, one it
    lists that is not cached is fetched and audited after), so the entries are run()'s."""
    registry = Registry()
    try:
        lo, hi = version_key(a), version_key(b)
        guess = sorted((v for v in cached_versions() if lo <= version_key(v) <= hi), key=version_key)

        def answered() -> set[str]:
            return set(releases_in(a, b, sorted(registry.versions(), key=version_key)))
        done = _entries(guess, jobs, use_cache, (registry, answered)) if lo <= hi else {}
        versions = releases_in(a, b, sorted(registry.versions(), key=version_key))
        done |= _entries([v for v in versions if v not in done], jobs, use_cache)
        return _in_eras([done[v] for v in versions])
    finally:
        registry.close()


def _in_eras(entries: list[dict]) -> list[dict]:
    for e in entries:
        if not e["era"]:
            raise TargetError(f"--history: sglang=={e['release']}: no era fits this release ({e['era_reason']}); "
                              "every release in the range must be judged in an era")
    return entries


def _entries(versions: list[str], jobs: int, use_cache: bool, watch=None) -> dict[str, dict]:
    """release -> its entry (from the result cache, or audited by the workers). watch: (something
    multiprocessing.connection.wait can wait on, a call that, once it is ready, names the releases
    still wanted), read while the workers run."""
    wheels = [fetch(v) for v in versions]
    keys = [None] * len(versions)
    if use_cache:
        code = code_fingerprint()
        keys = [hashlib.sha256(f"{_sha256(w)}|{code}".encode()).hexdigest() for w in wheels]
    args = [(v, str(w), str(_results_dir() / f"{k}.json") if k else None) for v, w, k in zip(versions, wheels, keys)]
    todo = [a for a in args if not (a[2] and Path(a[2]).is_file())]
    done = {e["release"]: e for e in _audit_each(todo, jobs, watch)}
    keep = watch[1]() if watch else None
    return {a[0]: done.get(a[0]) or audit_one(*a) for a in args if keep is None or a[0] in keep}


def _audit_each(todo: list[tuple], jobs: int, watch=None) -> list[dict]:
    """The releases audited by `jobs` worker processes, each auditing consecutive releases (forked
    from this one where that is safe, else spawned); in this process for one job where forking is
    not safe.

    NOTE: a worker keeps what an audit may remember for the next (the model files' trees by text,
    their coverage facts, proto's lifted functions): consecutive releases share most files. Nothing
    it keeps changes an answer: a witness depends on its question alone (spec/readable pins every
    setting, F, R and the guard's opaque atoms), so each release's entry is the one its audit alone
    gives (bench/audit_same.py checks the whole range with 2 workers and with 1)."""
    if not todo:
        return []
    if jobs == 1 and not fork_is_safe():
        return [audit_one(*a) for a in sorted(todo, key=lambda a: version_key(a[0]))]
    from . import audit, history_bugs, report  # noqa: F401 -- imported before the forks, shared by the workers
    # NOTE: a process with other threads or a Ray session spawns (its workers import again)
    ctx = multiprocessing.get_context("fork" if fork_is_safe() else "spawn")
    return Workers(ctx, _serve, sorted(todo, key=lambda a: version_key(a[0])), jobs, watch).run()


def _serve(conn) -> None:
    """A worker: audits the releases it is handed until it is handed None; an audit that raises
    ends it, the exception sent back (raised again in the parent, as a pool would)."""
    # NOTE: a worker frees little between audits (what it keeps for the next is most of what it
    # made); the cyclic collector's passes would only rescan it (the audit turns it off anyway)
    gc.disable()
    memo.keep()
    while True:
        a = conn.recv()
        if a is None:
            return
        try:
            conn.send((True, audit_one(*a)))
        except BaseException as e:  # noqa: BLE001
            conn.send((False, e))
            return


def jobs_from_env() -> int:
    """SUMONCE_HISTORY_JOBS: worker processes (default 2, one per core of the target machine)."""
    text = os.environ.get("SUMONCE_HISTORY_JOBS", "2")
    if not text.isdigit() or int(text) < 1:
        raise TargetError(f"SUMONCE_HISTORY_JOBS={text!r}: give a whole number of worker processes, 1 or more")
    return int(text)


def command(spec: str, as_json: bool, fresh: bool = False) -> int:
    """`sumonce audit --history RANGE [--json] [--fresh]`: prints the history, returns the exit code."""
    import time

    from sumonce.output import document, dump

    from . import history_report
    start = time.perf_counter()
    jobs = jobs_from_env()
    a, b = parse_range(spec)
    entries = run_range(a, b, jobs=jobs, use_cache=not fresh)
    seconds = time.perf_counter() - start
    if as_json:
        dump(document("audit-history", history_report.to_json(entries, spec, seconds)))
    else:
        print("\n".join(history_report.lines(entries, spec, seconds)))
    return history_report.exit_code(entries)
