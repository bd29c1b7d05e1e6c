"""The driver side: placement group, one actor per shard, calls with a deadline, and naming the
rank that failed (died, raised, or did not reach a collective the others wait in)."""
from __future__ import annotations

import os
import socket
import time

import ray
from ray.exceptions import GetTimeoutError, RayActorError
from ray.util.placement_group import placement_group, remove_placement_group
from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

from .cluster import check_interrupt, current
from .shard import Shard


SETUP_S = 120
"""The least time actors get to start and form their process groups (tens of seconds on a few
loaded cores)."""


class PlacementError(ValueError):
    """The cluster cannot place this world (a user error: exit 2)."""


class ShardFailure(RuntimeError):
    """A shard died, raised or hung: the message names the rank."""


class ClusterFailure(ShardFailure):
    """The Ray cluster itself failed (a GCS or raylet died)."""


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


def named(cls, opts: dict, name: str):
    """The actor class with `name` (what `ray list actors` and the dashboard show); a suffix
    where a run sharing this namespace holds the name."""
    try:
        ray.get_actor(name)
        name = f"{name}-{os.urandom(3).hex()}"
    except ValueError:
        pass
    return cls.options(name=name, **opts)


class ShardSet:
    """`world` actors in one STRICT_PACK placement group, their process groups built once."""

    def __init__(self, world: int, use_gpu: bool = False, cpus: float = 1, timeout_s: float = 120,
                 cluster=None):
        self.world, self.use_gpu, self.timeout_s = world, use_gpu, timeout_s
        self.cluster = cluster if cluster is not None else current()
        check_placeable(world, use_gpu, cpus)
        self.pg = placement_group([bundle(use_gpu, cpus)] * world, strategy="STRICT_PACK")
        self.actors = []
        try:
            try:
                self.wait([self.pg.ready()], timeout_s, "placement")
            except ShardFailure:
                raise PlacementError(f"world size {world}: placement group not ready in {timeout_s:.0f} s") from None
            self.info = self.start(world, use_gpu, cpus, timeout_s)
        except BaseException:
            self.stop()
            raise

    def start(self, world: int, use_gpu: bool, cpus: float, timeout_s: float) -> list:
        """Start the actors and build their process groups; each rank's setup info.

        NOTE: start-up (a process, torch, gloo's rendezvous) is not a call --timeout bounds. The
        rendezvous port is picked free here and bound later by rank 0, so another process can take
        it in between, and on a loaded machine one rank can miss the rendezvous: one retry on fresh
        actors and a fresh port before the failure is reported (faults are injected after setup)."""
        for attempt in (1, 2):
            self.start_actors(world, use_gpu, cpus, timeout_s)
            try:
                return self.call("setup", deadline_s=max(timeout_s, SETUP_S))
            except ShardFailure:
                if attempt == 2:
                    raise
                self.kill_actors()
        raise AssertionError("unreachable")

    def start_actors(self, world: int, use_gpu: bool, cpus: float, timeout_s: float) -> None:
        init = f"tcp://127.0.0.1:{free_port()}"  # NOTE: one node (STRICT_PACK), rendezvous on loopback
        cls = ray.remote(Shard)
        for r in range(world):
            opts = dict(num_cpus=cpus, num_gpus=1 if use_gpu else 0, max_concurrency=2,
                        scheduling_strategy=PlacementGroupSchedulingStrategy(self.pg, placement_group_bundle_index=r))
            self.actors.append(named(cls, opts, f"shard-w{world}-r{r}").remote(r, world, init, use_gpu, timeout_s))

    def call(self, method: str, *args, deadline_s: float | None = None):
        refs = [getattr(a, method).remote(*args) for a in self.actors]
        return self.wait(refs, deadline_s or self.timeout_s, method)

    def wait(self, refs, deadline_s: float, what: str) -> list:
        """Every result; a rank that fails is named as soon as Ray reports it (not at the
        deadline), as is a dead GCS or raylet of a private cluster."""
        end, pending = time.monotonic() + deadline_s, list(refs)
        while pending:
            left = end - time.monotonic()
            if left <= 0:
                if not self.actors:
                    raise ShardFailure(f"{what} not done in {deadline_s:.0f} s")
                raise ShardFailure(self.diagnose_hang(refs, pending, deadline_s, what))
            ready, pending = ray.wait(pending, num_returns=1, timeout=min(1.0, left))
            check_interrupt()
            for ref in ready:
                try:
                    ray.get(ref)
                except Exception as e:  # noqa: BLE001
                    raise ShardFailure(self.diagnose_error(refs, e, what, pending, deadline_s)) from None
            self.check_cluster()
        return ray.get(refs)

    def check_cluster(self) -> None:
        dead = self.cluster.dead_process() if self.cluster is not None else None
        if dead:
            self.cluster.reported = True
            raise ClusterFailure(f"the Ray cluster's {dead} died")

    def liveness(self) -> tuple[list[int], list[int]]:
        """(dead ranks, ranks that do not answer: stopped or stuck)."""
        pings = [a.ping.remote() for a in self.actors]
        dead, silent = [], []
        for r, ref in enumerate(pings):
            try:
                ray.get(ref, timeout=5)
            except RayActorError:
                dead.append(r)
            except GetTimeoutError:
                silent.append(r)
        return dead, silent

    def diagnose_error(self, refs, err, what, pending=(), deadline_s: float = 0) -> str:
        dead, silent = self.liveness()
        if dead:
            return f"rank {', '.join(map(str, dead))} died during {what}"
        if silent:  # the others gave up waiting for it in a collective
            return (f"rank {', '.join(map(str, silent))} hung during {what}: it answers nothing, not "
                    "even a ping (the process is stopped or stuck)")
        still = [r for r in pending if r not in ray.wait(list(pending), num_returns=len(pending), timeout=0)[0]]
        if still:  # a collective timed out on some ranks while another never reached it
            return self.diagnose_hang(refs, still, deadline_s, what)
        bad = []
        for r, ref in enumerate(refs):
            try:
                ray.get(ref, timeout=1)
            except Exception as e:  # noqa: BLE001
                bad.append((r, str(e).strip().splitlines()[-1][:200]))
        return "; ".join(f"rank {r} failed in {what}: {msg}" for r, msg in bad) or str(err)

    def diagnose_hang(self, refs, pending, deadline_s, what) -> str:
        dead, silent = self.liveness()
        if dead:
            return f"rank {', '.join(map(str, dead))} died during {what}"
        if silent:
            return (f"rank {', '.join(map(str, silent))} hung during {what}: no answer in "
                    f"{deadline_s:.0f} s, nor to a ping (the process is stopped or stuck)")
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

    def kill_actors(self) -> None:
        for a in self.actors:
            try:
                ray.kill(a)
            except Exception:  # noqa: BLE001
                pass
        self.actors = []

    def stop(self) -> None:
        self.kill_actors()
        try:
            remove_placement_group(self.pg)
        except Exception:  # noqa: BLE001
            pass
