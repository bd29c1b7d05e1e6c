"""Process groups as SGLang forms them, and the collectives a shard runs over them.

Which ranks form which group is proto.layout's (one place for the rank layout arithmetic).
"""
from __future__ import annotations

import datetime
import threading

import torch
import torch.distributed as dist

from sumonce.proto.layout import group_ranks

from .cases import divisors


def all_layouts(world: int) -> list[tuple[int, ...]]:
    """Every contiguous block and every strided set of every size in 2..world-1: enough to form
    the EP, MoE-TP and attention-TP groups of every (tp, ep, dp) layout of this world."""
    out = []
    for m in divisors(world)[1:-1]:
        out += [tuple(range(i * m, (i + 1) * m)) for i in range(world // m)]
        out += [tuple(range(j, world, world // m)) for j in range(world // m)]
    return out


class Comm:
    """The world and every sub-group, created once per actor set; counts collectives so that the
    driver can tell which rank a hang waits for."""

    def __init__(self, rank: int, world: int, init_method: str, backend: str, device, timeout_s: float):
        self.rank, self.world, self.device = rank, world, device
        dist.init_process_group(backend, init_method=init_method, rank=rank, world_size=world,
                                timeout=datetime.timedelta(seconds=timeout_s))
        # NOTE: new_group is collective over the whole world, even for non-members: same order everywhere.
        self.groups = {tuple(range(world)): dist.group.WORLD}
        for ranks in all_layouts(world):
            pg = dist.new_group(list(ranks))
            if rank in ranks:
                self.groups[ranks] = pg
        self.started, self.current, self._lock = 0, None, threading.Lock()
        self.moe_tp, self.attn_tp = 1, 1
        self.fusion_workspaces = {}

    def set_layout(self, moe_tp: int, attn_tp: int) -> None:
        self.moe_tp, self.attn_tp = moe_tp, attn_tp

    def ranks(self, kind) -> tuple[int, ...]:
        return group_ranks(kind, self.rank, self.world, self.moe_tp, self.attn_tp)

    def _run(self, name: str, fn):
        with self._lock:
            self.started, self.current = self.started + 1, name
        fn()
        with self._lock:
            self.current = None

    def progress(self) -> tuple[int, str | None]:
        with self._lock:
            return self.started, self.current

    def all_reduce(self, x: torch.Tensor, kind, name: str) -> torch.Tensor:
        ranks = self.ranks(kind)
        if len(ranks) > 1:
            self._run(f"all_reduce {name} over {kind}", lambda: dist.all_reduce(x, group=self.groups[ranks]))
        return x

    def all_gather(self, x: torch.Tensor, kind, name: str) -> list[torch.Tensor]:
        """Equal-shaped tensors of every member of the group, in rank order."""
        ranks = self.ranks(kind)
        if len(ranks) == 1:
            return [x]
        out = [torch.empty_like(x) for _ in ranks]
        self._run(f"all_gather {name} over {kind}", lambda: dist.all_gather(out, x, group=self.groups[ranks]))
        return out

    def reduce_scatter(self, x: torch.Tensor, kind, name: str) -> torch.Tensor:
        """x [n * len(group), ...] summed over the group; this rank keeps chunk of its index."""
        ranks = self.ranks(kind)
        if len(ranks) == 1:
            return x
        out = x.new_empty((x.shape[0] // len(ranks),) + tuple(x.shape[1:]))
        self._run(f"reduce_scatter {name} over {kind}",
                  lambda: dist.reduce_scatter_tensor(out, x.contiguous(), group=self.groups[ranks]))
        return out

    def max_len(self, n: int, kind, name: str) -> int:
        t = torch.tensor([n], dtype=torch.int64, device=self.device)
        ranks = self.ranks(kind)
        if len(ranks) > 1:
            self._run(f"all_reduce(max) {name} over {kind}",
                      lambda: dist.all_reduce(t, op=dist.ReduceOp.MAX, group=self.groups[ranks]))
        return int(t.item())

    def close(self) -> None:
        if dist.is_initialized():
            dist.destroy_process_group()
