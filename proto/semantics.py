"""Reduction semantics: how many times each partial axis of the experts' output is summed.

For a configuration, a forward state, a model, the forward variant that runs and a guard version,
`sum_counts` walks one MoE layer and the step after it, adding one for each axis that each real
collective sums (shared/SGLANG_FACTS.md, "What absorbs a skipped all-reduce"):

  experts call   Q: the FP4 all-gather's combine reduce-scatters over TP        -> both axes
  sites          each site whose guard runs: its group's axes (TP: both)
  after          one step, after_experts (what actors/ executes):
                 F and the decoder fuses: next layer's fused all-reduce         -> EP if ep > 1,
                                                                                   else MoE-TP;
                                       unfused fallback                        -> MoE-TP
                 else, with a communicator: reduce-scatterv (V, scatter mode)
                                         or else reduce-scatter (R)            -> both axes, once

Scope: moe_a2a_backend "none" (the standard dispatcher). Under an a2a backend the dispatcher's own
combine sums the EP axis, and that is outside the facts this spec is pinned to.

NOTE: written in the subset spec/ lifts (loops over concrete tuples, if, int accumulators).
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from .communicator import scatters_hidden_states, should_allreduce_fusion, use_reduce_scatter
from .config import ForwardState, MoeA2ABackend, ServerConfig
from .predicates import should_use_dp_reduce_scatterv, should_use_flashinfer_cutlass_moe_fp4_allgather
from .sites import BlockFlag, Group, Level, Model, Version


class After(StrEnum):
    """The decoder's step after the MoE block (what an executor runs, what sum_counts counts)."""
    NEXT_LAYER_FUSED = "next-layer fused all-reduce + residual + RMSNorm"
    NEXT_LAYER_UNFUSED = "next-layer unfused all-reduce fallback + residual + RMSNorm"
    REDUCE_SCATTERV = "DP-attention reduce-scatterv"
    REDUCE_SCATTER = "communicator reduce-scatter"
    DP_SCATTER = "DP-attention scatter (no sum)"
    NONE = "none"


@dataclass(frozen=True)
class SumCounts:
    """Times each partial axis was summed in one layer."""
    ep: int
    moe_tp: int


def in_scope(c: ServerConfig, m: Model) -> bool:
    """The standard dispatcher runs, so the model reaches its post-experts sites."""
    return c.moe_a2a_backend == MoeA2ABackend.NONE and c.architecture in m.architectures


def reaches_sites(c: ServerConfig, m: Model) -> bool:
    """The model's forward takes the path with the post-experts sites (not e.g. a DeepEP one)."""
    return c.moe_a2a_backend not in m.excluded_backends


def decoder_fusion(c: ServerConfig, s: ForwardState, m: Model) -> bool:
    """F as the decoder computes it (False where the decoder never asks)."""
    return m.decoder.computes_fusion and should_allreduce_fusion(c, s)


def decoder_reduce_scatter(c: ServerConfig, s: ForwardState, m: Model) -> bool:
    """R as the decoder computes it (False without a layer communicator)."""
    return m.decoder.communicator and use_reduce_scatter(c, s, m.decoder.allow_reduce_scatter)


def block_fusion(c: ServerConfig, s: ForwardState, m: Model) -> bool:
    """The should_allreduce_fusion the MoE block receives."""
    if m.decoder.block_F == BlockFlag.TRUE:
        return True
    if m.decoder.block_F == BlockFlag.COMPUTED:
        return decoder_fusion(c, s, m)
    return False


def block_reduce_scatter(c: ServerConfig, s: ForwardState, m: Model) -> bool:
    """The use_reduce_scatter the MoE block receives."""
    return m.decoder.passes_R and decoder_reduce_scatter(c, s, m)


def after_experts(c: ServerConfig, s: ForwardState, m: Model) -> After:
    """The step after the sites. F hands the output to the next layer (postprocess is skipped);
    else the communicator's _scatter_hidden_states prefers the reduce-scatterv (V) to the
    reduce-scatter (R); R for its other reasons reduce-scatters at the next layer's input."""
    if decoder_fusion(c, s, m) and m.decoder.fuses_next_layer:
        if s.next_norm_fused:
            return After.NEXT_LAYER_FUSED
        return After.NEXT_LAYER_UNFUSED
    if not m.decoder.communicator:
        return After.NONE
    if scatters_hidden_states(c) and should_use_dp_reduce_scatterv(c):
        return After.REDUCE_SCATTERV
    if decoder_reduce_scatter(c, s, m):
        return After.REDUCE_SCATTER
    if scatters_hidden_states(c):
        return After.DP_SCATTER
    return After.NONE


def next_layer_group(c: ServerConfig, after: After) -> Group:
    """The one group the next layer's all-reduce sums over: the fused kernel the EP group when
    ep > 1, else the MoE-TP group; the unfused fallback the MoE-TP group."""
    if after == After.NEXT_LAYER_FUSED and c.ep_size > 1:
        return Group.EP
    return Group.MOE_TP


def site_runs(c: ServerConfig, s: ForwardState, m: Model, site, version: Version) -> bool:
    """Whether `site` runs its all-reduce: its guard at `version`, on the F and R it sees (the
    block's for a block site, the decoder's own for a decoder-level one)."""
    guard = site.guard(version)
    if site.level == Level.BLOCK:
        return guard(c, block_fusion(c, s, m), block_reduce_scatter(c, s, m))
    return guard(c, decoder_fusion(c, s, m), decoder_reduce_scatter(c, s, m))


def sum_counts(c: ServerConfig, s: ForwardState, m: Model, variant: str, version: Version) -> SumCounts:
    """How many times the EP and MoE-TP axes are summed in one layer of model `m`."""
    ep, moe_tp = 0, 0
    if should_use_flashinfer_cutlass_moe_fp4_allgather(c):
        ep, moe_tp = ep + 1, moe_tp + 1
    for site in m.sites_of(variant):
        runs = site_runs(c, s, m, site, version)
        if runs and site.group != Group.MOE_TP:
            ep = ep + 1
        if runs and site.group != Group.EP:
            moe_tp = moe_tp + 1
    after = after_experts(c, s, m)
    if after == After.NEXT_LAYER_FUSED or after == After.NEXT_LAYER_UNFUSED:
        if next_layer_group(c, after) == Group.EP:
            ep = ep + 1
        else:
            moe_tp = moe_tp + 1
    if after == After.REDUCE_SCATTERV or after == After.REDUCE_SCATTER:
        ep, moe_tp = ep + 1, moe_tp + 1
    return SumCounts(ep, moe_tp)


def exactly_once(c: ServerConfig, s: ForwardState, m: Model, variant: str, version: Version) -> bool:
    """Every partial axis of size > 1 is summed exactly once."""
    n = sum_counts(c, s, m, variant, version)
    return (c.ep_size == 1 or n.ep == 1) and (c.moe_tp_size == 1 or n.moe_tp == 1)


def forward_state_valid(c: ServerConfig, s: ForwardState) -> bool:
    """A forward SGLang can run under `c`: a non-negative token count (0 is an idle DP-attention
    rank); input scattered only where AttnTpContext allows it (use_input_scattered)."""
    return s.num_tokens >= 0 and (not s.attn_tp_input_scattered or c.attn_tp_input_scattered_allowed)
