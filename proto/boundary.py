"""The 0.5.23 era's decision: the one-argument helper, the per-forward context it reads, and the
stage boundary's FFN exit that now owns the MoE sum (SGLang 0.5.22 - 0.5.23).

Every fact cites the 0.5.23 wheel (paths under sglang/srt/; `utils.py` is layers/moe/utils.py,
`exit.py` and `factories.py` are under layers/layer_boundary/). Q is unchanged (utils.py:707-718,
the same conditions as 0.5.11): proto.predicates' Q serves both eras. The layer model
(proto.models_0523) keeps moe_dp_size at 1, as proto.semantics does, so there a hybrid EP x
MoE-TP layout always merges (utils.py:837-848).

Scope: moe_a2a_backend none, or one of the a2a backends the helper names (flashinfer, pplx,
flashinfer_megamoe); the other a2a backends, moe_dp_size > 1, attention CP, AMD, input-scattered
batches, LoRA and quantized communication are outside it (proto.models_0523.in_scope).

NOTE: written in the subset spec/ lifts (see proto.config).
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from .config import BoundaryReduction, DpPaddingMode, ForwardState, MoeA2ABackend, ServerConfig
from . import predicates
from .predicates import should_use_flashinfer_cutlass_moe_fp4_allgather
from .sites import Group

COMPLETING_A2A = (MoeA2ABackend.FLASHINFER, MoeA2ABackend.PPLX, MoeA2ABackend.FLASHINFER_MEGAMOE)
"""utils.py:779-782: the combines that sum each token's expert outputs back to its source rank."""


@dataclass(frozen=True)
class ForwardContext:
    """The per-forward flags a decoder publishes (get_forward(); runtime_context.py:695 lists
    mlp_reduce_scatter, and defer_moe_finalize which the decision does not read). From 0.5.22
    the fusion flag is gone: the boundary decides deferral itself."""
    mlp_reduce_scatter: bool = False
    """A later reduce-scatter completes the sum (published by deepseek_v2's custom-op path, beam
    and deepseek_common/moe_transport; no boundary decoder publishes it)."""


def should_use_dp_reduce_scatterv(c: ServerConfig) -> bool:
    """V at 0.5.23 (utils.py:730-748): as 0.5.11's, and attention TP 1 (tp == attn_dp, :747)."""
    return predicates.should_use_dp_reduce_scatterv(c) and c.tp_size == c.attn_dp_size


def is_moe_input_scattered_across_dp_ranks(c: ServerConfig) -> bool:
    """utils.py:721-727: the MoE runs on the rank's own rows: an a2a backend, Q, or dwdp > 1."""
    return (c.moe_a2a_backend != MoeA2ABackend.NONE
            or should_use_flashinfer_cutlass_moe_fp4_allgather(c) or c.dwdp_size > 1)


def post_experts_output_is_complete(c: ServerConfig, *, is_tp_path: bool) -> bool:
    """utils.py:761-782: dwdp > 1 (:769), Q on either path (:771, since 0.5.22), or a completing
    a2a combine (:782). is_tp_path no longer matters (SGLang keeps the argument)."""
    if c.dwdp_size > 1:
        return True
    if should_use_flashinfer_cutlass_moe_fp4_allgather(c):
        return True
    return c.moe_a2a_backend in COMPLETING_A2A


def should_skip_mlp_all_reduce(ctx: ForwardContext) -> bool:
    """utils.py:751-758: the context's mlp_reduce_scatter."""
    return ctx.mlp_reduce_scatter


def should_skip_post_experts_all_reduce(c: ServerConfig, ctx: ForwardContext, *, is_tp_path: bool) -> bool:
    """The one-argument helper (utils.py:785-794): ctx.R or complete(is_tp_path)."""
    return should_skip_mlp_all_reduce(ctx) or post_experts_output_is_complete(c, is_tp_path=is_tp_path)


def reduce_moe_output_runs(c: ServerConfig, ctx: ForwardContext) -> bool:
    """reduce_moe_output (utils.py:797-806) all-reduces over the whole TP group."""
    return c.tp_size > 1 and not should_skip_post_experts_all_reduce(c, ctx, is_tp_path=True)


def should_add_replicated_moe_output(c: ServerConfig, ctx: ForwardContext, tp_rank: int) -> bool:
    """utils.py:811-822: a replicated (TP1 shared expert) output is added on TP rank 0 only when a
    later step still sums the output over TP."""
    summed_later = (should_skip_post_experts_all_reduce(c, ctx, is_tp_path=True)
                    and not post_experts_output_is_complete(c, is_tp_path=True))
    return not (c.tp_size > 1 and summed_later and tp_rank != 0)


def adds_replicated_output_to_partial(c: ServerConfig, tp_rank: int) -> bool:
    """utils.py:825-835: for a block whose boundary sums: rank 0 only while a TP sum is owed."""
    owes_sum = c.tp_size > 1 and not post_experts_output_is_complete(c, is_tp_path=True)
    return not owes_sum or tp_rank == 0


def can_merge_post_experts_all_reduce(c: ServerConfig) -> bool:
    """utils.py:837-848: moe_ep > 1, moe_tp > 1 and moe_dp == 1."""
    return c.ep_size > 1 and c.moe_tp_size > 1 and c.moe_dp_size == 1


def post_experts_reduction_group(c: ServerConfig) -> Group:
    """utils.py:900-910: TP when mergeable, else EP when moe_ep > 1, else MoE-TP; the fused
    kernel's workspace is built on it (flashinfer_comm_fusion.py:698, resolve_fusion_group), and a
    declined kernel's deferred_post_experts_all_reduce runs over it (utils.py:933)."""
    if can_merge_post_experts_all_reduce(c):
        return Group.TP
    if c.ep_size > 1:
        return Group.EP
    return Group.MOE_TP


@dataclass(frozen=True)
class SumCounts:
    """Times each partial axis was summed in one layer (as proto.semantics.SumCounts)."""
    ep: int
    moe_tp: int


def post_experts_all_reduce(c: ServerConfig, ctx: ForwardContext) -> SumCounts:
    """utils.py:851-866 (one TP all-reduce when both are owed and mergeable, :890): the EP sum
    unless skip(False), the MoE-TP sum unless skip(True)."""
    ep = c.ep_size > 1 and not should_skip_post_experts_all_reduce(c, ctx, is_tp_path=False)
    tp = c.moe_tp_size > 1 and not should_skip_post_experts_all_reduce(c, ctx, is_tp_path=True)
    return SumCounts(1 if ep else 0, 1 if tp else 0)


def sum_post_experts_output(c: ServerConfig) -> SumCounts:
    """utils.py:868-888, the boundary's sum: gated by complete(...) only, never by ctx."""
    ep = c.ep_size > 1 and not post_experts_output_is_complete(c, is_tp_path=False)
    tp = c.moe_tp_size > 1 and not post_experts_output_is_complete(c, is_tp_path=True)
    return SumCounts(1 if ep else 0, 1 if tp else 0)


class Exit(StrEnum):
    """What completes a sparse FFN's output at the stage boundary's exit."""
    COMPLETE = "output declared complete: nothing owed (factories.py:194)"
    REDUCE_SCATTERV = "DP reduce-scatterv (exit.py:142)"
    DP_REDUCE_SCATTER = "fixed-size DP reduce-scatter, MAX_LEN padding (exit.py:76-89)"
    DEFERRED_FUSED = "deferred: next input's fused all-reduce + RMSNorm over post_experts_reduction_group"
    DEFERRED_ALL_REDUCE = "deferred: fused kernel declines, deferred_post_experts_all_reduce (layernorm.py:264)"
    SUM_NOW = "sum_post_experts_output now (exit.py:378, ops.py:245)"


def may_reduce_scatter(c: ServerConfig) -> bool:
    """factories.py:158: boundary_reduction rs or rs+rsv."""
    r = c.resolved_boundary_reduction
    return r == BoundaryReduction.RS or r == BoundaryReduction.RS_RSV


def may_reduce_scatterv(c: ServerConfig) -> bool:
    """factories.py:159: boundary_reduction rsv or rs+rsv."""
    r = c.resolved_boundary_reduction
    return r == BoundaryReduction.RSV or r == BoundaryReduction.RS_RSV


def sum_deferral_allowed(c: ServerConfig, s: ForwardState) -> bool:
    """exit.py:150-174: not under the MoE-CP all-gather, not a hybrid layout that cannot merge
    (:164), not DP attention with EAGLE (:171), not an input-scattered batch."""
    return (not c.moe_cp_allgather
            and not (c.ep_size > 1 and c.moe_tp_size > 1 and not can_merge_post_experts_all_reduce(c))
            and not (c.enable_dp_attention and c.speculative_is_eagle)
            and not s.attn_tp_input_scattered)


def may_defer_sum(c: ServerConfig, s: ForwardState) -> bool:
    """exit.py:118-127: tp > 1, not the terminal layer nor a pipeline hand-off (exit.py:297),
    deferral allowed; under DP attention the output returns over DP (it does: the boundary's
    prepare gathered it)."""
    return (c.tp_size > 1 and not s.is_last_layer and not s.is_stage_last_layer
            and sum_deferral_allowed(c, s))


def post_experts_sum_is_one_all_reduce(c: ServerConfig) -> bool:
    """utils.py:912-930: the owed sum is one all-reduce over the TP group itself: a2a none, not
    complete, not a hybrid EP x MoE-TP layout, and the group is _TP (the EP group is _TP when
    ep == tp, the MoE-TP group when moe_tp == tp: distributed/parallel_state.py:2894-2895, 2924).
    Off here: quantized communication, SGLANG_SHARED_EXPERT_TP1, LoRA."""
    return (c.moe_a2a_backend == MoeA2ABackend.NONE
            and not post_experts_output_is_complete(c, is_tp_path=True)
            and not (c.ep_size > 1 and c.moe_tp_size > 1)
            and (c.ep_size == c.tp_size or c.moe_tp_size == c.tp_size))


def defers_sum(c: ServerConfig, s: ForwardState) -> bool:
    """_defers_sum (exit.py:431-454) with _batch_allows_deferred_sum (:457-470): the batch has
    tokens and the sum is one TP all-reduce (single_sum, exit.py:129, 469); the LoRA / TP1 shared-expert
    fused-consumer case is off here. So a hybrid EP x MoE-TP output is never deferred: it is summed
    now, merged into one TP all-reduce (utils.py:890)."""
    return may_defer_sum(c, s) and s.num_tokens > 0 and post_experts_sum_is_one_all_reduce(c)


def ffn_exit(c: ServerConfig, s: ForwardState, defers=defers_sum) -> Exit:
    """The exit's decision, once per batch before the FFN runs (exit.py:267-353). The fixed-size
    DP reduce-scatter also needs can_use_dp_reduce_scatter (layers/dp_attention.py:1111-1117:
    tp == dp ranks * attention TP), which proto's sizes always satisfy. `defers`: the era's
    deferral test (0.5.21's, proto.models_0521.defers_sum, also defers a stage's last layer)."""
    if is_moe_input_scattered_across_dp_ranks(c):
        return Exit.COMPLETE
    if c.attn_dp_size > 1 and should_use_dp_reduce_scatterv(c) and may_reduce_scatterv(c):
        return Exit.REDUCE_SCATTERV
    if c.attn_dp_size > 1 and may_reduce_scatter(c) and s.dp_padding_mode == DpPaddingMode.MAX_LEN:
        return Exit.DP_REDUCE_SCATTER
    if defers(c, s):
        return Exit.DEFERRED_FUSED if s.next_norm_fused else Exit.DEFERRED_ALL_REDUCE
    return Exit.SUM_NOW
