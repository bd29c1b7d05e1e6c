"""When a worker pool may fork this process.

Forking copies the memory of every thread but runs only the calling one in the child: a lock held
by another thread (Ray's gRPC and event threads in a Ray driver, a test session that started a
cluster) stays held forever in the child, which then hangs. So a pool forks only a process that
has no other threads and no Ray connection; otherwise the caller works without forking.
"""
from __future__ import annotations

import sys
import threading


def fork_is_safe() -> bool:
    """True when this process may fork workers: Linux, one Python thread, no Ray session."""
    if sys.platform != "linux" or threading.active_count() > 1:
        return False
    ray = sys.modules.get("ray")
    is_initialized = getattr(ray, "is_initialized", None)
    return not (callable(is_initialized) and is_initialized())
