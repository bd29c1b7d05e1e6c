"""Where a world's shards go on the Ray cluster, and what to call a node when it fails.

The layout is proto's (`proto.nodes.tp_group_nodes`: node n holds a contiguous block of TP ranks).
One bundle per shard. A world on one node is one STRICT_PACK placement group (Ray picks the node);
a world over k nodes pins each shard's bundle to the Ray node playing layout node n, by Ray's
`ray.io/node-id` label (`bundle_label_selector`), so ranks 0..b-1 share one node, b..2b-1 the next,
as SGLang runs them. Layout node 0 is the driver's node where it can hold its block (SGLang's rank
0 sits with the engine), then the simulated nodes by their `sumonce_node_<i>` resource
(cluster.py), then by address.
"""
from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

import ray
from ray.util.placement_group import placement_group, placement_group_table

NODE_ID_LABEL = "ray.io/node-id"
SIMULATED = re.compile(r"^sumonce_node_(\d+)$")
"""The custom resource each simulated node carries (cluster.py), naming its index."""


class PlacementError(ValueError):
    """The cluster cannot place this world (a user error: exit 2)."""


class NodeShortage(PlacementError):
    """The cluster has too few nodes that can hold the layout (a user error: exit 2)."""


@dataclass(frozen=True)
class RayNode:
    node_id: str
    ip: str
    resources: dict

    def describe(self) -> str:
        return f"{self.ip}, ray node {self.node_id[:8]}"

    def simulated_index(self) -> int | None:
        for k in self.resources:
            m = SIMULATED.match(k)
            if m:
                return int(m.group(1))
        return None


def alive_nodes() -> list[RayNode]:
    """The cluster's live nodes, in the order layout nodes take them."""
    here = ray.get_runtime_context().get_node_id()
    found = [RayNode(n["NodeID"], n["NodeManagerAddress"], n["Resources"]) for n in ray.nodes() if n["Alive"]]

    def order(n: RayNode):
        sim = n.simulated_index()
        return (sim is None, sim or 0, n.node_id != here, n.ip, n.node_id)
    return sorted(found, key=order)


def holds(node: RayNode, bundle: dict, count: int) -> bool:
    return all(node.resources.get(k, 0) >= v * count for k, v in bundle.items())


@dataclass
class Placement:
    """Layout node of each rank, and the Ray node playing each layout node (known once placed)."""

    layout: tuple[int, ...]
    nodes: dict[int, RayNode]

    @property
    def spans(self) -> int:
        return len(set(self.layout))

    def ranks_on(self, n: int) -> list[int]:
        return [r for r, m in enumerate(self.layout) if m == n]

    def node_text(self, n: int) -> str:
        node = self.nodes.get(n)
        return f"node {n}" + (f" ({node.describe()})" if node else "")

    def where(self, ranks) -> str:
        """'(rank 2, 3 on node 1: 10.0.0.2, ray node 1bd84d83)': every rank named with its node."""
        parts = []
        for n in sorted({self.layout[r] for r in ranks}):
            mine = [r for r in ranks if self.layout[r] == n]
            node = self.nodes.get(n)
            parts.append(f"rank {', '.join(map(str, mine))} on node {n}" + (f": {node.describe()}" if node else ""))
        return f"({'; '.join(parts)})"


def plan(layout: tuple[int, ...], bundle: dict) -> Placement:
    """Ray nodes for a layout over several nodes; NodeShortage (one line) when too few can hold it."""
    need = Counter(layout)
    if len(need) == 1:
        if not any(holds(x, bundle, len(layout)) for x in alive_nodes()):
            most = max((min(int(x.resources.get(k, 0) // v) for k, v in bundle.items()) for x in alive_nodes()), default=0)
            raise PlacementError(f"world size {len(layout)} sits on one node (proto.nodes) and no node of the "
                                 f"cluster holds {len(layout)} bundles of {bundle}; allowed: world size <= {most} "
                                 "on one node")
        return Placement(layout, {})
    nodes, free = {}, alive_nodes()
    for n in sorted(need):
        fit = next((x for x in free if holds(x, bundle, need[n])), None)
        if fit is None:
            able = sum(holds(x, bundle, max(need.values())) for x in alive_nodes())
            raise NodeShortage(
                f"the TP group spans {len(need)} nodes of {max(need.values())} shard(s) each (bundles of "
                f"{bundle}): needs {len(need)} nodes, found {able} that can hold one of its blocks "
                f"({len(alive_nodes())} alive); start more (`ray start --address`, or --simulate-nodes here)")
        nodes[n] = fit
        free.remove(fit)
    return Placement(layout, nodes)


def create(p: Placement, bundle: dict):
    """The placement group: STRICT_PACK on one node, else each bundle pinned to its rank's node."""
    if p.spans == 1:
        return placement_group([bundle] * len(p.layout), strategy="STRICT_PACK")
    selectors = [{NODE_ID_LABEL: p.nodes[n].node_id} for n in p.layout]
    return placement_group([bundle] * len(p.layout), strategy="PACK", bundle_label_selector=selectors)


def record(p: Placement, pg) -> None:
    """Once the group is ready: which Ray node each layout node really got (read back from Ray)."""
    table = placement_group_table(pg).get("bundles_to_node_id", {})
    known = {n.node_id: n for n in alive_nodes()}
    for r, n in enumerate(p.layout):
        got = known.get(table.get(r, ""))
        if got is not None:
            p.nodes[n] = got


def summary(p: Placement) -> str:
    """One line: each layout node, its ranks and its Ray node."""
    return "; ".join(f"{p.node_text(n)}: rank {', '.join(map(str, p.ranks_on(n)))}" for n in sorted(set(p.layout)))
