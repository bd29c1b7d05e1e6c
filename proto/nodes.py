"""Which node holds each rank of a TP group, as SGLang lays ranks out over `--nnodes` nodes.

SGLang 0.5.23 entrypoints/engine.py:2045-2077 `_calculate_rank_ranges(node_rank)` (the same
arithmetic as 0.5.11 entrypoints/engine.py:1259-1291, there with nnodes, pp_size and tp_size as
arguments), used by the plain launcher, the DP controller (managers/data_parallel_controller.py:
695-712, but for EP scale joiners) and the Ray launcher (ray/engine.py:334-344) alike:

    pp_size_per_node    = max(pp_size // nnodes, 1)
    nnodes_per_pp_rank  = max(nnodes // pp_size, 1)
    node n runs pp ranks  [pp_size_per_node * (n // nnodes_per_pp_rank), ... + pp_size_per_node)
    nnodes_per_tp_group = nnodes_per_pp_rank
    tp_size_per_node    = tp_size // nnodes_per_tp_group
    node n runs tp ranks  [tp_size_per_node * (n % nnodes_per_tp_group), ... + tp_size_per_node)

So one TP group spans `nnodes_per_tp_group` nodes, each holding a contiguous block of
`tp_size_per_node` TP ranks; with pp_size >= nnodes a whole TP group sits on one node.
Plain integers and one ServerConfig reader; nothing here decides anything else (whether fusion
auto-enables on several nodes is `ServerConfig.allreduce_fusion_enabled`'s).
"""
from __future__ import annotations

from .config import ServerConfig


def nnodes_per_tp_group(nnodes: int, pp_size: int) -> int:
    """Nodes one TP group (one pipeline stage) spans."""
    return max(nnodes // pp_size, 1)


def pp_size_per_node(nnodes: int, pp_size: int) -> int:
    """Pipeline stages each node runs."""
    return max(pp_size // nnodes, 1)


def tp_size_per_node(tp_size: int, nnodes: int, pp_size: int) -> int:
    """TP ranks of one group on each node it spans."""
    return tp_size // nnodes_per_tp_group(nnodes, pp_size)


def node_rank(tp_rank: int, pp_rank: int, tp_size: int, nnodes: int, pp_size: int) -> int:
    """The node whose ranges hold (pp_rank, tp_rank): the inverse of _calculate_rank_ranges."""
    per_tp = nnodes_per_tp_group(nnodes, pp_size)
    return (pp_rank // pp_size_per_node(nnodes, pp_size)) * per_tp + tp_rank // tp_size_per_node(tp_size, nnodes, pp_size)


def tp_group_nodes(c: ServerConfig, pp_rank: int = 0) -> tuple[int, ...]:
    """The node of each TP rank of pipeline stage `pp_rank` (the actors run stage 0)."""
    return tuple(node_rank(r, pp_rank, c.tp_size, c.nnodes, c.pp_size) for r in range(c.tp_size))


def spans_nodes(c: ServerConfig) -> int:
    """How many nodes one TP group of `c` spans."""
    return len(set(tp_group_nodes(c)))
