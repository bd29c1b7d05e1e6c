"""One local Ray cluster shared by every actor test (actor start-up is slow on 2 cores)."""
import os
import warnings

import pytest

warnings.filterwarnings("ignore", message=".*NumPy.*")


@pytest.fixture(scope="session")
def ray_cluster():
    import ray
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=4, include_dashboard=False, log_to_driver=False,
                 runtime_env={"env_vars": {"PYTHONWARNINGS": "ignore"}})
    yield ray
    if started:
        ray.shutdown()
