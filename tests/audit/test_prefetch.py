"""audit/prefetch.py: the coverage facts read in a forked child give the report the audit gives
without it; an audit inside a daemonic worker (which may not start children) reads them itself."""
from __future__ import annotations

import json
import multiprocessing

import pytest
from sumonce.audit import prefetch, report
from sumonce.audit.audit import audit
from sumonce.audit.source import load

pytestmark = pytest.mark.sglang


def _json(rep) -> str:
    got = report.to_json(rep)
    got.pop("seconds")
    return json.dumps(got, sort_keys=True)


def test_the_child_reads_facts_and_the_report_is_the_same(monkeypatch):
    src = load("sglang==0.5.23")
    started = []
    real = prefetch.Prefetch

    def spy(*args):
        started.append(real(*args))
        return started[-1]
    monkeypatch.setattr(prefetch, "Prefetch", spy)
    with_child = _json(audit(src))
    assert len(started) == 1 and len(started[0].got) > 20  # the child sent the facts of many files
    assert with_child == _json(audit(load("sglang==0.5.23"), prefetch=False))


def _sites_in_a_worker(_):
    assert not prefetch.usable()
    return len(audit(load("sglang==0.5.23")).sites)


def test_an_audit_in_a_daemonic_worker_starts_no_child():
    with multiprocessing.get_context("fork").Pool(1) as pool:
        got = pool.map(_sites_in_a_worker, [0])
    assert got == [len(audit(load("sglang==0.5.23"), prefetch=False).sites)] and got[0] > 0
