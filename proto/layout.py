"""Where rank r of one TP group sits on each parallel axis, as SGLang 0.5.11 lays groups out.

distributed/parallel_state.py initialize_model_parallel: the MoE-TP groups are blocks of moe_tp
consecutive ranks and the EP groups take every moe_tp-th rank; the attention-TP groups are blocks
of attn_tp consecutive ranks, one per attention-DP rank. So rank r is EP rank r // moe_tp, MoE-TP
rank r % moe_tp, attention-DP rank r // attn_tp, attention-TP rank r % attn_tp.

Plain integers (no ServerConfig needed), for the actors, the measurement and proto.alignment's
reasoning alike.
"""
from __future__ import annotations

AXES = ("ep", "moe_tp")
"""The partial axes of the experts' output, in the order a rank's coordinates list them."""


def coords(rank: int, moe_tp: int) -> dict[str, int]:
    """Rank's index on each partial axis."""
    return {"ep": rank // moe_tp, "moe_tp": rank % moe_tp}


def attn_dp_rank(rank: int, attn_tp: int) -> int:
    return rank // attn_tp


def summing_group(rank: int, axes: tuple[str, ...], world: int, moe_tp: int) -> list[int]:
    """The ranks a sum over `axes` adds to `rank`: those sharing its index on every other axis."""
    me = coords(rank, moe_tp)
    return [q for q in range(world) if all(coords(q, moe_tp)[k] == me[k] for k in AXES if k not in axes)]


def group_ranks(kind: str, rank: int, world: int, moe_tp: int, attn_tp: int) -> tuple[int, ...]:
    """The ranks of `rank`'s group of this kind: "tp", "ep", "moe_tp" (proto.sites.Group values)
    or "attn_tp"."""
    if kind == "tp":
        return tuple(range(world))
    if kind == "moe_tp":
        start = rank // moe_tp * moe_tp
        return tuple(range(start, start + moe_tp))
    if kind == "ep":
        return tuple(range(rank % moe_tp, world, moe_tp))
    if kind == "attn_tp":
        start = rank // attn_tp * attn_tp
        return tuple(range(start, start + attn_tp))
    raise ValueError(f"unknown group kind {kind!r}; known: tp, ep, moe_tp, attn_tp")
