"""Connecting to Ray: an existing cluster (RAY_ADDRESS, `ray job submit`, a running head) or a
local one started here and shut down on exit."""
from __future__ import annotations

import os
import warnings


def quiet() -> None:
    warnings.filterwarnings("ignore", message=".*NumPy.*")
    warnings.filterwarnings("ignore", category=UserWarning, module="torch")


def connect(num_cpus: int) -> bool:
    """ray.init; True when this process started the cluster (and so must shut it down)."""
    import ray
    if ray.is_initialized():
        return False
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    env = {"env_vars": {"PYTHONWARNINGS": "ignore"}}
    if os.environ.get("RAY_ADDRESS"):
        ray.init(address="auto", log_to_driver=False)
        return False
    try:
        ray.init(address="auto", log_to_driver=False)
        return False
    except (ConnectionError, RuntimeError, ValueError):
        pass
    ray.init(num_cpus=num_cpus, include_dashboard=False, runtime_env=env, log_to_driver=False)
    return True


def disconnect(started: bool) -> None:
    import ray
    if started and ray.is_initialized():
        ray.shutdown()
