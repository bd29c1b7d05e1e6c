"""One Ray actor per shard. Rank and world size come from the driver, the rendezvous address from
rank 0's own host (`rendezvous`, which the driver hands to every rank's `setup`); the device comes
from Ray; process groups are created in `setup`, after Ray placed the actor."""
from __future__ import annotations

import os
import signal
import socket
import time

import torch

from .execute import run_layer
from .layer import make_weights, shard_weights


class Shard:
    """The actor class (wrapped with ray.remote by the driver)."""

    def __init__(self, rank: int, world: int, use_gpu: bool, timeout_s: float):
        self.rank, self.world = rank, world
        self.use_gpu, self.timeout_s, self.comm = use_gpu, timeout_s, None
        self._weights, self._shards = {}, {}

    def rendezvous(self, loopback: bool) -> str:
        """Rank 0: a TCP address for the process groups' store, a port free on this host; on this
        node's address when the world spans nodes, else on loopback."""
        import ray
        host = "127.0.0.1" if loopback else ray.util.get_node_ip_address()
        with socket.socket() as s:
            s.bind((host, 0))
            return f"tcp://{host}:{s.getsockname()[1]}"

    def setup(self, init_method: str) -> dict:
        from .groups import Comm
        self.init_method = init_method
        if self.use_gpu:
            device = torch.device("cuda", self.gpu_index())
            torch.cuda.set_device(device)
            backend = "cuda:nccl,cpu:gloo"
        else:
            device, backend = torch.device("cpu"), "gloo"
            torch.set_num_threads(1)  # NOTE: actors share 2 cores here; one thread each avoids thrash
        self.device = device
        self.comm = Comm(self.rank, self.world, self.init_method, backend, device, self.timeout_s)
        return {"rank": self.rank, "pid": os.getpid(), "device": str(device), "backend": backend}

    @staticmethod
    def gpu_index() -> int:
        """The CUDA ordinal of Ray's GPU for this actor: its place in CUDA_VISIBLE_DEVICES (which Ray
        narrows to the actor's GPUs, and a simulated node to its own: cluster.py), else its id."""
        import ray
        gpu = str(ray.get_gpu_ids()[0])
        visible = [d.strip() for d in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if d.strip()]
        return visible.index(gpu) if gpu in visible else int(gpu)

    def _shard(self, seed: int, ep: int, moe_tp: int):
        if seed not in self._weights:
            self._weights[seed] = make_weights(seed, world=self.world)
        key = (seed, ep, moe_tp)
        if key not in self._shards:
            sw = shard_weights(self._weights[seed], ep, moe_tp, self.world, self.rank)
            self._shards[key] = {k: (v.to(self.device) if torch.is_tensor(v) else v) for k, v in sw.items()}
        return self._weights[seed], self._shards[key]

    def run(self, cases: list, fault: tuple | None = None) -> list[dict]:
        """Run each case; `fault` (a test hook) makes rank fault[1] stall ("hang") or die as by
        kill -9 ("kill") before its first collective."""
        if fault and fault[1] == self.rank:
            if fault[0] == "kill":
                os.kill(os.getpid(), signal.SIGKILL)
            time.sleep(3600)
        if self.use_gpu:
            # NOTE: the actor runs calls on a thread pool (max_concurrency=2) and the current CUDA
            # device is per thread: set it here too, or kernels that launch on the current device
            # (flashinfer's fused all-reduce) run on GPU 0 from every rank.
            torch.cuda.set_device(self.device)
        out = []
        for case in cases:
            w, sw = self._shard(case.seed, case.config.ep_size, case.config.moe_tp_size)
            out.append(run_layer(self.comm, case, w, sw, self.device))
        return out

    def progress(self) -> tuple[int, str | None]:
        return self.comm.progress() if self.comm else (0, None)

    def ping(self) -> int:
        return self.rank

    def close(self) -> None:
        if self.comm:
            self.comm.close()
