"""Fixtures every test folder may use."""
import os

import pytest


@pytest.fixture(scope="session")
def ray_cluster():
    """One local Ray cluster for the session, shared by the actor and adversarial tests that do not
    test cluster isolation itself (actor start-up is slow on 2 cores)."""
    import ray
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=4, include_dashboard=False, log_to_driver=False,
                 runtime_env={"env_vars": {"PYTHONWARNINGS": "ignore"}})
    yield ray
    if started:
        ray.shutdown()
