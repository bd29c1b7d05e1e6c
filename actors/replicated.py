"""The replicated shared expert (SGLANG_SHARED_EXPERT_TP1) on real collectives (issue 16).

Every rank computes the whole shared output r from the full shared weights (tp 1, replicated) and
its routed partial from its own expert slice; then, step by step as proto.shared_expert says for
the case's era: the block's TP all-reduce (block_sums), r added where `adds` says, the later sum
(later_sum). The driver measures how many times r is in each rank's rows (the least-squares
multiple of r left once the routed reference is taken off) and compares it with proto's
replicated_count and with the reference that counts it once. Not executed here: the FP4
all-gather (Q) and a2a combines, where the output is complete (proved in spec.shared_expert).
Shapes: T = tokens, D = hidden.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from sumonce.proto import shared_expert as se
from sumonce.proto.communicator import scatters_hidden_states
from sumonce.proto.config import ForwardState, ServerConfig
from sumonce.proto.eras import Era
from sumonce.proto.sites import Group

from . import tokens as tk
from .layer import Weights, make_tokens, make_weights, route, routed_experts, shard_output, shared_expert

LATER_GROUP = {se.LaterSum.FUSED_EP: Group.EP, se.LaterSum.FUSED_MOE_TP: Group.MOE_TP,
               se.LaterSum.FUSED_TP: Group.TP, se.LaterSum.TP_SUM: Group.TP}


@dataclass(frozen=True)
class SharedCase:
    """One layer of a reader of the switch (config.shared_expert_tp1 is True) in one era; F and R
    are the context's flags from 0.5.21 (before, the decoder's come from config and state)."""
    model: str
    era: Era
    config: ServerConfig
    state: ForwardState
    reduce_results: bool = False
    F: bool = False
    R: bool = False
    seed: int = 0

    replicated_shared_expert = True
    """What actors.execute.run_layer dispatches on (a plain Case with the switch on runs the 0.5.11
    era's layer, whose releases do not read the switch)."""

    @property
    def world(self) -> int:
        return self.config.tp_size

    @property
    def how(self) -> se.Adds:
        return se.rule(self.era, self.reduce_results)

    def predicted(self, rank: int) -> int:
        return se.replicated_count(self.era, self.how, self.config, self.state, self.F, self.R, rank)


def run_replicated(comm, case: SharedCase, weights: Weights, sw: dict, dev) -> dict:
    """This rank's layer; returns its final rows' global token ids and values."""
    from .execute import dp_gather, dp_reduce_scatterv, own_dp_rows, own_tokens, reduce_scatter_rows
    c, s, era, how = case.config, case.state, case.era, case.how
    x_d, _, ids = own_tokens(comm, case, dev)
    dp_starts = None
    if scatters_hidden_states(c):
        x_d, ids, dp_starts = dp_gather(comm, x_d, c, s, dev)
    out = shard_output(x_d, weights.router.to(dev), sw, with_shared=False)
    r = shared_expert(x_d, weights.ws1.to(dev), weights.ws3.to(dev), weights.ws2.to(dev))
    mine = se.adds(era, how, c, case.F, case.R, comm.rank)
    before = how == se.Adds.BEFORE_GUARD  # r joins the routed output before the block's sum
    if before and mine:
        out = out + r
    if se.block_sums(era, how, c, s, case.F, case.R):
        out = comm.all_reduce(out.clone(), Group.TP, "block all-reduce")
    if mine and not before:
        out = out + r
    later = se.later_sum(era, how, c, s, case.F, case.R)
    if later in LATER_GROUP:
        out = comm.all_reduce(out.clone(), LATER_GROUP[later], later.value)
    if later == se.LaterSum.REDUCE_SCATTERV:
        out, src = dp_reduce_scatterv(comm, out, c, s, dp_starts)
        ids = ids[src.to(dev)]
    elif later == se.LaterSum.REDUCE_SCATTER:
        out, ids, _ = reduce_scatter_rows(comm, out, ids, False)
    elif dp_starts is not None:
        # NOTE: the DP scatter (no sum): this rank keeps its own DP rank's rows.
        src = own_dp_rows(comm, c, s, dp_starts).to(dev)
        out, ids = out[src], ids[src]
    return {"ids": ids.cpu(), "values": out.detach().cpu(), "later": later.value}


@dataclass
class SharedRow:
    case: SharedCase
    predicted: list
    measured: list
    residual: float
    error_vs_once: float
    later: str
    ok: bool


def reference(case: SharedCase, w: Weights) -> tuple[torch.Tensor, torch.Tensor]:
    """The routed experts' output summed once, and r, for every global token (unsharded)."""
    counts = tk.token_counts(case.config, case.state)
    x = torch.cat([make_tokens(case.seed, d, n)[0] for d, n in enumerate(counts)])
    ids, weights = route(x, w.router)
    return routed_experts(x, ids, weights, w.w1, w.w3, w.w2, 0), shared_expert(x, w.ws1, w.ws3, w.ws2)


def times_counted(values, ids, routed, r) -> tuple[int, float]:
    """The multiple k of r in values - routed (least squares over the rank's real rows), and what
    is left beside k * r (0 when the routed part was summed once and r counted k times)."""
    keep = ids >= 0
    extra, rr = values[keep] - routed[ids[keep]], r[ids[keep]]
    k = round((extra * rr).sum().item() / max((rr * rr).sum().item(), 1e-30))
    return k, (extra - k * rr).abs().max().item() if extra.numel() else 0.0


def check(case: SharedCase, results: list[dict], w: Weights) -> SharedRow:
    routed, r = reference(case, w)
    tol = 1e-3 * max(1.0, (routed + r).abs().max().item())
    measured, residual, err = [], 0.0, 0.0
    for res in results:
        k, left = times_counted(res["values"], res["ids"], routed, r)
        keep = res["ids"] >= 0
        once = routed[res["ids"][keep]] + r[res["ids"][keep]]
        err = max(err, (res["values"][keep] - once).abs().max().item() if keep.any() else 0.0)
        measured.append(k)
        residual = max(residual, left)
    predicted = [case.predicted(rank) for rank in range(case.world)]
    ok = measured == predicted and residual <= tol and ((err <= tol) == all(k == 1 for k in measured))
    return SharedRow(case, predicted, measured, residual, err, results[0]["later"], ok)


def run_shared_cases(cases: list[SharedCase], deadline_s: float = 120) -> list[SharedRow]:
    """Every case on a ShardSet per world size (gloo on CPU)."""
    from .driver import ShardSet
    rows = []
    for world in sorted({k.world for k in cases}):
        group = [k for k in cases if k.world == world]
        shards = ShardSet(world, timeout_s=deadline_s)
        try:
            per_rank = shards.call("run", group, None, deadline_s=deadline_s)
        finally:
            shards.stop()
        weights = {}
        for j, case in enumerate(group):
            w = weights.setdefault(case.seed, make_weights(case.seed, world=world))
            rows.append(check(case, [per_rank[rank][j] for rank in range(world)], w))
    return rows
