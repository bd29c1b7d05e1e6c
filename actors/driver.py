"""The driver side: placement group (placement.py: one bundle per shard, on the nodes proto's layout
says), one actor per shard, calls with a deadline, and naming the rank that failed (died, raised, or
did not reach a collective the others wait in) with its node, or the node that died with its ranks."""
from __future__ import annotations

import os
import time

import ray
from ray.exceptions import GetTimeoutError, RayActorError
from ray.util.placement_group import remove_placement_group
from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

from . import placement
from .cluster import check_interrupt, current, process_gone
from .placement import PlacementError
from .shard import Shard


SETUP_S = 120
"""The least time actors get to start and form their process groups (tens of seconds on a few
loaded cores)."""


NODE_GRACE_S = 30
"""How long a failure on several nodes waits for Ray to say whether a node died (its GCS marks a
node dead after missed health checks: about 15 s by default, 5-10 s on the simulated nodes)."""


class ShardFailure(RuntimeError):
    """A shard died, raised or hung: the message names the rank."""


class ClusterFailure(ShardFailure):
    """The Ray cluster itself failed (a GCS or raylet died)."""


class NodeFailure(ShardFailure):
    """A node holding some of the ranks died (its raylet): the message names it and its ranks."""


def bundle(use_gpu: bool, cpus: float) -> dict:
    return {"GPU": 1, "CPU": cpus} if use_gpu else {"CPU": cpus}


def check_placeable(world: int, use_gpu: bool, cpus: float, layout: tuple[int, ...] | None = None):
    """The placement plan; PlacementError (one line) when the cluster's resources, or its nodes,
    cannot hold the world (too few nodes is said first: it is the cause)."""
    layout = layout or (0,) * world
    if len(set(layout)) > 1:
        placement.plan(layout, bundle(use_gpu, cpus))
    have = ray.cluster_resources()
    need = {k: v * world for k, v in bundle(use_gpu, cpus).items()}
    short = [k for k, v in need.items() if have.get(k, 0) < v]
    if short:
        most = min(int(have.get(k, 0) // bundle(use_gpu, cpus)[k]) for k in need)
        raise PlacementError(f"world size {world} cannot be placed: needs {world} bundles of "
                             f"{bundle(use_gpu, cpus)}, the cluster has "
                             f"{ {k: have.get(k, 0) for k in need} }; allowed: world size <= {most}")
    return placement.plan(layout, bundle(use_gpu, cpus))


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
    """`world` actors, one bundle each, on the nodes of `layout` (the node of each rank; default:
    one node), their process groups built once."""

    def __init__(self, world: int, use_gpu: bool = False, cpus: float = 1, timeout_s: float = 120,
                 cluster=None, layout: tuple[int, ...] | None = None):
        self.world, self.use_gpu, self.timeout_s = world, use_gpu, timeout_s
        self.cluster = cluster if cluster is not None else current()
        self.actors, self._nodes_checked = [], 0.0
        self.placement = check_placeable(world, use_gpu, cpus, layout)
        self.pg = placement.create(self.placement, bundle(use_gpu, cpus))
        try:
            try:
                self.wait([self.pg.ready()], timeout_s, "placement")
            except ShardFailure:
                raise PlacementError(f"world size {world}: placement group not ready in {timeout_s:.0f} s") from None
            placement.record(self.placement, self.pg)
            self.info = self.start(world, use_gpu, cpus, timeout_s)
        except BaseException:
            self.stop()
            raise

    def start(self, world: int, use_gpu: bool, cpus: float, timeout_s: float) -> list:
        """Start the actors and build their process groups; each rank's setup info.

        NOTE: start-up (a process, torch, gloo's rendezvous) is not a call --timeout bounds. Rank 0
        picks the rendezvous port free on its own host and binds it later, so another process can
        take it in between, and on a loaded machine one rank can miss the rendezvous: one retry on
        fresh actors and a fresh port before the failure is reported (faults are injected after setup)."""
        for attempt in (1, 2):
            self.start_actors(world, use_gpu, cpus, timeout_s)
            try:
                init = self.wait([self.actors[0].rendezvous.remote(self.placement.spans == 1)], SETUP_S, "setup")[0]
                return self.call("setup", init, deadline_s=max(timeout_s, SETUP_S))
            except ShardFailure:
                if attempt == 2:
                    raise
                self.kill_actors()
        raise AssertionError("unreachable")

    def start_actors(self, world: int, use_gpu: bool, cpus: float, timeout_s: float) -> None:
        cls = ray.remote(Shard)
        for r in range(world):
            opts = dict(num_cpus=cpus, num_gpus=1 if use_gpu else 0, max_concurrency=2,
                        scheduling_strategy=PlacementGroupSchedulingStrategy(self.pg, placement_group_bundle_index=r))
            self.actors.append(named(cls, opts, f"shard-w{world}-r{r}").remote(r, world, use_gpu, timeout_s))

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
            self.check_nodes()
        return ray.get(refs)

    def check_cluster(self) -> None:
        dead = self.cluster.dead_process() if self.cluster is not None else None
        if dead:
            self.cluster.reported = True
            raise ClusterFailure(f"the Ray cluster's {dead} died")

    def dead_nodes(self) -> list[int]:
        """Layout nodes whose Ray node died: its raylet process, where this process started it
        (cluster.py's simulated nodes), else as Ray's GCS says."""
        pids = getattr(self.cluster, "node_raylets", {}) or {}
        alive, dead = None, []
        for n, node in sorted(self.placement.nodes.items()):
            if node.node_id in pids:
                gone = process_gone(pids[node.node_id])
            else:
                if alive is None:
                    alive = {x["NodeID"] for x in ray.nodes() if x["Alive"]}
                gone = node.node_id not in alive
            if gone:
                dead.append(n)
        return dead

    def check_nodes(self) -> None:
        """NodeFailure when a node of this world died (asking Ray at most every 2 s)."""
        if self.placement.spans == 1 or time.monotonic() - self._nodes_checked < 2:
            return
        self._nodes_checked = time.monotonic()
        self.raise_dead_nodes("run")

    def raise_dead_nodes(self, what: str, grace_s: float = 0) -> None:
        end = time.monotonic() + grace_s
        while True:
            dead = self.dead_nodes()
            if dead:
                p = self.placement
                raise NodeFailure("; ".join(f"{p.node_text(n)} died during {what}: it held rank "
                                            f"{', '.join(map(str, p.ranks_on(n)))}" for n in dead))
            if time.monotonic() >= end:
                return
            time.sleep(0.5)
            check_interrupt()

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

    def lost(self, what: str) -> tuple[list[int], list[int]]:
        """liveness(); where ranks are dead or silent on a world over several nodes, first whether
        a node died (NodeFailure), waiting for Ray to decide."""
        if self.placement.spans > 1:
            self.raise_dead_nodes(what)  # NOTE: before the pings, which wait 5 s for each lost rank
        dead, silent = self.liveness()
        if (dead or silent) and self.placement.spans > 1:
            self.raise_dead_nodes(what, NODE_GRACE_S)
        return dead, silent

    def diagnose_error(self, refs, err, what, pending=(), deadline_s: float = 0) -> str:
        dead, silent = self.lost(what)
        if dead:
            return f"rank {', '.join(map(str, dead))} died during {what} {self.placement.where(dead)}"
        if silent:  # the others gave up waiting for it in a collective
            return (f"rank {', '.join(map(str, silent))} hung during {what}: it answers nothing, not "
                    f"even a ping (the process is stopped or stuck) {self.placement.where(silent)}")
        still = [r for r in pending if r not in ray.wait(list(pending), num_returns=len(pending), timeout=0)[0]]
        if still:  # a collective timed out on some ranks while another never reached it
            return self.diagnose_hang(refs, still, deadline_s, what)
        bad = []
        for r, ref in enumerate(refs):
            try:
                ray.get(ref, timeout=1)
            except Exception as e:  # noqa: BLE001
                bad.append((r, str(e).strip().splitlines()[-1][:200]))
        return "; ".join(f"rank {r} failed in {what} {self.placement.where([r])}: {msg}" for r, msg in bad) or str(err)

    def diagnose_hang(self, refs, pending, deadline_s, what) -> str:
        dead, silent = self.lost(what)
        if dead:
            return f"rank {', '.join(map(str, dead))} died during {what} {self.placement.where(dead)}"
        if silent:
            return (f"rank {', '.join(map(str, silent))} hung during {what}: no answer in "
                    f"{deadline_s:.0f} s, nor to a ping (the process is stopped or stuck) {self.placement.where(silent)}")
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
                f"{what}" + (f" (waiting in it: rank {', '.join(map(str, waiting))})" if waiting else "")
                + f" {self.placement.where(sorted(set(late) | set(waiting)))}")

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
