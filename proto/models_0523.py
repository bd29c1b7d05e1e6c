"""The 15 models #23748 migrated, as their 0.5.23 decoders run the MoE sum, and one layer's
outcome in the 0.5.23 era (the counterpart of proto.semantics for that era).

Decoder facts (SGLang 0.5.23, sglang/srt/models/): 14 decoders declare stage boundaries
(`append_stages(...)` at the line cited); their MoE block returns the experts' output unreduced and
the FFN exit completes it (proto.boundary.ffn_exit). The boundary's prepare step gathers DP
attention's tokens (the FFN's full row layout, sharded over no token axis, layer_boundary/
factories.py:113-121; the gather, layer_boundary/prepare.py:77 dp_gather), so those sums are over
aligned tokens. hunyuan_v3 has no stage boundary: its block still calls
post_experts_all_reduce (hunyuan_v3.py:190, 215) and its decoder (hunyuan_v3.py:369) has no DP
gather; nothing publishes ctx.mlp_reduce_scatter for it (False).

NOTE: written in the subset spec/ lifts.
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from .alignment import group_spans_dp_ranks
from .boundary import (
    COMPLETING_A2A,
    Exit,
    ForwardContext,
    SumCounts,
    can_merge_post_experts_all_reduce,
    ffn_exit,
    is_moe_input_scattered_across_dp_ranks,
    post_experts_all_reduce,
    post_experts_reduction_group,
    sum_post_experts_output,
)
from .catalogue import MODELS
from .config import ForwardState, MoeA2ABackend, ServerConfig
from .semantics import Outcome, forward_state_valid
from .sites import Group


class SumsAt(StrEnum):
    BOUNDARY = "the stage boundary's FFN exit"
    BLOCK = "the MoE block (post_experts_all_reduce)"


@dataclass(frozen=True)
class EraModel:
    """One catalogued model in the 0.5.23 era."""
    name: str
    architectures: tuple[str, ...]
    sums_at: SumsAt
    gathers_for_dp_attention: bool
    cite: str
    """file:line at 0.5.23 (the append_stages call, or the block's post_experts_all_reduce)."""


# Catalogue name -> 0.5.23 file and the line of its append_stages call (docs/eras.json models_0_5_23).
BOUNDARY_LINES = {
    "qwen3_moe": ("qwen3_moe", 867), "bailing_moe": ("bailing_moe", 695),
    "bailing_moe_linear": ("bailing_moe_linear", 818), "deepseek_v2": ("deepseek_v2", 2742),
    "exaone_moe": ("exaone_moe", 488), "glm4_moe": ("glm4_moe", 761), "llada2": ("llada2", 1147),
    "llama4": ("llama4", 427), "mimo_v2_flash": ("mimo_v2", 958), "minimax_m2": ("minimax_m2", 863),
    "qwen2_moe": ("qwen2_moe", 1047), "sarvam_moe": ("sarvam_moe", 1022),
    "sdar_moe": ("sdar_moe", 355), "step3p5": ("step3p5", 522),
}
BLOCK_SUMS = {"hunyuan_v3": "models/hunyuan_v3.py:190, 215 (decoder :369, no DP gather)"}


def _era_model(m) -> EraModel:
    if m.name in BLOCK_SUMS:
        return EraModel(m.name, m.architectures, SumsAt.BLOCK, False, BLOCK_SUMS[m.name])
    file, line = BOUNDARY_LINES[m.name]
    return EraModel(m.name, m.architectures, SumsAt.BOUNDARY, True, f"models/{file}.py:{line}")


MODELS_0523 = tuple(_era_model(m) for m in MODELS)


def in_scope(c: ServerConfig, m: EraModel) -> bool:
    """The model's architecture, with the standard dispatcher or a completing a2a backend, off AMD,
    moe_dp_size 1 (above it the MoE groups are a sub-layout of TP this model does not follow), no
    attention CP (the boundary's CP row layouts, factories.py:176-181, were not re-read).
    NOTE: on AMD the next input runs aiter's fused kernel over the whole TP group and, when it
    declines without --enable-aiter-allreduce-fusion, the norm alone (layernorm.py:240-274); how
    the deferred output's unfused completion interacts with that was not re-read: out of scope."""
    return ((c.moe_a2a_backend == MoeA2ABackend.NONE or c.moe_a2a_backend in COMPLETING_A2A)
            and c.architecture in m.architectures and not c.is_amd and c.moe_dp_size == 1
            and c.attn_cp_size == 1)


def model_supports(c: ServerConfig, m: EraModel) -> bool:
    """The model can run `c`: DP attention only where the decoder gathers its tokens."""
    return c.attn_dp_size == 1 or m.gathers_for_dp_attention


def group_counts(group: Group) -> SumCounts:
    """One all-reduce over `group`: the axes it sums."""
    if group == Group.TP:
        return SumCounts(1, 1)
    if group == Group.EP:
        return SumCounts(1, 0)
    return SumCounts(0, 1)


def experts_call_counts(c: ServerConfig) -> SumCounts:
    """The experts call itself completes the output (the FP4 combine over TP, an a2a combine, or
    dwdp's full experts on own rows): both axes once; else nothing yet."""
    if is_moe_input_scattered_across_dp_ranks(c):
        return SumCounts(1, 1)
    return SumCounts(0, 0)


def exit_counts(c: ServerConfig, s: ForwardState) -> SumCounts:
    """What the FFN exit sums: a reduce-scatter(v) over TP, the deferred sum over
    post_experts_reduction_group (fused or, declined, that group's all-reduce), or
    sum_post_experts_output now."""
    step = ffn_exit(c, s)
    if step == Exit.COMPLETE:
        return SumCounts(0, 0)
    if step == Exit.REDUCE_SCATTERV or step == Exit.DP_REDUCE_SCATTER:
        return SumCounts(1, 1)
    if step == Exit.DEFERRED_FUSED or step == Exit.DEFERRED_ALL_REDUCE:
        return group_counts(post_experts_reduction_group(c))
    return sum_post_experts_output(c)


def block_counts(c: ServerConfig) -> SumCounts:
    """hunyuan_v3's block: post_experts_all_reduce with nothing published (ctx.R False)."""
    return post_experts_all_reduce(c, ForwardContext())


def sum_counts(c: ServerConfig, s: ForwardState, m: EraModel) -> SumCounts:
    """Times each axis is summed in one layer of `m` in the 0.5.23 era."""
    first = experts_call_counts(c)
    if m.sums_at == SumsAt.BOUNDARY:
        then = exit_counts(c, s)
    else:
        then = block_counts(c)
    return SumCounts(first.ep + then.ep, first.moe_tp + then.moe_tp)


def mixes_tokens(c: ServerConfig, m: EraModel) -> bool:
    """A block sum over ranks holding different tokens (no DP gather, proto.alignment)."""
    if c.attn_dp_size == 1 or m.gathers_for_dp_attention or m.sums_at == SumsAt.BOUNDARY:
        return False
    n = block_counts(c)
    return (n.ep > 0 and group_spans_dp_ranks(c, Group.EP)
            or n.moe_tp > 0 and group_spans_dp_ranks(c, Group.MOE_TP))


def exactly_once(c: ServerConfig, s: ForwardState, m: EraModel) -> bool:
    """Every partial axis of size > 1 summed exactly once, over aligned tokens (0.5.23 era)."""
    n = sum_counts(c, s, m)
    return (not mixes_tokens(c, m) and (c.ep_size == 1 or n.ep == 1)
            and (c.moe_tp_size == 1 or n.moe_tp == 1))


# What an executor runs (actors/), and the layer's outcome (report/): the same facts as above.


def gathers_tokens(c: ServerConfig, m: EraModel) -> bool:
    """The boundary's prepare step gathers DP attention's tokens before the FFN: the sparse FFN
    computes on the attention's full rows unless it runs on the rank's own rows
    (layer_boundary/factories.py:124-129, _ffn_on_rank_rows; the gather, prepare.py:183-225).
    hunyuan_v3's decoder has no gather (hunyuan_v3.py:369)."""
    return (c.attn_dp_size > 1 and m.gathers_for_dp_attention
            and not is_moe_input_scattered_across_dp_ranks(c))


def sum_groups(c: ServerConfig, n: SumCounts) -> tuple[Group, ...]:
    """The all-reduces _post_experts_sum (utils.py:881-897) runs for the owed axes `n`: one over
    the TP group when both are owed and mergeable (:890), else EP (:894), then MoE-TP (:896)."""
    if n.ep > 0 and n.moe_tp > 0 and can_merge_post_experts_all_reduce(c):
        return (Group.TP,)
    if n.ep > 0 and n.moe_tp > 0:
        return (Group.EP, Group.MOE_TP)
    if n.ep > 0:
        return (Group.EP,)
    if n.moe_tp > 0:
        return (Group.MOE_TP,)
    return ()


def sum_now_groups(c: ServerConfig) -> tuple[Group, ...]:
    """Exit.SUM_NOW: sum_post_experts_output's all-reduces (utils.py:868-878)."""
    return sum_groups(c, sum_post_experts_output(c))


def block_groups(c: ServerConfig) -> tuple[Group, ...]:
    """hunyuan_v3's block: post_experts_all_reduce's all-reduces (utils.py:851-865), nothing
    published (hunyuan_v3.py:190, 215)."""
    return sum_groups(c, block_counts(c))


def state_in_scope(c: ServerConfig, s: ForwardState) -> bool:
    """A forward the 0.5.23 model covers: valid (proto.semantics.forward_state_valid) and not an
    input-scattered batch (the exit's CP / input-scattered reduce-scatter, exit.py:115, is outside
    proto.boundary's scope)."""
    return forward_state_valid(c, s) and not s.attn_tp_input_scattered


def layer_outcome(c: ServerConfig, s: ForwardState, m: EraModel) -> Outcome:
    """proto.semantics.layer_outcome's counterpart in the 0.5.23 era (no crash is known there):
    mixes tokens, else by the per-axis counts."""
    if mixes_tokens(c, m):
        return Outcome.MIXES_TOKENS
    n = sum_counts(c, s, m)
    if c.ep_size > 1 and n.ep == 0 or c.moe_tp_size > 1 and n.moe_tp == 0:
        return Outcome.MISSING
    if c.ep_size > 1 and n.ep > 1 or c.moe_tp_size > 1 and n.moe_tp > 1:
        return Outcome.DOUBLE
    return Outcome.ONCE


def era_model(name: str) -> EraModel:
    """The 0.5.23 entry of a catalogued model; KeyError names the known ones."""
    for m in MODELS_0523:
        if m.name == name:
            return m
    raise KeyError(f"unknown model {name!r}; models: {', '.join(m.name for m in MODELS_0523)}")
