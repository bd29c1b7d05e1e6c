"""A worker pool forks only a process that may fork: CI hung for 900 s when `sumonce prove` forked
its workers inside a pytest process that also held a Ray session (a forked child inherits locks
held by Ray's threads and never gets them back)."""
from __future__ import annotations

import threading

from sumonce.procs import fork_is_safe
from sumonce.spec import check
from sumonce.spec.properties import all_properties


def _with_a_thread(body):
    stop = threading.Event()
    t = threading.Thread(target=stop.wait, daemon=True)
    t.start()
    try:
        return body()
    finally:
        stop.set()
        t.join()


def test_a_process_with_another_thread_may_not_fork():
    assert fork_is_safe() in (True, False)
    assert _with_a_thread(fork_is_safe) is False


def test_run_all_with_another_thread_runs_in_process_and_gives_the_forked_table(monkeypatch):
    props = [p for p in all_properties() if p.kind.name == "LEMMA"][:6]
    assert len(props) == 6
    serial = [(r.prop.name, r.status) for r in check.run_all(props, 10_000, jobs=1)]

    def refuse(*_a, **_k):
        raise AssertionError("forked although another thread was running")

    monkeypatch.setattr(check, "_run_forked", refuse)
    threaded = _with_a_thread(lambda: check.run_all(props, 10_000, jobs=2))
    assert [(r.prop.name, r.status) for r in threaded] == serial


def test_a_ray_session_forbids_forking(ray_cluster):
    import ray

    assert ray.is_initialized()
    assert fork_is_safe() is False
