"""When a worker pool may fork this process, and a pass that keeps the cyclic collector off.

Forking copies the memory of every thread but runs only the calling one in the child: a lock held
by another thread (Ray's gRPC and event threads in a Ray driver, a test session that started a
cluster) stays held forever in the child, which then hangs. So a pool forks only a process that
has no other threads and no Ray connection; otherwise the caller works without forking.
"""
from __future__ import annotations

import gc
import sys
import threading
from contextlib import contextmanager


def fork_is_safe() -> bool:
    """True when this process may fork workers: Linux, one Python thread, no Ray session."""
    if sys.platform != "linux" or threading.active_count() > 1:
        return False
    ray = sys.modules.get("ray")
    is_initialized = getattr(ray, "is_initialized", None)
    return not (callable(is_initialized) and is_initialized())


@contextmanager
def cyclic_gc_off():
    """The cyclic garbage collector off for the block, as it was after: for a pass that makes ASTs
    and z3 terms by the ten thousand and leaves them to their reference counts (the audit, the
    property table), where the collector's scans of them are pure cost."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
