"""One Ray actor per shard. Rank, world size and rendezvous address come from the driver; the
device comes from Ray; process groups are created in `setup`, after Ray placed the actor."""
from __future__ import annotations

import os
import signal
import time

import torch

from .execute import run_layer
from .layer import make_weights, shard_weights


class Shard:
    """The actor class (wrapped with ray.remote by the driver)."""

    def __init__(self, rank: int, world: int, init_method: str, use_gpu: bool, timeout_s: float):
        self.rank, self.world, self.init_method = rank, world, init_method
        self.use_gpu, self.timeout_s, self.comm = use_gpu, timeout_s, None
        self._weights, self._shards = {}, {}

    def setup(self) -> dict:
        from .groups import Comm
        if self.use_gpu:
            import ray
            device = torch.device("cuda", int(ray.get_gpu_ids()[0]))
            torch.cuda.set_device(device)
            backend = "cuda:nccl,cpu:gloo"
        else:
            device, backend = torch.device("cpu"), "gloo"
            torch.set_num_threads(1)  # NOTE: actors share 2 cores here; one thread each avoids thrash
        self.device = device
        self.comm = Comm(self.rank, self.world, self.init_method, backend, device, self.timeout_s)
        return {"rank": self.rank, "pid": os.getpid(), "device": str(device), "backend": backend}

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
