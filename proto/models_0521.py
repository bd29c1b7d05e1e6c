"""One MoE layer in the 0.5.21 era: the stage boundary's FFN exit decides, once per batch, what
completes the output and publishes it as ctx.F / ctx.R (get_forward().scoped(...)); the model file
still sums through the era's helper (reduce_moe_output or post_experts_all_reduce) reading them.

Facts (SGLang 0.5.21, paths under sglang/srt/; `utils.py` = layers/moe/utils.py, `exit.py`,
`factories.py`, `prepare.py`, `output.py` under layers/layer_boundary/):
- The exit (exit.py:177-243, _select_ffn_completion) publishes fuse_mlp_allreduce (F),
  mlp_reduce_scatter (R) around the FFN call (exit.py:518-522). A sparse FFN's output owes its
  sum over SumGroup.MOE_OUTPUT unless the MoE runs on the rank's own rows
  (is_moe_input_scattered_across_dp_ranks: a2a, Q or dwdp; factories.py:99-105, 161-163): then
  nothing is owed and neither flag is set.
- R: a reduce-scatter completes the sum: the DP reduce-scatterv (V and boundary_reduction rsv,
  exit.py:80-81; factories.py:96, 174) or the fixed-size one (MAX_LEN padding, rs; exit.py:82-87).
- F: the sum moves to the next layer's input (exit.py:205-221, 317-343): tp > 1, not the model's
  last layer (factories.py:168), not under the MoE-CP all-gather, not an unmergeable hybrid EP x
  MoE-TP (exit.py:301-306), not DP attention with EAGLE (:308-313), not input-scattered (:315), the
  batch has tokens and the sum is one TP all-reduce (exit.py:354-357, utils.py:857-875), not R.
  The next input runs the fused kernel over post_experts_reduction_group (its workspace's group,
  flashinfer_comm_fusion.py:670-682), or, when it declines, that group's all-reduce
  (layers/layernorm.py:250-257, deferred_post_experts_all_reduce, utils.py:878-883; an input with no
  fused consumer: prepare.py:283-290, output.py:78-81). A pipeline stage's last layer defers
  too: to_pp finishes the owed sum before transport (residual/batch.py:108-124).
- The exit's choices are 0.5.23's (proto.boundary: the same V, utils.py:709-727; the same
  post_experts_sum_is_one_all_reduce and reduction group, utils.py:845-875), except that 0.5.23
  completes a stage's last layer now (proto.boundary.may_defer_sum) and sums in the exit; here the
  sum left (Exit.SUM_NOW) is the model file's own, on the published flags.

NOTE: written in the subset spec/ lifts.
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from . import boundary as b
from .alignment import group_spans_dp_ranks
from .boundary import Exit, SumCounts
from .catalogue import MODELS
from .config import ForwardState, ServerConfig
from .decisions import skip_0_5_21
from .models_0523 import experts_call_counts, group_counts, in_scope as in_scope_0523
from .sites import Group


class SumsIn(StrEnum):
    """Where a 0.5.21 model file sums what the exit leaves it."""
    REDUCE_MOE_OUTPUT = "the MoE block's reduce_moe_output (TP all-reduce unless skip(True))"
    POST_EXPERTS_ALL_REDUCE = "the MoE block's post_experts_all_reduce (EP unless skip(False), MoE-TP unless skip(True))"
    DECODER = "the decoder's TP all-reduce when the exit publishes neither flag (the MoE runs under F=True)"


@dataclass(frozen=True)
class EraModel:
    """One catalogued model in the 0.5.21 era."""
    name: str
    architectures: tuple[str, ...]
    sums_in: SumsIn
    boundary: bool
    """The decoder declares stage boundaries (make_stages): the exit publishes F and R, and the
    boundary's prepare gathers DP attention's tokens (factories.py:154-160). False: nothing is
    published (F and R read False) and nothing gathers."""
    cite: str


R, P, D = SumsIn.REDUCE_MOE_OUTPUT, SumsIn.POST_EXPERTS_ALL_REDUCE, SumsIn.DECODER
FACTS = {
    "qwen3_moe": (P, "qwen3_moe", (346,), (869, 914)),
    "bailing_moe": (R, "bailing_moe", (460,), (701, 753)),
    "bailing_moe_linear": (R, "bailing_moe_linear", (368,), (823, 883)),
    "deepseek_v2": (P, "deepseek_v2", (1229, 1385), (2648, 2772)),
    "exaone_moe": (R, "exaone_moe", (290,), ()),
    "glm4_moe": (R, "glm4_moe", (625, 651), (869, 961)),
    "hunyuan_v3": (P, "hunyuan_v3", (190, 215), ()),
    "llada2": (R, "llada2", (386,), (641, 685)),
    "llama4": (R, "llama4", (151,), (429, 477)),
    "mimo_v2_flash": (R, "mimo_v2", (501,), (861, 902)),
    "minimax_m2": (R, "minimax_m2", (606,), (985, 1027)),
    "qwen2_moe": (R, "qwen2_moe", (889,), (1056, 1099)),
    "sarvam_moe": (R, "sarvam_moe", (373, 408), (1053, 1089)),
    "sdar_moe": (R, "sdar_moe", (151,), (360, 391)),
    "step3p5": (D, "step3p5", (617, 621), (569, 611)),
}
"""Catalogue name -> (where it sums, models/<file>.py at 0.5.21, the lines of its sum (the
reduce_moe_output / post_experts_all_reduce calls; step3p5: the MoE call's
`get_forward().scoped(fuse_mlp_allreduce=True)` and the decoder's tensor_model_parallel_all_reduce),
(make_stages, ffn_boundary.exit) lines, () without a stage boundary). exaone_moe's decoder
(:491-516) calls its block straight after the norm; sarvam_moe's decoder all-reduce (:1091-1097)
is for dense layers only. deepseek_v2 also calls the helper directly (:1062): a fused MoE finalize
+ TP all-reduce (:1055-1066, done at :1202) replaces post_experts_all_reduce when skip(True) is
false; skip(True) and skip(False) differ only under Q (utils.py:751), where it is off, so it sums
the same axes once. tests/proto/test_era_layers_0521.py re-reads every line."""


def _cite(name: str) -> str:
    sums_in, file, sums, stages = FACTS[name]
    where = f"models/{file}.py:{', '.join(str(n) for n in sums)}"
    if stages:
        return f"{where}; make_stages :{stages[0]}, exit :{stages[1]}"
    return f"{where}; no stage boundary, no DP gather"


MODELS_0521 = tuple(EraModel(m.name, m.architectures, FACTS[m.name][0], bool(FACTS[m.name][3]), _cite(m.name))
                    for m in MODELS)


def defers_sum(c: ServerConfig, s: ForwardState) -> bool:
    """F (exit.py:205, 317-343, 346-357): proto.boundary's deferral test without 0.5.23's
    completion at a pipeline hand-off (0.5.21 defers there and to_pp completes it)."""
    return (c.tp_size > 1 and not s.is_last_layer and b.sum_deferral_allowed(c, s) and s.num_tokens > 0
            and b.post_experts_sum_is_one_all_reduce(c))


def ffn_exit(c: ServerConfig, s: ForwardState) -> Exit:
    """The exit's choice (exit.py:177-243): proto.boundary.ffn_exit with 0.5.21's deferral test.
    SUM_NOW here: nothing at the exit, the model file sums on F = R = False. A deferred stage's
    last layer is completed unfused by to_pp (residual/batch.py:120), never by a fused kernel."""
    step = b.ffn_exit(c, s, defers_sum)
    if step == Exit.DEFERRED_FUSED and s.is_stage_last_layer:
        return Exit.DEFERRED_ALL_REDUCE
    return step


def published(c: ServerConfig, s: ForwardState, m: EraModel) -> tuple:
    """(ctx.F, ctx.R) the model's sum reads: the exit's flags (exit.py:518-522), nothing without a
    boundary. step3p5's MoE block itself runs under F = True (step3p5.py:617)."""
    if not m.boundary:
        return False, False
    step = ffn_exit(c, s)
    F = step == Exit.DEFERRED_FUSED or step == Exit.DEFERRED_ALL_REDUCE
    return F, step == Exit.REDUCE_SCATTERV or step == Exit.DP_REDUCE_SCATTER


def exit_counts(c: ServerConfig, s: ForwardState, m: EraModel) -> SumCounts:
    """What completes the sum after the model file: a reduce-scatter(v) (both axes), the next
    input's sum over post_experts_reduction_group, or nothing."""
    if not m.boundary:
        return SumCounts(0, 0)
    step = ffn_exit(c, s)
    if step == Exit.REDUCE_SCATTERV or step == Exit.DP_REDUCE_SCATTER:
        return SumCounts(1, 1)
    if step == Exit.DEFERRED_FUSED or step == Exit.DEFERRED_ALL_REDUCE:
        return group_counts(b.post_experts_reduction_group(c))
    return SumCounts(0, 0)


def reduce_moe_output_runs(c: ServerConfig, F: bool, R: bool) -> bool:
    """reduce_moe_output (utils.py:772-783): a TP all-reduce unless skip(True) (utils.py:767)."""
    return c.tp_size > 1 and not skip_0_5_21(c, True, R, F)


def file_counts(c: ServerConfig, s: ForwardState, m: EraModel) -> SumCounts:
    """What the model file sums on the published flags. post_experts_all_reduce (utils.py:814-842)
    merges both into one TP all-reduce when mergeable: the same axes."""
    F, R = published(c, s, m)
    if m.sums_in == SumsIn.REDUCE_MOE_OUTPUT:
        tp = reduce_moe_output_runs(c, F, R)
        return SumCounts(1 if tp else 0, 1 if tp else 0)
    if m.sums_in == SumsIn.DECODER:
        tp = c.tp_size > 1 and not F and not R
        return SumCounts(1 if tp else 0, 1 if tp else 0)
    ep = c.ep_size > 1 and not skip_0_5_21(c, False, R, F)
    moe_tp = c.moe_tp_size > 1 and not skip_0_5_21(c, True, R, F)
    return SumCounts(1 if ep else 0, 1 if moe_tp else 0)


def sum_counts(c: ServerConfig, s: ForwardState, m: EraModel) -> SumCounts:
    """Times each axis is summed in one layer of `m` in the 0.5.21 era."""
    first, then, last = experts_call_counts(c), file_counts(c, s, m), exit_counts(c, s, m)
    return SumCounts(first.ep + then.ep + last.ep, first.moe_tp + then.moe_tp + last.moe_tp)


def mixes_tokens(c: ServerConfig, s: ForwardState, m: EraModel) -> bool:
    """The model file's sum runs over ranks holding different tokens: under DP attention without a
    gather (no boundary), or after an experts call that ran on each rank's own rows (Q, a2a, dwdp:
    the boundary does not gather then, factories.py:155-156). reduce_moe_output and the decoder
    sum over the whole TP group, post_experts_all_reduce over EP and MoE-TP."""
    if c.attn_dp_size == 1:
        return False
    n = file_counts(c, s, m)
    varies = not m.boundary or b.is_moe_input_scattered_across_dp_ranks(c)
    if m.sums_in == SumsIn.POST_EXPERTS_ALL_REDUCE:
        spans = (n.ep > 0 and group_spans_dp_ranks(c, Group.EP)
                 or n.moe_tp > 0 and group_spans_dp_ranks(c, Group.MOE_TP))
    else:
        spans = n.ep + n.moe_tp > 0
    return varies and spans


def exactly_once(c: ServerConfig, s: ForwardState, m: EraModel) -> bool:
    """Every partial axis of size > 1 summed exactly once, over aligned tokens (0.5.21 era)."""
    n = sum_counts(c, s, m)
    return (not mixes_tokens(c, s, m) and (c.ep_size == 1 or n.ep == 1)
            and (c.moe_tp_size == 1 or n.moe_tp == 1))


def model_supports(c: ServerConfig, m: EraModel) -> bool:
    """DP attention only where the decoder gathers (a stage boundary)."""
    return c.attn_dp_size == 1 or m.boundary


def in_scope(c: ServerConfig, s: ForwardState, m: EraModel) -> bool:
    """proto.models_0523's scope (a2a none or completing, the architecture, off AMD, moe_dp 1, no
    attention CP), not an input-scattered batch, and SGLANG_SHARED_EXPERT_TP1 off (it changes
    the deferral test, exit.py:361-366, and the shared expert's addition: proto.shared_expert)."""
    return in_scope_0523(c, m) and not s.attn_tp_input_scattered and not c.shared_expert_tp1


def era_model(name: str) -> EraModel:
    """The 0.5.21 entry of a catalogued model; KeyError names the known ones."""
    for m in MODELS_0521:
        if m.name == name:
            return m
    raise KeyError(f"unknown model {name!r}; models: {', '.join(m.name for m in MODELS_0521)}")
