"""The #23748 decision (era 0.5.11) and the 0.5.23 one, side by side.

Each difference of docs/eras.json's `differences_0_5_11_to_0_5_23` is a property named
`difference:<id>`: inside its region the two decisions disagree (expected refuted, so the
counterexample is the witness), at a configuration the 0.5.23 wheel accepts and the witness model
can run there (proto.models_0523.in_scope, model_supports). Where a change is a refactor, the
property instead proves the two decisions agree. `difference:helpers-agree-outside-the-differences`
proves the list is complete for the helper: outside every helper-level region the helpers agree.
R stands for what the decoder publishes as ctx.mlp_reduce_scatter (0.5.23) or passes (0.5.11).
A helper-level row is a change of spec.era_differences.CHANGES (its evidence and upstream are
read there), compared across the whole span and with nothing handed on.
"""
from __future__ import annotations

from dataclasses import dataclass

from sumonce.proto import boundary as b
from sumonce.proto import models_0523 as m23
from sumonce.proto import semantics
from sumonce.proto.config import MoeA2ABackend as A
from sumonce.proto.config import BoundaryReduction
from sumonce.proto.predicates import should_use_dp_reduce_scatterv as V11
from sumonce.proto.predicates import should_use_flashinfer_cutlass_moe_fp4_allgather as Q
from sumonce.proto.eras import Era, accepts
from sumonce.proto.sites import Version

from . import claims
from . import era_differences as ed
from .era_differences import CHANGES, NOT_FOUND, QWEN3, U, anywhere, no_flags
from .eras import explain, replicated_output_counted_once
from .properties import Expect, Kind, Property

QWEN3_23 = next(m for m in m23.MODELS_0523 if m.name == "qwen3_moe")


@dataclass(frozen=True)
class Difference:
    id: str
    since: str
    evidence: str
    """release file:line where the change is visible."""
    upstream: str
    claim: object
    region: object
    expect: Expect = Expect.REFUTED
    layer: bool = False
    """Compared on qwen3_moe's whole layer (0.5.11 counts in the witness) rather than the helper."""


# --- the two helpers ----------------------------------------------------------------------------


helpers_agree = ed.helpers_agree(Era.V0_5_11, Era.V0_5_23)


def v_agrees(c, s, F, R):
    return V11(c) == b.should_use_dp_reduce_scatterv(c)


def narrowed(region, *more):
    """`region` and each of `more` (nothing handed on, a TP group: the witness is the change's
    alone), under region's name."""
    def inside(c, s, F, R):
        ok = region(c, s, F, R)
        for r in more:
            ok = ok and r(c, s, F, R)
        return ok
    inside.__name__ = region.__name__
    return inside


def dwdp(c, s, F, R):
    return ed.dwdp(c, s, F, R) and c.moe_a2a_backend == A.NONE and no_flags(c, s, F, R)


def attention_tp(c, s, F, R):
    return c.tp_size > c.attn_dp_size and V11(c)  # NOTE: 0.5.23's V test (tp == attn_dp): attention TP or CP above 1


def published_r_only(c, s, F, R):
    """None of the later terms in play: the decoder's R is all either helper reads."""
    return (not F and c.moe_a2a_backend == A.NONE and c.dwdp_size == 1 and not V11(c) and not Q(c))


def outside_helper_differences(c, s, F, R):
    return (not F and not (c.moe_a2a_backend == A.FLASHINFER or c.moe_a2a_backend == A.PPLX
                           or c.moe_a2a_backend == A.FLASHINFER_MEGAMOE)
            and c.dwdp_size == 1 and not V11(c) and not Q(c))


# --- whole layers (qwen3_moe) -------------------------------------------------------------------


def layers_agree(c, s, F, R):
    return claims.exactly_once(QWEN3, Version.HELPER)(c, s, F, R) == m23.exactly_once(c, s, QWEN3_23)


def after_is(step):
    def region(c, s, F, R):
        return semantics.after_experts(c, s, QWEN3) == step
    return region


def hybrid_fused(c, s, F, R):
    return after_is(semantics.After.NEXT_LAYER_FUSED)(c, s, F, R) and c.ep_size > 1 and c.moe_tp_size > 1


def fused_single_group(c, s, F, R):
    return (after_is(semantics.After.NEXT_LAYER_FUSED)(c, s, F, R)
            and (c.ep_size == 1 or c.moe_tp_size == 1))


def rsv_agrees(c, s, F, R):
    return ((semantics.after_experts(c, s, QWEN3) == semantics.After.REDUCE_SCATTERV)
            == (b.ffn_exit(c, s) == b.Exit.REDUCE_SCATTERV))


def v_with_ar(c, s, F, R):
    return b.should_use_dp_reduce_scatterv(c) and c.boundary_reduction == BoundaryReduction.AR


def changed(id, claim, region, expect=Expect.REFUTED, now=""):
    """A helper-level difference: the change of spec.era_differences.CHANGES with this id (since,
    evidence, upstream), `now` adding where 0.5.23 has it."""
    ch = next(ch for ch in CHANGES if ch.id == id)
    return Difference(id, ch.since, ch.evidence + now, ch.upstream, claim, region, expect)


DIFFERENCES = (
    changed("a2a_flashinfer_complete", helpers_agree, narrowed(ed.a2a_is(A.FLASHINFER), no_flags)),
    changed("context_flags", helpers_agree, published_r_only, Expect.HOLDS),
    changed("dwdp_complete", helpers_agree, dwdp),
    changed("pplx_complete", helpers_agree, narrowed(ed.a2a_is(A.PPLX), no_flags)),
    changed("v_attention_tp1", v_agrees, attention_tp, now=f"; 0.5.23 {U}:747"),
    changed("megamoe_complete", helpers_agree, narrowed(ed.a2a_is(A.FLASHINFER_MEGAMOE), no_flags)),
    changed("v_leaves_helper", helpers_agree, narrowed(ed.v_alone, no_flags)),
    changed("q_completes_ep", helpers_agree, narrowed(ed.q_alone, no_flags), now=f"; 0.5.23 {U}:771"),
    changed("f_leaves_context", helpers_agree, narrowed(ed.fusion_alone, ed.tp_gt_1), now=f"; 0.5.23 {U}:758"),
    Difference("f_leaves_context:same-layer-outcome-single-group", "0.5.22",
               "0.5.23 sglang/srt/layers/layer_boundary/exit.py:118", NOT_FOUND, layers_agree, fused_single_group,
               Expect.HOLDS, layer=True),
    Difference("hybrid_merged_group", "0.5.21", f"0.5.23 {U}:890, {U}:847",
               "#32963 Merge EP+MoE-TP post-experts all-reduces into one _TP reduction (merged); "
               "related #32012, #32511", layers_agree, hybrid_fused, layer=True),
    Difference("fused_fallback_sums", "0.5.21", "0.5.23 sglang/srt/layers/layernorm.py:264", NOT_FOUND,
               layers_agree, after_is(semantics.After.NEXT_LAYER_DECLINED), layer=True),
    Difference("replicated_shared_expert", "0.5.21", f"0.5.23 {U}:811-835",
               "issue #31475; #31476, #35535 (open). 0.5.11 has no SGLANG_SHARED_EXPERT_TP1 (read from 0.5.12): "
               "no 0.5.11 witness; proved counted once in 0.5.23", replicated_output_counted_once, anywhere, Expect.HOLDS),
    Difference("boundary_reduction_setting", "0.5.21", "0.5.23 sglang/srt/layers/layer_boundary/factories.py:152-159",
               NOT_FOUND, rsv_agrees, v_with_ar, layer=True),
    Difference("helpers-agree-outside-the-differences", "-", "the helper rows above", "-",
               helpers_agree, outside_helper_differences, Expect.HOLDS),
)


def runs_in_0523(c, s, F, R):
    """The witness is a configuration 0.5.23 accepts (validity, proto.eras.accepts) that qwen3_moe
    runs there."""
    return accepts(Era.V0_5_23, c) and m23.in_scope(c, QWEN3_23) and m23.model_supports(c, QWEN3_23)


def layer_scope(c, s, F, R):
    """qwen3_moe at 0.5.11 too, with the F and R its decoder really hands the block."""
    return claims.flags_from_decoder(QWEN3)(c, s, F, R)


def differences() -> list[Property]:
    out = []
    for d in DIFFERENCES:
        scopes = (d.region, runs_in_0523) + ((layer_scope,) if d.layer else ())
        meaning = (f"since {d.since} ({d.evidence}): the decisions "
                   + ("agree" if d.expect == Expect.HOLDS else "differ, witness below"))
        out.append(Property(f"difference:{d.id}", meaning, d.region.__name__, Kind.DIFFERENCE, d.claim, scopes,
                            expect=d.expect, upstream=d.upstream, era="0.5.23", explain=explain(QWEN3_23),
                            model=QWEN3 if d.layer else None, version=Version.HELPER if d.layer else None))
    return out
