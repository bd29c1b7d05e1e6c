"""audit/prefetch.py: the coverage facts read in a forked child give the report the audit gives
without it; an audit inside a daemonic worker (which may not start children) reads them itself."""
from __future__ import annotations

import json
from functools import cache

import pytest
from sumonce.audit import prefetch

pytestmark = pytest.mark.sglang


_CHILD = """
import json, multiprocessing
from sumonce.audit import prefetch, report
from sumonce.audit.audit import audit
from sumonce.audit.source import load

def as_json(rep):
    got = report.to_json(rep)
    got.pop("seconds")
    return json.dumps(got, sort_keys=True)

def sites_in_a_worker(_):
    assert not prefetch.usable()
    return len(audit(load("sglang==0.5.23")).sites)

if __name__ == "__main__":
    started, real = [], prefetch.Prefetch
    def spy(*args):
        started.append(real(*args))
        return started[-1]
    prefetch.Prefetch = spy
    with_child = as_json(audit(load("sglang==0.5.23")))
    without = as_json(audit(load("sglang==0.5.23"), prefetch=False))
    with multiprocessing.get_context("fork").Pool(1) as pool:
        in_worker = pool.map(sites_in_a_worker, [0])
    print(json.dumps({"usable": prefetch.usable(), "started": len(started),
                      "got": len(started[0].got) if started else 0, "same": with_child == without,
                      "in_worker": in_worker, "sites": len(json.loads(without)["sites"])}))
"""


@cache
def _run_child() -> dict:
    """In a fresh interpreter: this one may hold a Ray session (tests/actors), where the audit
    starts no child and forking a pool is not safe."""
    import subprocess
    import sys
    out = subprocess.run([sys.executable, "-c", _CHILD], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def test_the_child_reads_facts_and_the_report_is_the_same():
    got = _run_child()
    if not got["usable"]:  # NOTE: a one-core machine: no child, the report as without one
        assert got["started"] == 0 and got["same"]
        return
    assert got["started"] == 1 and got["got"] > 20  # the child sent the facts of many files
    assert got["same"]


def test_an_audit_in_a_daemonic_worker_starts_no_child():
    got = _run_child()
    assert got["in_worker"] == [got["sites"]] and got["sites"] > 0


def test_no_child_where_forking_is_not_safe(monkeypatch):
    """A process with a Ray session or other threads (sumonce.procs.fork_is_safe) starts none."""
    monkeypatch.setattr(prefetch, "fork_is_safe", lambda: False)
    assert not prefetch.usable()


class _Sent:
    """Where prefetch._read sends its facts, read here (the child's end of the pipe)."""

    def send(self, got):
        self.got = got

    def close(self):
        pass


def _child_read(files: dict, shared: dict, marked: int = 0, declare: dict | None = None) -> dict:
    """prefetch._read run here (not forked) on the list `files` + `shared`, with a real shared
    byte array whose last `marked` entries the audit's process has taken."""
    import multiprocessing
    listed = [*files.items(), *shared.items()]
    marks, sent = multiprocessing.get_context("fork").RawArray("b", len(listed)), _Sent()
    for i in range(len(listed) - marked, len(listed)):
        marks[i] = 2
    prefetch._read(listed, marks, sent, declare)
    assert all(marks[i] == 1 for i in range(len(listed) - marked))
    return sent.got


def test_the_child_reads_the_list_until_a_file_the_audit_took():
    own = {"sglang/srt/models/a.py": "class A:\n    pass\n"}
    shared = {"sglang/srt/models/b.py": "x = 1\n", "sglang/srt/models/c.py": "def f(:\n"}
    going = _child_read(own, shared)
    assert set(going) == set(own) | set(shared)
    assert going["sglang/srt/models/c.py"] is None  # NOTE: a file that does not parse: read by coverage again
    assert set(_child_read(own, shared, marked=2)) == set(own)
    assert set(_child_read(own, shared, marked=3)) == set()


def test_the_audit_takes_the_files_the_child_has_not_reached():
    """Prefetch.facts where the child has marked the first file only: the audit's process reads
    every later one and keeps the child's for the first."""
    src, parsed = _release_0523()
    rels = prefetch.wanted(src, parsed)[:3]
    p = prefetch.Prefetch.__new__(prefetch.Prefetch)
    p.files = [(r, src.files[r]) for r in rels]
    p.marks = [1, 0, 0]
    p.got, p.receive, p.child = None, _Received({rels[0]: "the child's"}), _Joined()
    got = p.facts()
    assert got[rels[0]] == "the child's" and p.marks == [1, 2, 2]
    assert got[rels[1]] is not None and got[rels[2]] is not None


class _Received:
    """The audit's end of the pipe, holding what the child sent."""

    def __init__(self, got):
        self.got = got

    def recv(self):
        return dict(self.got)

    def close(self):
        pass


class _Joined:
    def join(self):
        pass


@cache
def _release_0523():
    from sumonce.audit.audit import _builds_blocks_of, _reducing
    from sumonce.audit.source import load
    src = load("sglang==0.5.23")
    reducing = _reducing(src)
    parsed = {r for r in src.models() if r in reducing or _builds_blocks_of(src.files[r], reducing)}
    return src, parsed


def test_the_child_reads_the_files_decoders_take_stage_declarations_from():
    """0.5.23: qwen3_moe's decoder declares its stages through qwen3/qwen2 helpers, nemotron_h
    through nemotron_h_utils, deepseek_v4 through deepseek_v4_boundary (coverage_boundary._declared
    reads their facts): the child reads them; dense model files no MoE file imports from are not
    read."""
    src, parsed = _release_0523()
    rels = prefetch.wanted(src, parsed)
    declare = prefetch.declaring(src, set(rels) | parsed)
    got = _child_read({r: src.files[r] for r in rels}, {r: src.files[r] for r in sorted(parsed)},
                      marked=len(parsed), declare={r: src.files[r] for r in declare})
    models = "sglang/srt/models/"
    for stem in ("qwen3", "qwen2", "llama", "nemotron_h_utils", "deepseek_v4_boundary"):
        assert models + stem + ".py" in declare and got[models + stem + ".py"] is not None, stem
    assert not set(got) & parsed and set(rels) <= set(got)
    assert set(declare) - set(got)  # NOTE: e.g. dense decoders no MoE file imports from


def test_no_child_where_none_can_be_made(monkeypatch):
    """No shared memory or no process to be had (OSError): no child, every file read in the audit."""
    src, parsed = _release_0523()

    def fails(*_args):
        raise OSError(24, "Too many open files")
    monkeypatch.setattr(prefetch, "usable", lambda: True)
    monkeypatch.setattr(prefetch, "Prefetch", fails)
    assert prefetch.start(src, parsed) is None
