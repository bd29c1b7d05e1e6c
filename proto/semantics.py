"""Reduction semantics: how many times each partial axis of the experts' output is summed.

For a configuration, a forward state, a model, the forward variant that runs and a guard version,
`sum_counts` walks one MoE layer and the step after it, adding one for each axis that each real
collective sums (shared/SGLANG_FACTS.md, "What absorbs a skipped all-reduce"):

  experts call   Q: the FP4 all-gather's combine reduce-scatters over TP        -> both axes
  sites          each site whose guard runs: its group's axes (TP: both)
  after          one step, after_experts (what actors/ executes):
                 F and the decoder fuses: CUDA, flashinfer's fused kernel       -> EP if ep > 1,
                                                                                   else MoE-TP;
                                          CUDA, the kernel declines (None)     -> nothing
                                          AMD, aiter's fused kernel/fallback   -> both axes
                                          AMD, past aiter's limits             -> MoE-TP
                                          a pipeline stage's last layer        -> nothing
                 else, with a communicator: reduce-scatterv (V, scatter mode)
                                         or else reduce-scatter (R)            -> both axes, once

The outcome of the layer (layer_outcome) also asks whether the ranks of each sum held the same
tokens (proto.alignment: else the sum mixes tokens) and whether the run can proceed at all (V's
reduce-scatterv crashes with attention TP > 1 in 0.5.11).

Scope: moe_a2a_backend "none" (the standard dispatcher). Under an a2a backend the dispatcher's own
combine sums the EP axis, and that is outside the facts this spec is pinned to.

NOTE: written in the subset spec/ lifts (loops over concrete tuples, if, int accumulators).
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from .alignment import gathers_tokens, group_spans_dp_ranks, model_runs_dp_attention
from .communicator import aiter_norm_fuses, scatters_hidden_states, should_allreduce_fusion, use_reduce_scatter
from .config import ForwardState, MoeA2ABackend, ServerConfig
from .predicates import should_use_dp_reduce_scatterv, should_use_flashinfer_cutlass_moe_fp4_allgather
from .sites import BlockFlag, Group, Level, Model, Version


class After(StrEnum):
    """The decoder's step after the MoE block (what an executor runs, what sum_counts counts)."""
    NEXT_LAYER_FUSED = "next-layer fused all-reduce + residual + RMSNorm"
    NEXT_LAYER_DECLINED = "next-layer fused kernel declined: RMSNorm with no all-reduce"
    NEXT_LAYER_AITER = "next-layer aiter fused all-reduce (or its fallback) over TP + RMSNorm"
    NEXT_LAYER_UNFUSED = "next-layer MoE-TP all-reduce + residual + RMSNorm (not fused)"
    STAGE_BOUNDARY = "pipeline stage boundary: fusion mark dropped, no all-reduce"
    REDUCE_SCATTERV = "DP-attention reduce-scatterv"
    REDUCE_SCATTER = "communicator reduce-scatter"
    DP_SCATTER = "DP-attention scatter (no sum)"
    NONE = "none"


class Outcome(StrEnum):
    """What one layer does to the experts' partial output."""
    ONCE = "every axis summed once"
    DOUBLE = "an axis summed twice (double reduce)"
    MISSING = "an axis never summed (missing reduce)"
    MIXES_TOKENS = "a sum over ranks holding different tokens (mixes tokens; a hang where counts differ)"
    CRASH = "crash: the run cannot proceed (a collective's or a tensor's sizes do not match)"


@dataclass(frozen=True)
class SumCounts:
    """Times each partial axis was summed in one layer."""
    ep: int
    moe_tp: int


def in_scope(c: ServerConfig, m: Model) -> bool:
    """The standard dispatcher runs, so the model reaches its post-experts sites; moe_dp_size 1
    (above it the MoE groups are a sub-layout of TP this model does not follow)."""
    return (c.moe_a2a_backend == MoeA2ABackend.NONE and c.architecture in m.architectures
            and c.moe_dp_size == 1)


def model_supports(c: ServerConfig, m: Model) -> bool:
    """The model can run `c` at all: DP attention only with a DP gather (proto.alignment), pipeline
    stages only where its file has them (proto.catalogue.NO_PP)."""
    return model_runs_dp_attention(c, m) and (c.pp_size == 1 or m.supports_pp)


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
        return next_layer_step(c, s)
    if not m.decoder.communicator:
        return After.NONE
    if scatters_hidden_states(c) and should_use_dp_reduce_scatterv(c):
        return After.REDUCE_SCATTERV
    if decoder_reduce_scatter(c, s, m):
        return After.REDUCE_SCATTER
    if scatters_hidden_states(c):
        return After.DP_SCATTER
    return After.NONE


def next_layer_step(c: ServerConfig, s: ForwardState) -> After:
    """Where the marked output goes (0.5.11). A stage's last layer returns it in PPProxyTensors,
    which carry no _sglang_needs_allreduce_fusion mark (models/qwen2_moe.py:813-819, the forward
    Qwen3MoeModel shares; qwen3_moe.py:852-853 sets the mark; is_last_layer is the model's last,
    qwen3_moe.py:803). Else the next prepare_attn (layers/communicator.py:514-533): on CUDA the
    fused branch (same predicate as F) calls flashinfer_allreduce_residual_rmsnorm, which may
    return None, and then the norm runs with no all-reduce (layernorm.py:157-172); on AMD aiter's
    fused kernel or its fallback sum the TP group (layernorm.py:150-170), and past aiter's limits
    the MoE-TP all-reduce runs (communicator.py:528-533)."""
    if s.is_stage_last_layer:
        return After.STAGE_BOUNDARY
    if c.is_amd:
        if aiter_norm_fuses(c, s):
            return After.NEXT_LAYER_AITER
        return After.NEXT_LAYER_UNFUSED
    if s.next_norm_fused:
        return After.NEXT_LAYER_FUSED
    return After.NEXT_LAYER_DECLINED


def next_layer_group(c: ServerConfig, after: After) -> Group:
    """The one group the next layer's all-reduce sums over: flashinfer's kernel the EP group when
    ep > 1, else the MoE-TP group (flashinfer_comm_fusion.py:635-644); aiter the TP group; the
    unfused branch the MoE-TP group."""
    if after == After.NEXT_LAYER_FUSED and c.ep_size > 1:
        return Group.EP
    if after == After.NEXT_LAYER_AITER:
        return Group.TP
    return Group.MOE_TP


def site_runs(c: ServerConfig, s: ForwardState, m: Model, site, version: Version) -> bool:
    """Whether `site` runs its all-reduce: its guard at `version`, on the F and R it sees (the
    block's for a block site, the decoder's own for a decoder-level one)."""
    guard = site.guard(version)
    if site.level == Level.BLOCK:
        return guard(c, block_fusion(c, s, m), block_reduce_scatter(c, s, m))
    return guard(c, decoder_fusion(c, s, m), decoder_reduce_scatter(c, s, m))


def count_sums(c: ServerConfig, runs: tuple, after: After) -> SumCounts:
    """The per-axis counts of one layer: Q's combine, each (group, runs) site pair that runs (its
    group's axes) and the step after the sites. The one counting rule every helper-era layer
    shares (proto.era_layers passes its release's site decisions and step)."""
    ep, moe_tp = 0, 0
    if should_use_flashinfer_cutlass_moe_fp4_allgather(c):
        ep, moe_tp = ep + 1, moe_tp + 1
    for group, ran in runs:
        if ran and group != Group.MOE_TP:
            ep = ep + 1
        if ran and group != Group.EP:
            moe_tp = moe_tp + 1
    if after == After.NEXT_LAYER_FUSED and c.ep_size > 1:
        ep = ep + 1
    if after == After.NEXT_LAYER_FUSED and c.ep_size == 1 or after == After.NEXT_LAYER_UNFUSED:
        moe_tp = moe_tp + 1
    if after in (After.REDUCE_SCATTERV, After.REDUCE_SCATTER, After.NEXT_LAYER_AITER):
        ep, moe_tp = ep + 1, moe_tp + 1
    return SumCounts(ep, moe_tp)


def sum_counts(c: ServerConfig, s: ForwardState, m: Model, variant: str, version: Version) -> SumCounts:
    """How many times the EP and MoE-TP axes are summed in one layer of model `m`."""
    runs = ()
    for site in m.sites_of(variant):
        runs = runs + ((site.group, site_runs(c, s, m, site, version)),)
    return count_sums(c, runs, after_experts(c, s, m))


def mixes_tokens(c: ServerConfig, s: ForwardState, m: Model, variant: str, version: Version) -> bool:
    """Some site's sum runs over ranks that hold different tokens (proto.alignment): under Q any
    site that runs (after the combine each rank holds its own tokens, and attn_tp == 1), and under
    DP attention without the decoder's gather any site whose group spans attention-DP ranks. The
    steps after the sites never do: F needs no DP attention, R and V a communicator, which gathers.
    NOTE: tokens_vary_at_sites, unrolled so that a gathering model's formula has no remainder."""
    mixed = False
    if c.attn_dp_size > 1:
        for site in m.sites_of(variant):
            runs = site_runs(c, s, m, site, version)
            if runs and should_use_flashinfer_cutlass_moe_fp4_allgather(c):
                mixed = True
            if not m.decoder.gathers_for_dp_attention and runs and group_spans_dp_ranks(c, site.group):
                mixed = True
    return mixed


def crashes(c: ServerConfig, s: ForwardState, m: Model) -> bool:
    """The run cannot proceed (0.5.11):
    - V's reduce-scatterv with attention TP > 1: _scatter_hidden_states passes
      get_dp_global_num_tokens(), one size per DP rank (layers/communicator.py:1215-1220,
      dp_attention.py:212), to the TP group's reduce_scatterv, which asserts one per group rank
      (distributed/parallel_state.py:782-783). 0.5.23 restricts V to tp == attn_dp instead
      (layers/moe/utils.py:742-748).
    - F on AMD under DP attention (aiter's F term has no DP-attention test, communicator.py:742-747):
      postprocess_layer's scatter is skipped (qwen3_moe.py:852-858), so the next layer gets the
      DP group's gathered tokens beside its own DP rank's residual."""
    # NOTE: attn_tp > 1, stated as tp > attn_dp (attn_dp divides tp): linear, which z3 solves fast.
    v_crash = after_experts(c, s, m) == After.REDUCE_SCATTERV and c.tp_size > c.attn_dp_size
    unscattered = decoder_fusion(c, s, m) and m.decoder.fuses_next_layer and gathers_tokens(c, m)
    return v_crash or unscattered


def layer_outcome(c: ServerConfig, s: ForwardState, m: Model, variant: str, version: Version) -> Outcome:
    """The layer's outcome: a crash, a sum that mixes tokens, or else by the per-axis counts."""
    if crashes(c, s, m):
        return Outcome.CRASH
    if mixes_tokens(c, s, m, variant, version):
        return Outcome.MIXES_TOKENS
    n = sum_counts(c, s, m, variant, version)
    if c.ep_size > 1 and n.ep == 0 or c.moe_tp_size > 1 and n.moe_tp == 0:
        return Outcome.MISSING
    if c.ep_size > 1 and n.ep > 1 or c.moe_tp_size > 1 and n.moe_tp > 1:
        return Outcome.DOUBLE
    return Outcome.ONCE


def exactly_once(c: ServerConfig, s: ForwardState, m: Model, variant: str, version: Version) -> bool:
    """Every partial axis of size > 1 is summed exactly once, over aligned tokens, and the run
    proceeds: layer_outcome is ONCE (stated flat, which z3 solves faster than the enumeration)."""
    n = sum_counts(c, s, m, variant, version)
    return (not crashes(c, s, m) and not mixes_tokens(c, s, m, variant, version)
            and (c.ep_size == 1 or n.ep == 1) and (c.moe_tp_size == 1 or n.moe_tp == 1))


def forward_state_valid(c: ServerConfig, s: ForwardState) -> bool:
    """A forward SGLang can run under `c`: a non-negative token count (0 is an idle DP-attention
    rank); input scattered only where AttnTpContext allows it (use_input_scattered); a stage's
    last layer only with pp_size > 1, and never the model's last layer."""
    return (s.num_tokens >= 0
            and (not s.attn_tp_input_scattered or c.attn_tp_input_scattered_allowed)
            and (not s.is_stage_last_layer or c.pp_size > 1 and not s.is_last_layer))
