"""The command line as CI and researchers use it: plain lines that keep names whole, a reader
closing the pipe early, exit codes and allowed values in every --help."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from sumonce.proto.sites import Version

from .conftest import run

ROOT = Path(__file__).resolve().parents[2]


def sumonce(*args: str, **kw) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "40"}
    return subprocess.run([sys.executable, "-m", "sumonce.cli", *args], env=env, text=True, **kw)


def test_prove_plain_keeps_every_property_name_whole_on_one_line():
    code, out = run(["prove", "--format", "plain", "--only", "history:*"])
    assert code == 0
    table = out.split("\n\n")[0].splitlines()[1:]  # the counterexamples follow a blank line
    names = [line.split()[0] for line in table if line.startswith("history:")]
    listed = run(["prove", "--list", "--only", "history:*"])[1].splitlines()
    assert names == [line.split("\t")[0] for line in listed] and len(names) >= 16


def test_not_a_terminal_means_plain_lines_even_in_a_narrow_window():
    got = sumonce("prove", "--only", "history:qwen3_moe@pre-23731:*", capture_output=True)
    assert got.returncode == 0, got.stderr
    assert any(line.startswith("history:qwen3_moe@pre-23731:#23729  ") for line in got.stdout.splitlines())


def test_audit_plain_keeps_methods_whole(tree):
    code, out = run(["audit", str(tree), "--format", "plain"])
    rows = [line for line in out.splitlines() if line.startswith("shapes ")]
    assert code == 1 and len(rows) == 9
    assert any("SizeFromArgument.forward" in r and "not understood" in r for r in rows)


@pytest.mark.parametrize("args", [("prove", "--list"), ("prove", "--only", "q-and-v-*"), ("config", "--tp", "4"),
                                  ("prove", "--help"), ("--help",)])
def test_a_closed_pipe_ends_quietly(args):
    """The reader is gone before anything is written (`| head` that has read enough)."""
    read, write = os.pipe()
    os.close(read)
    try:
        got = sumonce(*args, stdout=write, stderr=subprocess.PIPE)
    finally:
        os.close(write)
    # NOTE: argparse's --help swallows the error itself and exits 0
    assert got.returncode == (0 if "--help" in args[1:] else 141) and got.stderr == "", got.stderr


def test_a_closed_pipe_after_some_lines():
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "sumonce.cli", "prove", "--list"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    first = proc.stdout.readline()
    proc.stdout.close()
    assert proc.wait() in (0, 141) and first.startswith("q-and-v-exclusive")
    assert "Traceback" not in proc.stderr.read()


@pytest.mark.parametrize("command", ["prove", "audit", "run", "config", "repro"])
def test_every_help_gives_the_exit_codes(command):
    if command in ("run", "repro"):
        pytest.importorskip("torch")
        pytest.importorskip("ray")
    out = sumonce(command, "--help", capture_output=True).stdout
    assert "exit codes:" in out and "\n  0  " in out and "\n  2  " in out, out


def test_run_help_shows_allowed_values_and_guard_version():
    pytest.importorskip("torch")
    out = sumonce("run", "--help", capture_output=True).stdout
    assert "--guard-version {" + ",".join(v.value for v in Version) + "}" in out
    assert "--moe-a2a-backend {none," in out and "--sweep {small,full}" in out
    assert sumonce("run", "--version", capture_output=True).stdout.startswith("sumonce ")


def test_the_dispatcher_help_lists_the_exit_codes():
    out = sumonce("--help", capture_output=True).stdout
    assert "exit codes" in out and "141" in out


@pytest.mark.parametrize("command", ["prove", "audit", "run"])
def test_version_is_the_tools_own_in_every_command(command):
    if command == "run":
        pytest.importorskip("torch")
    from sumonce import __version__
    got = sumonce(command, "--version", capture_output=True)
    assert got.returncode == 0 and got.stdout.strip() == f"sumonce {__version__}"
