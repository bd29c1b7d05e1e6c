"""audit/memo.py: what one audit remembers for the next (`--history` audits consecutive releases
in one worker) changes no answer. A release audited after its predecessor (every tree it needs
already parsed) gives the same JSON, times aside, as audited in a process that remembers nothing;
every release of a range is audited by exactly one worker, each worker's releases consecutive.
The whole range, against the code before: bench/audit_same.py."""
from __future__ import annotations

import json
import multiprocessing
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from sumonce.audit import coverage, era, history, memo, report
from sumonce.audit.audit import audit
from sumonce.audit.source import load


def _fresh_json(target: str) -> str:
    memo.forget()
    coverage.forget()
    era.parse_utils.cache_clear()
    got = report.to_json(audit(load(target)))
    got.pop("seconds")
    return json.dumps(got, sort_keys=True)


@pytest.mark.sglang
def test_a_release_after_its_predecessor_is_audited_as_alone():
    alone = _fresh_json("sglang==0.5.13.post1")
    _fresh_json("sglang==0.5.13")  # remembers its trees and answers: 0.5.13.post1 shares them all
    parsed = len(memo._TREES)
    after = report.to_json(audit(load("sglang==0.5.13.post1")))
    after.pop("seconds")
    assert parsed > 0 and len(memo._TREES) == parsed  # every tree it needs was parsed for 0.5.13
    assert json.dumps(after, sort_keys=True) == alone


@pytest.mark.parametrize("n, workers", [(17, 2), (17, 3), (17, 4), (2, 2), (3, 3), (1, 1), (5, 4)])
def test_every_release_is_audited_by_exactly_one_worker(n, workers, monkeypatch):
    """The workers (threads here, sharing the ends as the processes do) take releases from both
    ends of their blocks until they meet: each release once, each worker's releases consecutive."""
    todo = [(str(i), "", None) for i in range(n)]
    monkeypatch.setattr(history, "audit_one", lambda v, _w, _k: time.sleep(0.001) or {"release": v})
    monkeypatch.setattr(history.gc, "freeze", lambda: None)
    history._share(multiprocessing.get_context("spawn").Array("i", history._ends(n, min(workers, n))))
    with ThreadPoolExecutor(workers) as pool:
        served = list(pool.map(history._serve, [(todo, k) for k in range(min(workers, n))]))
    got = sorted(int(e["release"]) for run_ in served for e in run_)
    assert got == list(range(n))
    for run_ in served:
        idx = sorted(int(e["release"]) for e in run_)
        assert idx == list(range(idx[0], idx[0] + len(idx))) if idx else idx == []
