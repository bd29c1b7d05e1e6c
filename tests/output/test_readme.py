"""The README's commands, pasted in order into a shell (in a fresh folder), each exit 0. The Ray
ones (`sumonce run`, `sumonce repro`) are left to tests/actors, which run them on a cluster of
their own; `audit sglang==X` reads real wheels from the package registry."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.sglang


def readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    block = text[text.index("After `make demo`"):].split("\n\n")[1]
    return [line[4:].split("  #")[0].strip() for line in block.splitlines() if line.startswith("    ")]


def test_the_readme_block_is_found():
    cmds = readme_commands()
    assert cmds[0] == ". .venv/bin/activate" and cmds[-1] == "sumonce version" and len(cmds) > 10


def test_the_readme_commands_work_in_order(tmp_path):
    # NOTE: as an interactive shell runs them (no pipefail: `| head` is a pipe's last word)
    lines = [f"sumonce() {{ {sys.executable} -m sumonce.cli \"$@\"; }}"]
    ran = 0
    for cmd in readme_commands()[1:]:  # NOTE: the Makefile's venv is this interpreter here
        if cmd.startswith(("sumonce run", "sumonce repro")):
            continue
        lines.append(f'{{ {cmd}; }} > /dev/null || {{ echo "FAILED ($?): {cmd}" >&2; exit 1; }}')
        ran += 1
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    got = subprocess.run(["bash", "-c", "\n".join(lines)], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert got.returncode == 0 and "Traceback" not in got.stderr, got.stderr[-2000:]
    assert ran >= 9
    assert (tmp_path / "prove.json").stat().st_size and (tmp_path / "prove.xml").stat().st_size
    assert (tmp_path / "baseline.json").is_file() and (tmp_path / "audit.sarif").is_file()
    assert sorted(p.name for p in (tmp_path / "cx").iterdir())
