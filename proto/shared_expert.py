"""The replicated shared expert (SGLANG_SHARED_EXPERT_TP1): how many times each release counts it.

With the switch on, a MoE block builds its shared expert with tp 1: every TP rank holds the whole
shared output r. Whatever sums the MoE output over TP must count r once: added on one rank when a
later sum is owed, on every rank when the output is already complete. `replicated_count` is that
count in one rank's final output, per era and per the block's rule (`Adds`):

  EVERY_RANK       0.5.12 - 0.5.20: every rank adds r after the block's TP all-reduce, which the
                   helper may skip because a later step sums (F, R, V): that sum then counts r once
                   per rank of its group.
  HELPER           0.5.21 (and 0.5.22+ blocks built with reduce_results=True): the block sums unless
                   the helper skips; should_add_replicated_moe_output adds r on TP rank 0 only when
                   a later step still sums.
  TO_PARTIAL       0.5.22+ blocks whose stage boundary sums (reduce_results=False):
                   adds_replicated_output_to_partial adds r on rank 0 only while a TP sum is owed;
                   the FFN exit then sums over TP, or declares the output complete.

Facts per release are in READERS (proto.shared_expert_facts: file:line of the switch's read, of
the block's sum and of the add, re-read from the wheels by tests/proto/test_shared_expert.py);
paths under sglang/srt/. Which files read the
switch: DeepseekV2MoE in models/deepseek_v2.py from 0.5.12, LagunaMoE in models/laguna.py from
0.5.15; deepseek_v4 (0.5.12+), hunyuan_v4 and hunyuan_v4_nextn (0.5.20+) build DeepseekV2MoE (HOSTS).

Scope (in_scope): moe_dp_size 1 (every later sum then spans the TP group, 0.5.23 utils.py:900), and
moe_a2a_backend none, or, for laguna (one forward for every backend), a combine the era's helper
names. deepseek_v2's a2a backends take forward_deepep (0.5.23 deepseek_v2.py:997), not modelled.
Before 0.5.21 the decoder's F and R are proto.communicator's (0.5.11's; 0.5.18 turning F off for
hybrid EP x MoE-TP layouts, communicator.py:828, is not modelled: it changes which group, not
whether r is over-counted).

NOTE: written in the subset spec/ lifts (see proto.config).
"""
from __future__ import annotations

from enum import StrEnum

from . import boundary, decisions
from .communicator import scatters_hidden_states, should_allreduce_fusion, use_reduce_scatter
from .config import ForwardState, MoeA2ABackend, ServerConfig
from .eras import Era
from .predicates import should_use_dp_reduce_scatterv as V_0511
from .predicates import should_use_flashinfer_cutlass_moe_fp4_allgather
from .semantics import After, next_layer_group, next_layer_step
from .shared_expert_facts import ARCHITECTURES, HOSTS, READERS, Adds, Reader  # noqa: F401 (the facts)
from .sites import Group


def readers(era: Era) -> tuple[str, ...]:
    """The model files reading the switch in some release of `era`."""
    out = ()
    for r in READERS:
        if r.era == era and r.model not in out:
            out = out + (r.model,)
    return out


def rule(era: Era, reduce_results: bool = False) -> Adds:
    """The era's rule; from 0.5.22 deepseek_v2's block picks by reduce_results (0.5.23
    deepseek_v2.py:1463-1467), laguna's always adds to the partial (0.5.23 laguna.py:226).
    0.5.10.post1 adds r with the routed output, before the guard (deepseek_v2.py:694-695); so does
    0.5.11 (deepseek_v2.py:746-747), where r is replicated only under Q, which skips the block's
    sum: there the two rules count alike, and the era keeps 0.5.12's."""
    if era == Era.V0_5_10:
        return Adds.BEFORE_GUARD
    if era == Era.V0_5_21:
        return Adds.HELPER
    if era == Era.V0_5_23:
        return Adds.HELPER if reduce_results else Adds.TO_PARTIAL
    return Adds.EVERY_RANK


def completing_a2a(era: Era) -> tuple:
    """The a2a combines the era's helper names as summing (proto.decisions)."""
    if era == Era.V0_5_10 or era == Era.V0_5_11:
        return ()
    if era == Era.V0_5_15 or era == Era.V0_5_16:
        return (MoeA2ABackend.FLASHINFER,)
    if era == Era.V0_5_17:
        return (MoeA2ABackend.FLASHINFER, MoeA2ABackend.PPLX)
    return boundary.COMPLETING_A2A


def replicated(era: Era, model: str, c: ServerConfig) -> bool:
    """The block builds its shared expert with tp 1: the switch (from 0.5.12), or for deepseek_v2
    the FP4 all-gather Q on its a2a-none path, in every release (0.5.10.post1 deepseek_v2.py:465,
    0.5.12 deepseek_v2.py:605, 0.5.23 deepseek_v2.py:885)."""
    return ((c.shared_expert_tp1 and era != Era.V0_5_10)
            or (model == "deepseek_v2" and should_use_flashinfer_cutlass_moe_fp4_allgather(c)))


def in_scope(era: Era, model: str, c: ServerConfig) -> bool:
    """A replicated shared expert, the model's architecture, moe_dp_size 1, a2a none (or, for
    laguna, a combine the helper names)."""
    a2a_ok = (c.moe_a2a_backend == MoeA2ABackend.NONE
              or (model == "laguna" and c.moe_a2a_backend in completing_a2a(era)))
    return (replicated(era, model, c) and c.architecture in ARCHITECTURES[model] and c.moe_dp_size == 1
            and a2a_ok)


class LaterSum(StrEnum):
    """What sums the block's output after the block (and after r was added)."""
    NONE = "nothing: the output is complete, or the block summed it"
    FUSED_EP = "next layer's fused all-reduce + RMSNorm over EP"
    FUSED_MOE_TP = "next layer's (fused or unfused) all-reduce over MoE-TP"
    FUSED_TP = "next layer's aiter all-reduce over TP"
    REDUCE_SCATTERV = "DP-attention reduce-scatterv over TP"
    REDUCE_SCATTER = "communicator reduce-scatter over TP"
    TP_SUM = "a later sum over the whole TP group (0.5.21+: fused or deferred, reduce-scatter(v), boundary)"


def later_size(c: ServerConfig, later: LaterSum) -> int:
    if later == LaterSum.NONE:
        return 0
    if later == LaterSum.FUSED_EP:
        return c.ep_size
    if later == LaterSum.FUSED_MOE_TP:
        return c.moe_tp_size
    return c.tp_size


def v_of(era: Era, c: ServerConfig) -> bool:
    """V as the era's helper reads it: none in 0.5.10.post1; attention TP 1 required from 0.5.17
    (utils.py:465)."""
    if era == Era.V0_5_10:
        return False
    if era == Era.V0_5_11 or era == Era.V0_5_15 or era == Era.V0_5_16:
        return V_0511(c)
    return boundary.should_use_dp_reduce_scatterv(c)


def decoder_later_sum(era: Era, c: ServerConfig, s: ForwardState) -> LaterSum:
    """Before 0.5.21: the decoder's step after the block, as proto.semantics.after_experts for a
    decoder with a communicator (deepseek_v2, laguna): F hands the output to the next layer, whose
    fused kernel sums over EP when moe_ep > 1, else MoE-TP (0.5.12 flashinfer_comm_fusion.py:528,
    0.5.20 :702); else the reduce-scatterv (V) or the reduce-scatter (R)."""
    if should_allreduce_fusion(c, s):
        after = next_layer_step(c, s)
        if after == After.NEXT_LAYER_DECLINED or after == After.STAGE_BOUNDARY:
            return LaterSum.NONE
        g = next_layer_group(c, after)
        if g == Group.EP:
            return LaterSum.FUSED_EP
        return LaterSum.FUSED_TP if g == Group.TP else LaterSum.FUSED_MOE_TP
    if scatters_hidden_states(c) and v_of(era, c):
        return LaterSum.REDUCE_SCATTERV
    if use_reduce_scatter(c, s, True):
        return LaterSum.REDUCE_SCATTER
    return LaterSum.NONE


def complete_of(era: Era, c: ServerConfig) -> bool:
    """post_experts_output_is_complete(is_tp_path=True): 0.5.21's (utils.py:741), else 0.5.23's."""
    if era == Era.V0_5_21:
        return decisions.complete_0_5_21(c, True)
    return boundary.post_experts_output_is_complete(c, is_tp_path=True)


def block_sums(era: Era, how: Adds, c: ServerConfig, s: ForwardState, F: bool, R: bool) -> bool:
    """The block's own TP all-reduce runs (r is added after it). EVERY_RANK reads the decoder's
    F and R; HELPER the context's; TO_PARTIAL never sums in the block (reduce_results=False)."""
    if how == Adds.TO_PARTIAL or c.tp_size == 1:
        return False
    decoder = how == Adds.EVERY_RANK or how == Adds.BEFORE_GUARD
    F2 = should_allreduce_fusion(c, s) if decoder else F
    R2 = use_reduce_scatter(c, s, True) if decoder else R
    if how == Adds.BEFORE_GUARD:
        # 0.5.10.post1 deepseek_v2.py:696-700: tp > 1, not F, not R, not Q.
        return not F2 and not R2 and not should_use_flashinfer_cutlass_moe_fp4_allgather(c)
    return not decisions.HELPERS[era](c, True, R2, F2)


def should_add_replicated_moe_output_0_5_21(c: ServerConfig, F: bool, R: bool, tp_rank: int) -> bool:
    """0.5.21 utils.py:786-797: summed later = skip(True) and not complete(True); rank 0 only then."""
    summed_later = decisions.skip_0_5_21(c, True, R, F) and not decisions.complete_0_5_21(c, True)
    return not (c.tp_size > 1 and summed_later and tp_rank != 0)


def adds(era: Era, how: Adds, c: ServerConfig, F: bool, R: bool, tp_rank: int) -> bool:
    """This rank adds r: always before 0.5.21 (0.5.20 deepseek_v2.py:1178, laguna.py:233);
    should_add_replicated_moe_output (0.5.21 utils.py:786; 0.5.23 utils.py:811); or
    adds_replicated_output_to_partial (0.5.23 utils.py:825)."""
    if how == Adds.EVERY_RANK or how == Adds.BEFORE_GUARD:
        return True
    if how == Adds.TO_PARTIAL:
        return boundary.adds_replicated_output_to_partial(c, tp_rank)
    if era == Era.V0_5_21:
        return should_add_replicated_moe_output_0_5_21(c, F, R, tp_rank)
    return boundary.should_add_replicated_moe_output(c, boundary.ForwardContext(R), tp_rank)


def later_sum(era: Era, how: Adds, c: ServerConfig, s: ForwardState, F: bool, R: bool) -> LaterSum:
    """EVERY_RANK: the decoder's step, when the block skipped. HELPER: a skip for the context's
    F or R leaves the sum to a later step over TP (the boundary publishes them only then, 0.5.21
    exit.py:183; the fused group is TP in scope, utils.py:845). TO_PARTIAL: the FFN exit sums over
    TP unless it declares the output complete (proto.boundary.ffn_exit)."""
    if c.tp_size == 1:
        return LaterSum.NONE
    if how == Adds.EVERY_RANK or how == Adds.BEFORE_GUARD:
        if block_sums(era, how, c, s, F, R):
            return LaterSum.NONE
        return decoder_later_sum(era, c, s)
    if how == Adds.HELPER:
        skip = decisions.HELPERS[era](c, True, R, F)
        return LaterSum.TP_SUM if skip and not complete_of(era, c) else LaterSum.NONE
    if boundary.ffn_exit(c, s) == boundary.Exit.COMPLETE:
        return LaterSum.NONE
    return LaterSum.TP_SUM


def replicated_count(era: Era, how: Adds, c: ServerConfig, s: ForwardState, F: bool, R: bool,
                     tp_rank: int) -> int:
    """Times r is counted in TP rank `tp_rank`'s final output (every rank other than 0 behaves as
    rank 1). With no later sum, the rank's own add; a later sum over TP counts every rank's add; a
    sum over EP or MoE-TP (before 0.5.21, where every rank adds) counts its group's size."""
    mine = 1 if adds(era, how, c, F, R, tp_rank) else 0
    if how == Adds.BEFORE_GUARD and block_sums(era, how, c, s, F, R):
        return c.tp_size * mine  # added before the block's own all-reduce
    later = later_sum(era, how, c, s, F, R)
    if later == LaterSum.NONE:
        return mine
    if later_size(c, later) == c.tp_size:
        first = 1 if adds(era, how, c, F, R, 0) else 0
        other = 1 if adds(era, how, c, F, R, 1) else 0
        return first + (c.tp_size - 1) * other
    return later_size(c, later) * mine


def counted_once(era: Era, how: Adds, c: ServerConfig, s: ForwardState, F: bool, R: bool) -> bool:
    """r counted exactly once on TP rank 0 and on every other rank."""
    return (replicated_count(era, how, c, s, F, R, 0) == 1
            and (c.tp_size == 1 or replicated_count(era, how, c, s, F, R, 1) == 1))
