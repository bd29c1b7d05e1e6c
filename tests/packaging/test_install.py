"""`pip install .` on a copy of the tree: it leaves no build/ or *.egg-info behind (the backend
builds in a temporary copy, tools/build_backend.py), prints no deprecation warning (the licence is
an SPDX expression), and installs the JSON Schemas of the --json documents with the package."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.packaging


def copy_of_the_tree(dest: Path) -> Path:
    files = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                           capture_output=True, text=True, check=True).stdout.split()
    for name in files:
        if (ROOT / name).is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, dest / name)
    return dest


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    src = copy_of_the_tree(tmp_path_factory.mktemp("src"))
    target = tmp_path_factory.mktemp("site")
    got = subprocess.run([sys.executable, "-m", "pip", "install", "-v", "--no-deps", "--no-build-isolation",
                          "--target", str(target), "."], cwd=src, capture_output=True, text=True)
    assert got.returncode == 0, got.stderr[-2000:]
    return src, target, got.stdout + got.stderr


def test_no_build_folder_or_egg_info_is_left_behind(installed):
    src, _, _ = installed
    left = sorted(p.name for p in src.iterdir() if p.name == "build" or p.name.endswith(".egg-info"))
    assert left == []


def test_no_deprecation_or_packaging_warning(installed):
    _, _, log = installed
    assert "deprecat" not in log.lower()
    assert "BuildBackendWarning" not in log and "absent from the `packages`" not in log


def test_the_schemas_are_installed_and_load(installed):
    _, target, _ = installed
    shipped = sorted(p.name for p in (target / "sumonce" / "schemas").glob("*.json"))
    assert shipped == sorted(p.name for p in (ROOT / "sumonce" / "schemas").glob("*.json")) and shipped
    code = "from sumonce.output import DOCUMENTS, schema; print(sorted(schema(k)['title'] for k in DOCUMENTS))"
    got = subprocess.run([sys.executable, "-c", code], cwd=target.parent, capture_output=True, text=True,
                         env={"PYTHONPATH": str(target), "PATH": "/usr/bin:/bin"})
    assert got.returncode == 0, got.stderr
    # one schema per document kind, every one shipped and loaded from the installed package
    assert len(json.loads(got.stdout.replace("'", '"'))) == len(shipped) == 6
