from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(scope="session")
def release_reports():
    """The three releases, fetched into the cache once (sglang==X through pip download)."""
    from sumonce.audit.audit import audit
    from sumonce.audit.source import load
    return {v: audit(load(f"sglang=={v}")) for v in ("0.5.10.post1", "0.5.11", "0.5.23")}


@pytest.fixture(scope="session")
def fixture_report():
    from sumonce.audit.audit import audit
    from sumonce.audit.source import load
    return audit(load(str(FIXTURES / "tree")))
