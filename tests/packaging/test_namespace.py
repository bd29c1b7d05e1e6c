"""One import namespace: sumonce installs only `sumonce` (sumonce.proto, .spec, .actors), so it sits
beside proto-plus (whose top-level package is `proto`) in either install order, and uninstalling
either leaves the other working. Real venvs, real wheels from the package registry."""
from __future__ import annotations

import shutil
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.packaging

PROTO_PLUS_WORKS = ("import proto, google.api_core\n"
                    "class M(proto.Message):\n    x = proto.Field(proto.INT32, number=1)\n"
                    "assert M(x=3).x == 3\nprint('proto-plus ok')")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    # NOTE: built from a copy of the tracked files, so the checkout gets no build/ folder
    src = tmp_path_factory.mktemp("src")
    files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True)
    for name in files.stdout.split():
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, src / name)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                    "-w", str(out), str(src)], check=True, capture_output=True)
    return next(out.glob("sumonce-*.whl"))


def test_wheel_has_one_top_level_package(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert tops == {"sumonce"}, tops
    for sub in ("proto", "spec", "audit", "actors"):
        assert f"sumonce/{sub}/__init__.py" in names


def _venv(path: Path) -> Path:
    venv.create(path, with_pip=True)
    return path / "bin" / "python"


def _pip(py: Path, *args: str) -> None:
    subprocess.run([str(py), "-m", "pip", "install", "-q", *args], check=True, capture_output=True)


def _check_both(py: Path) -> None:
    # NOTE: cwd away from the checkout, whose proto/ folder would otherwise be found first
    got = subprocess.run([str(py), "-c", PROTO_PLUS_WORKS], capture_output=True, text=True, cwd=py.parents[2])
    assert got.returncode == 0 and "proto-plus ok" in got.stdout, got.stderr
    prove = subprocess.run([str(py), "-m", "sumonce.cli", "prove", "--only", "q-and-v-*"],
                           capture_output=True, text=True, cwd=py.parents[2])
    assert prove.returncode == 0, prove.stdout + prove.stderr
    assert "proved" in prove.stdout


@pytest.mark.parametrize("order", ["proto-plus first", "sumonce first"])
def test_beside_google_api_core_either_order(tmp_path, wheel, order):
    py = _venv(tmp_path / "venv")
    google = ("google-api-core", "proto-plus")
    if order == "proto-plus first":
        _pip(py, *google)
        _pip(py, str(wheel))
    else:
        _pip(py, str(wheel))
        _pip(py, *google)
    _check_both(py)
    # uninstalling sumonce must leave proto-plus whole
    subprocess.run([str(py), "-m", "pip", "uninstall", "-y", "-q", "sumonce"], check=True)
    got = subprocess.run([str(py), "-c", PROTO_PLUS_WORKS], capture_output=True, text=True, cwd=tmp_path)
    assert got.returncode == 0, got.stderr


def test_core_install_names_the_missing_extra(tmp_path, wheel):
    py = _venv(tmp_path / "venv")
    _pip(py, str(wheel))
    got = subprocess.run([str(py), "-m", "sumonce.cli", "run", "--tp-size", "2"],
                         capture_output=True, text=True, cwd=tmp_path)
    assert got.returncode == 2
    assert got.stderr.strip().count("\n") == 0
    assert "pip install 'sumonce[actors]'" in got.stderr
