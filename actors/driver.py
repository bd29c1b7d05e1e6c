"""The driver side: placement group, one actor per shard, calls with a deadline, and naming the
rank that failed (died, raised, or did not reach a collective the others wait in)."""
from __future__ import annotations

import socket
import time

import ray
from ray.exceptions import GetTimeoutError, RayActorError
from ray.util.placement_group import placement_group, remove_placement_group
from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

from .shard import Shard


class PlacementError(ValueError):
    """The cluster cannot place this world (a user error: exit 2)."""


class ShardFailure(RuntimeError):
    """A shard died, raised or hung: the message names the rank."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def bundle(use_gpu: bool, cpus: float) -> dict:
    return {"GPU": 1, "CPU": cpus} if use_gpu else {"CPU": cpus}


def check_placeable(world: int, use_gpu: bool, cpus: float) -> None:
    have = ray.cluster_resources()
    need = {k: v * world for k, v in bundle(use_gpu, cpus).items()}
    short = [k for k, v in need.items() if have.get(k, 0) < v]
    if short:
        most = min(int(have.get(k, 0) // bundle(use_gpu, cpus)[k]) for k in need)
        raise PlacementError(f"world size {world} cannot be placed: needs {world} bundles of "
                             f"{bundle(use_gpu, cpus)}, the cluster has "
                             f"{ {k: have.get(k, 0) for k in need} }; allowed: world size <= {most}")


class ShardSet:
    """`world` actors in one STRICT_PACK placement group, their process groups built once."""

    def __init__(self, world: int, use_gpu: bool = False, cpus: float = 1, timeout_s: float = 120):
        self.world, self.use_gpu, self.timeout_s = world, use_gpu, timeout_s
        check_placeable(world, use_gpu, cpus)
        self.pg = placement_group([bundle(use_gpu, cpus)] * world, strategy="STRICT_PACK")
        self.actors = []
        try:
            ray.get(self.pg.ready(), timeout=timeout_s)
        except GetTimeoutError:
            self.stop()
            raise PlacementError(f"world size {world}: placement group not ready in {timeout_s:.0f} s") from None
        init = f"tcp://127.0.0.1:{free_port()}"  # NOTE: one node (STRICT_PACK), rendezvous on loopback
        cls = ray.remote(Shard)
        for r in range(world):
            opts = dict(num_cpus=cpus, num_gpus=1 if use_gpu else 0, max_concurrency=2,
                        scheduling_strategy=PlacementGroupSchedulingStrategy(self.pg, placement_group_bundle_index=r))
            self.actors.append(cls.options(**opts).remote(r, world, init, use_gpu, timeout_s))
        self.info = self.call("setup")

    def call(self, method: str, *args, deadline_s: float | None = None, kill_rank: int | None = None):
        refs = [getattr(a, method).remote(*args) for a in self.actors]
        if kill_rank is not None:
            time.sleep(0.2)
            ray.kill(self.actors[kill_rank])
        return self.wait(refs, deadline_s or self.timeout_s, method)

    def wait(self, refs, deadline_s: float, what: str) -> list:
        ready, pending = ray.wait(refs, num_returns=len(refs), timeout=deadline_s)
        if pending:
            raise ShardFailure(self.diagnose_hang(refs, pending, deadline_s, what))
        try:
            return ray.get(refs)
        except Exception as e:  # noqa: BLE001
            raise ShardFailure(self.diagnose_error(refs, e, what)) from None

    def dead_ranks(self) -> list[int]:
        dead = []
        for r, a in enumerate(self.actors):
            try:
                ray.get(a.ping.remote(), timeout=10)
            except (RayActorError, GetTimeoutError):
                dead.append(r)
        return dead

    def diagnose_error(self, refs, err, what) -> str:
        dead = self.dead_ranks()
        if dead:
            return f"rank {', '.join(map(str, dead))} died during {what}"
        bad = []
        for r, ref in enumerate(refs):
            try:
                ray.get(ref, timeout=1)
            except Exception as e:  # noqa: BLE001
                bad.append((r, str(e).strip().splitlines()[-1][:200]))
        return "; ".join(f"rank {r} failed in {what}: {msg}" for r, msg in bad) or str(err)

    def diagnose_hang(self, refs, pending, deadline_s, what) -> str:
        dead = self.dead_ranks()
        if dead:
            return f"rank {', '.join(map(str, dead))} died during {what}"
        prog = []
        for a in self.actors:
            try:
                prog.append(ray.get(a.progress.remote(), timeout=10))
            except Exception:  # noqa: BLE001
                prog.append((-1, None))
        top = max(n for n, _ in prog)
        waiting = [r for r, (n, cur) in enumerate(prog) if n == top and cur]
        late = [r for r, (n, _) in enumerate(prog) if n < top] or [refs.index(p) for p in pending]
        name = next((cur for n, cur in prog if n == top and cur), "a collective")
        return (f"rank {', '.join(map(str, late))} did not reach {name} within {deadline_s:.0f} s during "
                f"{what}" + (f" (waiting in it: rank {', '.join(map(str, waiting))})" if waiting else ""))

    def stop(self) -> None:
        for a in self.actors:
            try:
                ray.kill(a)
            except Exception:  # noqa: BLE001
                pass
        self.actors = []
        try:
            remove_placement_group(self.pg)
        except Exception:  # noqa: BLE001
            pass
