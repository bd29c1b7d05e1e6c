"""Simulated nodes: a real multi-node Ray cluster on one machine (Ray's cluster_utils): one GCS, one
raylet per node, each node with its own CPUs (and GPUs) and a custom resource `sumonce_node_<i>`
(placement.py orders nodes by it). What it does not have is a network between nodes: every
collective between "nodes" stays on this machine.

    python -m sumonce.actors.simulate --nodes 2 --num-cpus 2
prints one JSON line (the address, each node's id and raylet pid), keeps the cluster until its stdin
closes or it gets SIGINT/SIGTERM, then ends it. `sumonce run --simulate-nodes N` starts one itself.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import tempfile
import threading

from .cluster import SIMULATED_HEALTH_CHECKS, start_watchdog

NODE_RESOURCE = "sumonce_node_{}"


def start(nodes: int, cpus: int, gpus_per_node: int = 0, tmp: str | None = None):
    """The cluster_utils Cluster of `nodes` simulated nodes (node 0 is the head), every node up.

    NOTE: cluster_utils records the head's address in $RAY_TMPDIR/ray/ray_current_cluster, where any
    plain `ray.init()` on this machine would find and join it: RAY_TMPDIR points into `tmp`, this
    run's own temp dir, first. A node's GPUs are its slice of this machine's, set in
    CUDA_VISIBLE_DEVICES when its raylet starts (Ray reads a node's GPUs from there)."""
    import ray.cluster_utils
    os.environ["RAY_TMPDIR"] = tmp or tempfile.mkdtemp(prefix="sumonce-ray-", dir="/tmp")
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    cluster = ray.cluster_utils.Cluster(shutdown_at_exit=True)
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    try:
        for i in range(nodes):
            args = dict(num_cpus=cpus, num_gpus=gpus_per_node, resources={NODE_RESOURCE.format(i): 1},
                        include_dashboard=False)
            if i == 0:
                args["_system_config"] = SIMULATED_HEALTH_CHECKS
            if gpus_per_node:
                os.environ["CUDA_VISIBLE_DEVICES"] = ",".join(
                    str(g) for g in range(i * gpus_per_node, (i + 1) * gpus_per_node))
            cluster.add_node(**args)
    except BaseException:
        cluster.shutdown()
        raise
    finally:
        if visible is None:
            os.environ.pop("CUDA_VISIBLE_DEVICES", None)
        else:
            os.environ["CUDA_VISIBLE_DEVICES"] = visible
    cluster.wait_for_nodes()
    return cluster


def describe(cluster) -> dict:
    nodes = [cluster.head_node] + sorted(cluster.worker_nodes, key=lambda n: n.unique_id)
    return {"address": cluster.address,
            "nodes": [{"node_id": n.node_id, "raylet_pid": n.all_processes["raylet"][0].process.pid,
                       "head": n is cluster.head_node} for n in nodes]}


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m sumonce.actors.simulate", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--nodes", type=int, default=2)
    p.add_argument("--num-cpus", type=int, default=2, help="CPUs of each node")
    p.add_argument("--num-gpus", type=int, default=0, help="GPUs of each node (node i: GPUs i*n .. i*n+n-1)")
    ns = p.parse_args(argv)
    if ns.nodes < 1 or ns.num_cpus < 1 or ns.num_gpus < 0:
        print("simulate: --nodes and --num-cpus at least 1, --num-gpus at least 0", file=sys.stderr)
        return 2
    tmp = tempfile.mkdtemp(prefix="sumonce-ray-", dir="/tmp")
    watchdog = start_watchdog(tmp)  # NOTE: ends every node's processes if this process is killed
    done = threading.Event()
    for s in (signal.SIGINT, signal.SIGTERM):
        signal.signal(s, lambda *_: done.set())
    cluster = start(ns.nodes, ns.num_cpus, ns.num_gpus, tmp)
    try:
        print(json.dumps(describe(cluster)), flush=True)
        threading.Thread(target=lambda: (sys.stdin.read(), done.set()), daemon=True).start()
        done.wait()
    finally:
        cluster.shutdown()
        watchdog.stdin.close()
        watchdog.stdout.readline()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
