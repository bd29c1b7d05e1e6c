"""Real output of the real commands, made once per session: `sumonce prove` (the full table, and one
run whose expectations fail) and `sumonce audit` on the fixture tree."""
from __future__ import annotations

import contextlib
import io
import json
import shutil
from pathlib import Path

import pytest

from sumonce.cli import main

FIXTURE_TREE = Path(__file__).resolve().parents[1] / "audit" / "fixtures" / "tree"


def run(argv: list[str]) -> tuple[int, str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(argv)
    return code, out.getvalue()


@pytest.fixture(scope="session")
def proved(tmp_path_factory):
    """`sumonce prove --json --junit-xml`: the exit code, the JSON document, the XML file."""
    xml = tmp_path_factory.mktemp("junit") / "prove.xml"
    code, out = run(["prove", "--json", "--junit-xml", str(xml)])
    return code, json.loads(out), xml


@pytest.fixture(scope="session")
def not_as_expected(tmp_path_factory):
    """A run in which properties expected to hold are refuted (the known findings not excluded)."""
    xml = tmp_path_factory.mktemp("junit") / "bad.xml"
    code, out = run(["prove", "--json", "--no-known-findings", "--only", "exactly-once:*@helper",
                     "--junit-xml", str(xml)])
    return code, json.loads(out), xml


@pytest.fixture
def tree(tmp_path) -> Path:
    """A copy of the audit fixture tree, laid out as an SGLang checkout (python/sglang/srt/...)."""
    root = tmp_path / "sglang-checkout"
    shutil.copytree(FIXTURE_TREE, root / "python")
    return root
