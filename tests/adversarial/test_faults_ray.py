"""Faults named fast and right, and runs that do not disturb each other (issue 15), on real Ray:
in-process shard sets on the shared cluster, and `sumonce run` subprocesses, each with its own
private cluster (the isolation under test)."""
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.ray
ROOT = Path(__file__).resolve().parents[2]
QWEN = "Qwen3MoeSparseMoeBlock.forward_normal"
SWEEP = ["--sweep", "small", "--worlds", "2", "--models", "qwen3_moe,llama4,minimax_m2", "--num-cpus", "2"]


def qwen_case():
    from sumonce.actors.cases import Case
    from sumonce.proto.config import ForwardState, GpuArch, ServerConfig
    from sumonce.proto.sites import Version
    c = ServerConfig(tp_size=2, ep_size=2, architecture="Qwen3MoeForCausalLM", gpu_arch=GpuArch.CPU)
    return Case("qwen3_moe", QWEN, Version.HELPER, c, ForwardState(num_tokens=5))


def test_shards_are_named_and_a_killed_one_is_named_within_10_s(ray_cluster):
    from sumonce.actors.driver import ShardFailure, ShardSet
    shards = ShardSet(2, timeout_s=120)
    try:
        names = set(ray_cluster.util.list_named_actors())
        assert {"shard-w2-r0", "shard-w2-r1"} <= {n.rsplit("-", 1)[0] if n.count("-") > 2 else n for n in names}
        pid = shards.info[1]["pid"]
        threading.Timer(1.0, os.kill, (pid, signal.SIGKILL)).start()
        t0 = time.monotonic()
        with pytest.raises(ShardFailure, match="rank 1 died"):
            shards.call("run", [qwen_case()], ("hang", 0), deadline_s=120)  # rank 1 waits in a collective
        assert time.monotonic() - t0 - 1.0 < 10
    finally:
        shards.stop()


def test_a_stopped_rank_is_reported_as_hung(ray_cluster):
    from sumonce.actors.driver import ShardFailure, ShardSet
    shards = ShardSet(2, timeout_s=120)
    pid = shards.info[1]["pid"]
    os.kill(pid, signal.SIGSTOP)
    try:
        with pytest.raises(ShardFailure, match="rank 1 hung") as e:
            shards.call("run", [qwen_case()], None, deadline_s=8)
        assert "died" not in str(e.value)
    finally:
        os.kill(pid, signal.SIGCONT)
        shards.stop()


@pytest.mark.parametrize("argv", [["--tp", "3", "--gpu-arch", "cpu", "--guard-version", "helper"],
                                  ["--tp", "3", "--ep", "3", "--gpu-arch", "cpu", "--guard-version", "helper"],
                                  ["--sweep", "small", "--worlds", "3", "--models", "qwen3_moe"]])
def test_sizes_sglang_accepts_run_and_conform(ray_cluster, capsys, argv):
    from sumonce.actors.run import main
    code = main(argv)
    out, err = capsys.readouterr()
    assert code == 0, (out[-2000:], err[-2000:])
    assert " 0 mismatch(es)" in out


def start(*argv):
    env = dict(os.environ, PYTHONPATH=str(ROOT), RAY_AUTH_MODE="disabled", PYTHONWARNINGS="ignore")
    env.pop("RAY_ADDRESS", None)
    return subprocess.Popen([sys.executable, "-m", "sumonce.cli", "run", *argv], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def until_progress(p) -> tuple[str, list[str]]:
    """Read the run's stdout up to its first progress line: (its private temp dir, lines read)."""
    tmp, lines = None, []
    for line in p.stdout:
        lines.append(line)
        if "private local cluster (" in line:
            tmp = line.rsplit("(", 1)[1].split(")")[0]
        if line.startswith("progress:"):
            break
    assert tmp, "".join(lines) + p.stderr.read()
    return tmp, lines


def descendants(pid: int) -> set[int]:
    kids, out = {}, set()
    for d in Path("/proc").iterdir():
        try:
            if d.name.isdigit():
                ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
                kids.setdefault(ppid, []).append(int(d.name))
        except (OSError, IndexError):
            pass
    todo = [pid]
    while todo:
        for k in kids.get(todo.pop(), []):
            out.add(k)
            todo.append(k)
    return out


def alive(pids) -> list[int]:
    out = []
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
            if state != "Z":
                out.append(pid)
        except OSError:
            pass
    return out


def no_leftovers(tmp: str, pids, wait_s: float = 20) -> None:
    end = time.time() + wait_s
    while (alive(pids) or os.path.exists(tmp)) and time.time() < end:
        time.sleep(0.5)
    assert not alive(pids), [Path(f"/proc/{p}/cmdline").read_bytes()[:80] for p in alive(pids)]
    assert not os.path.exists(tmp)


def test_two_concurrent_sweeps_both_succeed():
    argv = ("--sweep", "small", "--worlds", "2", "--models", "qwen3_moe", "--num-cpus", "2")
    from sumonce.actors.run import parse
    rows = len(parse(list(argv[:-2]))[1])  # every case of the sweep, as the run itself lists them
    runs = [start(*argv) for _ in range(2)]
    outs = [p.communicate(timeout=500) for p in runs]
    for p, (out, err) in zip(runs, outs):
        assert p.returncode == 0, (out[-2000:], err[-2000:])
        assert f"{rows} rows, 0 mismatch(es)" in out
    dirs = [out.split("private local cluster (")[1].split(")")[0] for out, _ in outs]
    assert dirs[0] != dirs[1]


@pytest.mark.parametrize("sig,code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_an_interrupt_is_one_line_keeps_the_rows_and_ends_the_cluster(sig, code):
    p = start(*SWEEP)
    tmp, _ = until_progress(p)
    pids = descendants(p.pid)
    p.send_signal(sig)
    out, err = p.communicate(timeout=120)
    lines = [ln for ln in err.splitlines() if ln.strip() and "Started a local Ray instance" not in ln]
    assert p.returncode == code and len(lines) == 1 and "interrupted by" in lines[0], err[-3000:]
    assert " rows, 0 mismatch(es)" in out  # the rows finished so far
    no_leftovers(tmp, pids)


@pytest.mark.parametrize("process", ["gcs_server", "raylet"])
def test_a_dead_gcs_or_raylet_is_exit_3_with_a_message(process):
    p = start(*SWEEP)
    tmp, _ = until_progress(p)
    pids = descendants(p.pid)
    (victim,) = [q for q in pids if process.encode() in Path(f"/proc/{q}/cmdline").read_bytes().split(b"\0")[0]]
    t0 = time.monotonic()
    os.kill(victim, signal.SIGKILL)
    out, err = p.communicate(timeout=120)
    assert p.returncode == 3 and f"cluster failure: the Ray cluster's {process}" in err, err[-3000:]
    assert time.monotonic() - t0 < 30
    no_leftovers(tmp, pids)


def test_a_killed_driver_leaves_no_cluster_behind():
    p = start(*SWEEP)
    tmp, _ = until_progress(p)
    pids = descendants(p.pid)
    assert len(pids) > 4  # GCS, raylet, agents, workers
    p.kill()
    p.communicate(timeout=30)
    no_leftovers(tmp, pids, wait_s=30)
