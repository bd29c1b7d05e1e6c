"""`sumonce config`, `sumonce version`, `sumonce --help`, and that proto stays light."""
import subprocess
import sys

import pytest

from sumonce.cli import main


def run(*args):
    return subprocess.run([sys.executable, "-m", "sumonce.cli", *args], capture_output=True, text=True)


def test_import_proto_loads_nothing_heavy():
    code = "import sys, proto, proto.flags, proto.serial; print(sorted(m for m in ('torch','z3','ray') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_help_and_version(capsys):
    assert main(["--help"]) == 0
    assert "prove" in capsys.readouterr().out
    assert main(["version"]) == 0
    assert capsys.readouterr().out.startswith("sumonce ")


def test_config_prints_sizes_and_q_v_f_r():
    r = run("config", "--tp", "4", "--ep", "2", "--model", "qwen3_moe")
    assert r.returncode == 0, r.stderr
    lines = dict(line.rsplit(None, 1) for line in r.stdout.splitlines() if line and not line.startswith("note"))
    assert lines["moe_tp_size"] == "2"
    assert lines["F should_allreduce_fusion"] == "True"
    assert lines["V should_use_dp_reduce_scatterv"] == "False"


def test_config_normalises_like_sglang():
    r = run("config", "--tp", "8", "--ep", "2", "--moe-a2a-backend", "deepep")
    assert r.returncode == 0
    assert "SGLang sets ep_size = tp_size = 8" in r.stdout


@pytest.mark.parametrize("args,text", [
    (["--tp", "4", "--ep", "3"], "ep_divides_tp"),
    (["--tp", "x"], "is not an integer"),
    (["--moe-a2a-backend", "foo"], "is not one of"),
    (["--frobnicate"], "unrecognized arguments"),
    (["--tp", "4", "--model", "nope"], "unknown model"),
    (["--num-tokens", "-1"], "--num-tokens"),
])
def test_bad_flags_one_line_exit_2(args, text):
    r = run("config", *args)
    assert r.returncode == 2
    assert r.stdout == ""
    assert len(r.stderr.strip().splitlines()) == 1
    assert text in r.stderr


def test_unknown_command_exit_2():
    r = run("frob")
    assert r.returncode == 2 and "unknown command" in r.stderr
