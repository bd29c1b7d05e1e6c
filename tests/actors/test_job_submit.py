"""End to end: a real head on this machine (its own ports and temp dir, auth off), a job
submitted with `ray job submit --working-dir .`, its output checked, the head stopped."""
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.ray
ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
MARKER = "SUMONCE_E2E_HEAD"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ray_cmd(*args, env, timeout):
    return subprocess.run([str(BIN / "ray"), *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout)


def submit(dash, env, tries=10):
    """ray job submit; the head's job agent may come up a little after `ray start` returns."""
    for _ in range(tries):
        job = ray_cmd("job", "submit", "--address", f"http://127.0.0.1:{dash}", "--working-dir", ".",
                      "--", "python", "-m", "sumonce.actors.run", "--tp-size", "2", "--ep-size", "2",
                      "--model", "qwen3_moe", "--gpu-arch", "cpu", "--era", "0.5.11", env=env, timeout=300)
        if "No available agent" not in job.stderr + job.stdout:
            return job
        time.sleep(3)
    return job


def test_ray_job_submit_runs_the_actors_unchanged():
    port, dash = free_port(), free_port()
    tmp = tempfile.mkdtemp(prefix="/tmp/rj")  # NOTE: short: Ray's socket paths have a length limit
    env = dict(os.environ, RAY_AUTH_MODE="disabled", PATH=f"{BIN}:{os.environ['PATH']}",
               PYTHONWARNINGS="ignore")
    env.pop("RAY_ADDRESS", None)
    head_env = dict(env, **{MARKER: tmp})
    try:
        head = ray_cmd("start", "--head", "--port", str(port), "--dashboard-port", str(dash),
                       "--dashboard-host", "127.0.0.1", "--temp-dir", tmp, "--num-cpus", "4",
                       "--include-dashboard", "true",
                       # NOTE: the agent's default ports may be held by another cluster on this machine
                       "--dashboard-agent-listen-port", str(free_port()),
                       "--dashboard-agent-grpc-port", str(free_port()),
                       "--metrics-export-port", str(free_port()), env=head_env, timeout=120)
        assert head.returncode == 0, head.stderr[-2000:]
        job = submit(dash, env)
        out = job.stdout + job.stderr
        assert job.returncode == 0, out[-3000:]
        assert "succeeded" in out and "4 rows, 0 mismatch(es)" in out, out[-3000:]
        assert "CPU (gloo) shards" in out and "qwen3_moe" in out
    finally:
        stop_head(tmp)
        shutil.rmtree(tmp, ignore_errors=True)


def head_pids(tmp: str) -> list[int]:
    """Processes of this head: they inherit MARKER=tmp from `ray start` (some rename themselves,
    so the command line is not enough)."""
    pids, mark = [], f"{MARKER}={tmp}".encode()
    for d in Path("/proc").iterdir():
        try:
            if d.name.isdigit() and mark in (d / "environ").read_bytes():
                pids.append(int(d.name))
        except OSError:
            pass
    return pids


def stop_head(tmp: str) -> None:
    """What `ray stop` does, for this head only.
    NOTE: `ray stop` matches every Ray process on the machine by name (other clusters too)."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in head_pids(tmp):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        end = time.time() + 15
        while head_pids(tmp) and time.time() < end:
            time.sleep(0.3)
    assert not head_pids(tmp), "the head's processes outlived SIGKILL"
