"""Issue 17: the actors across nodes, on a real multi-node Ray cluster: two simulated nodes (one GCS,
one raylet each: `python -m sumonce.actors.simulate`) of 2 CPUs each, started once for the session
in a process of their own (this pytest process may hold tests/conftest.py's local cluster, and a
process joins one cluster only), and runs of `python -m sumonce.actors.run --address` against it.
The killed-node test kills node 1's raylet: it runs last (pytest keeps file order)."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest

from sumonce.actors.cases import sweep
from sumonce.proto.eras import Era
from sumonce.proto import catalogue, semantics
from sumonce.proto.semantics import After
from sumonce.proto.serial import to_dict

pytestmark = pytest.mark.ray
ROOT = Path(__file__).resolve().parents[2]
ENV = dict(os.environ, RAY_AUTH_MODE="disabled", PYTHONWARNINGS="ignore")
ENV.pop("RAY_ADDRESS", None)


@pytest.fixture(scope="session")
def two_nodes():
    proc = subprocess.Popen([sys.executable, "-m", "sumonce.actors.simulate", "--nodes", "2", "--num-cpus", "2"],
                            cwd=ROOT, env=ENV, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    try:
        info = json.loads(proc.stdout.readline() or "null")
        assert info and len(info["nodes"]) == 2, "the simulated cluster did not start"
        yield info
    finally:
        proc.stdin.close()  # the cluster ends: every raylet, the GCS, its temp dir
        try:
            proc.wait(timeout=90)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def run(address: str, *args: str, timeout: float = 400):
    return subprocess.run([sys.executable, "-m", "sumonce.actors.run", "--address", address, *args],
                          cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=timeout)


def test_simulate_nodes_starts_and_ends_a_cluster_of_its_own():
    """`--simulate-nodes`: the run starts two raylets here (before the session's cluster exists),
    places ranks 0, 1 and 2, 3 on different ones, and leaves no Ray process behind."""
    job = subprocess.run([sys.executable, "-m", "sumonce.actors.run", "--simulate-nodes", "--nnodes", "2",
                          "--tp-size", "4", "--ep-size", "4", "--dp-size", "2", "--enable-dp-attention",
                          "--gpu-arch", "cpu", "--model", "deepseek_v2", "--guard-version", "helper"],
                         cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=400)
    assert job.returncode == 0, job.stdout[-2000:] + job.stderr[-2000:]
    assert "on 2 simulated nodes on this machine (/tmp/sumonce-ray-" in job.stdout
    line = next(x for x in job.stdout.splitlines() if x.startswith("world 4 on 2 nodes"))
    ids = re.findall(r"ray node (\w+)\): rank (\d, \d)", line)
    assert [r for _, r in ids] == ["0, 1", "2, 3"] and ids[0][0] != ids[1][0], line
    assert ", 0 mismatch(es)" in job.stdout
    tmp = re.search(r"\((/tmp/sumonce-ray-\w+)\)", job.stdout).group(1)
    end = time.time() + 20  # NOTE: the watchdog removes the dir again once the driver has exited
    while (os.path.exists(tmp) or ray_processes(tmp)) and time.time() < end:
        time.sleep(0.5)
    assert not os.path.exists(tmp) and not ray_processes(tmp)


def ray_processes(tmp: str) -> list[int]:
    out = []
    for d in Path("/proc").iterdir():
        try:
            if d.name.isdigit() and tmp.encode() in (d / "cmdline").read_bytes():
                out.append(int(d.name))
        except OSError:
            pass
    return out


def test_a_sweep_over_two_nodes_conforms_with_fusion_off_across_nodes(two_nodes):
    job = run(two_nodes["address"], "--sweep", "small", "--nnodes", "2", "--worlds", "4", "--models",
              "qwen3_moe", "--json", "--timeout", "120")
    assert job.returncode == 0, job.stderr[-3000:]
    doc = json.loads(job.stdout)
    expected = sweep("small", (4,), ("qwen3_moe",), nnodes=2)
    assert doc["mismatches"] == 0 and len(doc["rows"]) == len(expected) > 50
    # ranks 0, 1 on one Ray node and 2, 3 on the other, as Ray placed the bundles
    ids = [n["node_id"][:8] for n in two_nodes["nodes"]]
    line = next(x for x in job.stderr.splitlines() if x.startswith("world 4 on 2 nodes"))
    assert f"ray node {ids[0]}): rank 0, 1;" in line and f"ray node {ids[1]}): rank 2, 3" in line, line
    # SGLang auto-enables the fused all-reduce on one node only (server_args.py:2326-2360): these
    # configurations would run it on one node; on two they ran the unfused path, and conform
    m = catalogue.model("qwen3_moe")
    # (the 0.5.11 era's cases: there the fused kernel is what sums; 0.5.23's boundary sums either way)
    fused_on_one = [k for k in expected if k.era == Era.V0_5_11
                    and semantics.after_experts(replace(k.config, nnodes=1), k.state, m) == After.NEXT_LAYER_FUSED]
    assert {k.era for k in expected} == {Era.V0_5_11, Era.V0_5_23}
    assert fused_on_one and not any(k.config.allreduce_fusion_enabled for k in fused_on_one)
    rows = {(r["variant"], r["version"], json.dumps(r["config"], sort_keys=True), json.dumps(r["state"], sort_keys=True)): r
            for r in doc["rows"]}
    for k in fused_on_one:
        r = rows[(k.variant, k.version.value, json.dumps(to_dict(k.config), sort_keys=True),
                  json.dumps(to_dict(k.state), sort_keys=True))]
        assert r["ok"] and r["after"] != After.NEXT_LAYER_FUSED.value, r


def test_too_few_nodes_is_one_line_and_exit_2(two_nodes):
    job = run(two_nodes["address"], "--nnodes", "4", "--tp-size", "4", "--gpu-arch", "cpu", timeout=200)
    err = job.stderr.strip().splitlines()
    assert job.returncode == 2 and len(err) == 1, job.stderr[-2000:]
    assert "--nnodes 4, world size 4" in err[0] and "needs 4 nodes, found 2" in err[0], err[0]


def shard_workers(raylet: int) -> list[int]:
    """Worker processes of that raylet running a shard's `run` (Ray titles them ray::Shard.run)."""
    out = []
    for d in Path("/proc").iterdir():
        try:
            if d.name.isdigit() and int((d / "stat").read_text().rsplit(")", 1)[1].split()[1]) == raylet \
                    and (d / "cmdline").read_bytes().startswith(b"ray::Shard.run"):
                out.append(int(d.name))
        except (OSError, IndexError, ValueError):
            pass
    return out


def test_a_killed_node_is_named_with_its_ranks(two_nodes):
    node1 = next(n for n in two_nodes["nodes"] if not n["head"])
    timeout = 100
    job = subprocess.Popen([sys.executable, "-m", "sumonce.actors.run", "--address", two_nodes["address"],
                            "--nnodes", "2", "--tp-size", "4", "--gpu-arch", "cpu", "--guard-version", "helper",
                            "--inject-fault", "hang:0", "--timeout", str(timeout)],
                           cwd=ROOT, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        end = time.time() + 300
        while len(shard_workers(node1["raylet_pid"])) < 2 and job.poll() is None and time.time() < end:
            time.sleep(0.5)
        assert len(shard_workers(node1["raylet_pid"])) == 2, "ranks 2, 3 never ran on node 1"
        os.kill(node1["raylet_pid"], signal.SIGKILL)
        killed = time.time()
        out, err = job.communicate(timeout=timeout + 60)
        took = time.time() - killed
    finally:
        if job.poll() is None:
            job.kill()
    assert job.returncode == 3, err[-2000:]
    assert "node failure: node 1 (" in err and f"ray node {node1['node_id'][:8]}) died during run: it held rank 2, 3" in err, err
    assert took < timeout  # named by the node's death, not by the call's deadline (a hang)
    print(f"killed node named after {took:.1f} s")
