"""One report for the whole folder: the proofs and the map are built once (about 10 s)."""
from pathlib import Path

import pytest

from sumonce.report import mapdata, proofs

ROOT = Path(__file__).resolve().parents[2]
SWEEP = Path(__file__).parent / "data" / "sweep_small_w2.json"


@pytest.fixture(scope="session")
def built():
    found, witnesses = proofs.run_proofs()
    return found, witnesses, mapdata.build(found, witnesses)


@pytest.fixture(scope="session")
def report_html(tmp_path_factory):
    """The page as `sumonce report` writes it, with the sweep fixture and the H200 perf JSON."""
    from sumonce.report.cli import main
    out = tmp_path_factory.mktemp("report") / "report.html"
    args = [str(out), "--perf", str(ROOT / "docs/perf/h200x4")]
    if SWEEP.exists():
        args += ["--sweep", str(SWEEP)]
    assert main(args) == 0
    return out
