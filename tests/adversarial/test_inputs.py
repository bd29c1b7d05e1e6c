"""Every other input (issue 15): one line, exit 2, before any work (no Ray, no proofs)."""
import json
import os

import pytest

from .conftest import one_line_2

RUN = ["run", "--gpu-arch", "cpu"]


@pytest.mark.parametrize("argv,words", [
    (["run", "--sweep", "small", "--worlds", "0"], "--worlds '0'"),
    (["run", "--sweep", "small", "--worlds", "-2"], "--worlds '-2'"),
    (["run", "--sweep", "small", "--worlds", "2,,4"], "--worlds"),
    (RUN + ["--tp", "2", "--timeout", "nan"], "--timeout"),
    (RUN + ["--tp", "2", "--timeout", "inf"], "--timeout"),
    (RUN + ["--tp", "2", "--timeout", "-5"], "--timeout"),
    (RUN + ["--tp", "2", "--seed", str(10**30)], "--seed"),
    (RUN + ["--tp", "2", "--num-tokens", str(10**30)], "--num-tokens"),
    (RUN + ["--tp", "2", "--num-tokens", "100000"], "--num-tokens 100000"),
    (RUN + ["--tp", "2", "--inject-fault", "kill:9"], "rank 9 is not in world size 2"),
    (["run", "--sweep", "small", "--worlds", "2,4", "--inject-fault", "hang:3"], "rank 3 is not in world size 2"),
    (RUN + ["--tp-s", "4"], "unrecognized arguments: --tp-s"),
    (RUN + ["--world", "2"], "unrecognized arguments: --world"),
    (["run", "--sweep", "small", "--models", ""], "--models ''"),
    (["run", "--sweep", "small", "--models", "qwen3_moe,"], "--models"),
    (RUN + ["--world-size", "0"], "--world-size"),
    (RUN + ["--tp", "2", "--num-cpus", "0"], "--num-cpus"),
    (RUN + ["--tp", str(2**40)], "out of range"),
])
def test_run_refuses(cli, argv, words):
    one_line_2(cli(*argv), words)


@pytest.mark.parametrize("argv", [
    RUN + ["--tp", "1048576", "--ep", "1048576"],
    ["run", "--sweep", "small", "--worlds", "4096", "--models", "qwen3_moe"],
])
def test_oversized_worlds_refused_before_ray_starts(cli, argv):
    import ray
    was = ray.is_initialized()  # (the session's shared cluster may be up already)
    line = one_line_2(cli(*argv), "world size")
    assert "GiB" in line or "CPUs" in line
    assert ray.is_initialized() == was


def test_an_address_that_does_not_answer_is_one_line():
    import subprocess
    import sys
    from pathlib import Path
    root = Path(__file__).resolve().parents[2]
    env = dict(os.environ, PYTHONPATH=str(root), RAY_AUTH_MODE="disabled")
    p = subprocess.run([sys.executable, "-m", "sumonce.cli", "run", "--tp", "2", "--gpu-arch", "cpu",
                        "--address", "127.0.0.1:1"], env=env, capture_output=True, text=True, timeout=120)
    one_line_2((p.returncode, p.stdout, p.stderr), "127.0.0.1:1 does not answer")


def test_the_sweep_names_num_cpus_where_the_machine_has_fewer_cpus():
    """A process pinned to one CPU (as on a one-core machine) runs a sweep whose largest world is 2."""
    import subprocess
    import sys
    from pathlib import Path
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2]), RAY_AUTH_MODE="disabled")
    env.pop("RAY_ADDRESS", None)
    p = subprocess.run([sys.executable, "-m", "sumonce.cli", "run", "--sweep", "small", "--worlds", "2",
                        "--models", "qwen3_moe"], env=env, capture_output=True, text=True, timeout=120,
                       preexec_fn=lambda: os.sched_setaffinity(0, {min(os.sched_getaffinity(0))}))
    line = one_line_2((p.returncode, p.stdout, p.stderr), "world size 2 needs 2 CPUs")
    assert "--num-cpus 2" in line and "--worlds" in line


@pytest.mark.parametrize("argv,words", [
    (["config", "--moe-runner-backend", "AUTO"], "case-sensitive"),
    (["config", "--quantization", "FP8"], "case-sensitive"),
    (["config", "--quantization", ""], "'' is not one of"),
    (["config", "--speculative-algorithm", "eagle"], "EAGLE"),
    (["config", "--gpu-arch", "SM90"], "case-sensitive"),
    (["config", "--tp-s", "4"], "unrecognized arguments: --tp-s"),
    (["config", "--tp", str(10**30)], "out of range"),
])
def test_config_refuses(cli, argv, words):
    one_line_2(cli(*argv), words)


def test_config_takes_sglangs_own_spelling(cli):
    code, out, _ = cli("config", "--speculative-algorithm", "EAGLE", "--tp", "2")
    assert code == 0 and "tp_size" in out


@pytest.mark.parametrize("argv,words", [
    (["prove", "--only", ""], "--only ''"),
    (["prove", "--jobs", "0"], "--jobs 0"),
    (["prove", "--jobs", "-1"], "--jobs -1"),
    (["prove", "--timeout", "5"], "unrecognized arguments: --timeout"),
    (["demo", "--bogus"], "--bogus"),
    (["version", "--bogus"], "--bogus"),
])
def test_prove_demo_version_refuse(cli, argv, words):
    one_line_2(cli(*argv), words)


def test_prove_checks_the_counterexample_folder_first(cli, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    one_line_2(cli("prove", "--counterexamples", str(blocker / "sub")), "--counterexamples")


def write(tmp_path, text: str | bytes):
    p = tmp_path / "cx.json"
    p.write_bytes(text if isinstance(text, bytes) else text.encode())
    return str(p)


GOOD = {"model": "qwen3_moe", "variant": "Qwen3MoeSparseMoeBlock.forward_normal", "version": "helper",
        "config": {"tp_size": 2, "ep_size": 2, "gpu_arch": "cpu"}, "state": {"num_tokens": 3}}


def shape(**over):
    d = json.loads(json.dumps(GOOD))
    for k, v in over.items():
        if "." in k:
            a, b = k.split(".")
            d[a][b] = v
        else:
            d[k] = v
    return json.dumps(d)


@pytest.mark.parametrize("text,words", [
    ("5", "JSON object, not int"),
    ('"x"', "JSON object, not str"),
    ("null", "JSON object, not NoneType"),
    ("[]", "JSON object, not list"),
    (shape(config=[]), "config must be a JSON object"),
    (shape(state=None), "state must be a JSON object"),
    (shape(model=5), "model must be a JSON string"),
    (b"\xff\xfe{}", "not UTF-8"),
    ("[" * 100000 + "]" * 100000, "not a counterexample"),
    ('{"a": ' + "9" * 5000 + "}", "not a counterexample"),
    (shape(**{"config.tp_size": 10**30}), "out of range"),
    (shape(**{"state.num_tokens": -1}), "invalid forward state"),
    (shape(**{"state.num_tokens": 10**6}), "--num-tokens"),
    (shape(**{"state.attn_tp_input_scattered": True}), "invalid forward state"),
])
def test_repro_refuses(cli, tmp_path, text, words):
    one_line_2(cli("repro", write(tmp_path, text)), words)


def test_repro_refuses_a_fifo_without_blocking(cli, tmp_path):
    p = tmp_path / "cx.json"
    os.mkfifo(p)
    one_line_2(cli("repro", str(p)), "not a regular file")


@pytest.mark.parametrize("argv,words", [
    (["audit", "--compare", "A", "B", "C"], "--compare A B takes no target"),
    (["audit", "--compare", "A", "B", "--sarif", "x.sarif"], "--sarif"),
    (["audit", "--sar", "x"], "unrecognized arguments"),
])
def test_audit_arguments(cli, argv, words):
    one_line_2(cli(*argv), words)


def test_uncreatable_cache_is_one_line(cli, tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv("SUMONCE_CACHE", str(blocker / "cache"))
    one_line_2(cli("audit", "sglang==0.0.1"), "SUMONCE_CACHE")
