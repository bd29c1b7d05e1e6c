"""Each change of the decision between consecutive eras, proved as a difference with a witness.

A row `difference:<A>-><B>:<id>` compares era A's helper with era B's (decisions.HELPERS) inside
the change's region, at configurations B's releases accept (proto.eras.accepts): expected refuted,
so the counterexample is the witness; a refactor row is expected to hold. Each pair ends with
`helpers-agree-outside-the-changes`, which proves the list complete for the helper. Changes that
are not in the helper (a layer's F, R or V) compare whole layers of qwen3_moe (proto.era_layers).
0.5.11 -> 0.5.23 side by side is spec.differences.
"""
from __future__ import annotations

from dataclasses import dataclass

from sumonce.proto import boundary as b
from sumonce.proto import era_layers as L
from sumonce.proto.catalogue import MODELS_BY_NAME
from sumonce.proto.config import MoeA2ABackend as A
from sumonce.proto.decisions import HELPERS
from sumonce.proto.eras import Era, accepts
from sumonce.proto.predicates import should_use_dp_reduce_scatterv as V11
from sumonce.proto.predicates import should_use_flashinfer_cutlass_moe_fp4_allgather as Q
from sumonce.proto.sites import Version

from . import claims
from .properties import Expect, Kind, Property

QWEN3 = MODELS_BY_NAME["qwen3_moe"]
U = "sglang/srt/layers/moe/utils.py"
COMM = "sglang/srt/layers/communicator.py"
NOT_FOUND = "upstream change not found"
PPLX = ("#30756 Integrate pplx a2a backend (merged 2026-07-10; adds --moe-a2a-backend pplx; "
        "the helper's term not confirmed in its diff)")


@dataclass(frozen=True)
class Change:
    before: Era
    after: Era
    id: str
    evidence: str
    upstream: str
    region: object
    expect: Expect = Expect.REFUTED
    claim: object = None
    """None: the two helpers agree on both paths."""
    release: str = ""
    """For a layer row: the release whose layer is compared with the era before's."""

    @property
    def since(self) -> str:
        """The release the change is first seen in: its evidence's first word."""
        return self.evidence.split()[0]


def term(fn):
    """A change's term as a region for the completeness rows (flags and sizes free)."""
    return fn


def helpers_agree(before, after):
    def claim(c, s, F, R):
        return (HELPERS[before](c, True, R, F) == HELPERS[after](c, True, R, F)
                and HELPERS[before](c, False, R, F) == HELPERS[after](c, False, R, F))
    return claim


def no_flags(c, s, F, R):
    """Nothing handed on, and a TP group to sum over (at tp 1 no site runs in either era)."""
    return not F and not R and c.tp_size > 1


def a2a_is(backend):
    def region(c, s, F, R):
        return c.moe_a2a_backend == backend
    region.__name__ = f"a2a_{backend.value}"
    return region


def dwdp(c, s, F, R):
    return c.dwdp_size > 1


def v_with_attention_tp(c, s, F, R):
    return V11(c) and c.tp_size > c.attn_dp_size  # NOTE: attention TP or CP above 1 (tp == attn_dp is V's test)


def v_alone(c, s, F, R):
    return b.should_use_dp_reduce_scatterv(c)


def q_alone(c, s, F, R):
    return Q(c)


def fusion_alone(c, s, F, R):
    return F and not R and not b.post_experts_output_is_complete(c, is_tp_path=True)


def tp_gt_1(c, s, F, R):
    return c.tp_size > 1


def anywhere(c, s, F, R):
    return True


QWEN3_0510 = L.MODELS_0510[0]


def layers_0510_0511(c, s, F, R):
    """qwen3_moe's layer in 0.5.10.post1 against 0.5.11's (proto.semantics at the helper)."""
    return L.exactly_once("0.5.10.post1", c, s, QWEN3_0510) == claims.exactly_once(QWEN3, Version.HELPER)(c, s, F, R)


def reduce_scatter_with_ep(c, s, F, R):
    """The communicator reduce-scatters with ep > 1 (no V: it does not exist in 0.5.10.post1)."""
    return L.reduce_scatter("0.5.10.post1", c, s, QWEN3_0510) and c.ep_size > 1 and not V11(c) and not c.is_amd


def sites_agree_0515_0516(c, s, F, R):
    """Every catalogued site decides the same at 0.5.15 (keywords) and 0.5.16 (published ctx)."""
    ok = True
    for m in L.MODELS:
        if L.layer_in_scope(c, m):
            for site in m.sites + m.decoder_sites:
                ok = ok and L.site_runs("0.5.15", c, s, m, site) == L.site_runs("0.5.16", c, s, m, site)
    return ok


def layers_0517_0518(c, s, F, R):
    return L.exactly_once("0.5.17", c, s, QWEN3) == L.exactly_once("0.5.18", c, s, QWEN3)


def hybrid_fused(c, s, F, R):
    """qwen3_moe's decoder computes F (0.5.17) with moe_ep > 1 and moe_tp > 1."""
    return L.fusion("0.5.17", c, s, QWEN3) and c.ep_size > 1 and c.moe_tp_size > 1 and not c.is_amd


def in_layer(c, s, F, R):
    return L.layer_in_scope(c, QWEN3) and c.attn_cp_size == 1


def outside(*regions):
    def region(c, s, F, R):
        hit = False
        for r in regions:
            hit = hit or r(c, s, F, R)
        return not hit
    region.__name__ = "outside_the_changes"
    return region


E10, E11, E15, E16, E17, E20, E21, E23 = (Era.V0_5_10, Era.V0_5_11, Era.V0_5_15, Era.V0_5_16, Era.V0_5_17,
                                          Era.V0_5_20, Era.V0_5_21, Era.V0_5_23)
CHANGES = (
    Change(E10, E11, "helper_and_v", f"0.5.11 {U}:353, {U}:338; models/qwen3_moe.py:334",
           "#23748 (the helper), #23734 (qwen3_moe's EP guard gets R), #22642 (V)", reduce_scatter_with_ep,
           claim=layers_0510_0511, release="0.5.11"),
    Change(E11, E15, "a2a_flashinfer_complete", f"0.5.15 {U}:476", f"{NOT_FOUND}; related #14668, #22669",
           a2a_is(A.FLASHINFER)),
    Change(E11, E15, "helpers-agree-outside-the-changes", "-", "-", outside(a2a_is(A.FLASHINFER)), Expect.HOLDS),
    Change(E15, E16, "context_flags", f"0.5.16 {U}:491, {U}:462", f"{NOT_FOUND} (a refactor: F and R move into ctx)",
           anywhere, Expect.HOLDS),
    Change(E15, E16, "context_flags:every-site-decides-the-same",
           "0.5.16 models/*.py get_forward().scoped(...) (proto.era_layers.PUBLISH_LINES)",
           f"{NOT_FOUND} (a refactor: each decoder publishes what it passed)", anywhere, Expect.HOLDS,
           claim=sites_agree_0515_0516, release="0.5.16"),
    Change(E16, E17, "dwdp_complete", f"0.5.17 {U}:509", "dwdp came with #29778 (merged)", dwdp),
    Change(E16, E17, "pplx_complete", f"0.5.17 {U}:517", PPLX, a2a_is(A.PPLX)),
    Change(E16, E17, "v_attention_tp1", f"0.5.17 {U}:465", "#32663 Fix MoE reduce-scatterv eligibility check (merged)",
           v_with_attention_tp),
    Change(E16, E17, "helpers-agree-outside-the-changes", "-", "-",
           outside(dwdp, a2a_is(A.PPLX), v_with_attention_tp), Expect.HOLDS),
    Change(E17, E17, "hybrid_f_off", f"0.5.18 {COMM}:828",
           "#32963 (its description is the 0.5.18 gate; merged); related #32012, #32511", hybrid_fused,
           claim=layers_0517_0518, release="0.5.18"),
    Change(E17, E20, "megamoe_complete", f"0.5.20 {U}:754", "#31470 [NVIDIA] Support flashinfer Mega Moe (merged)",
           a2a_is(A.FLASHINFER_MEGAMOE)),
    Change(E17, E20, "helpers-agree-outside-the-changes", "-", "-", outside(a2a_is(A.FLASHINFER_MEGAMOE)), Expect.HOLDS),
    Change(E20, E21, "v_leaves_helper", f"0.5.21 {U}:767", NOT_FOUND, v_alone),
    Change(E20, E21, "helpers-agree-outside-the-changes", "-", "-", outside(v_alone), Expect.HOLDS),
    Change(E21, E23, "q_completes_ep", f"0.5.22 {U}:794", NOT_FOUND, q_alone),
    Change(E21, E23, "f_leaves_context", f"0.5.22 {U}:781", NOT_FOUND, fusion_alone),
    Change(E21, E23, "helpers-agree-outside-the-changes", "-", "-", outside(q_alone, fusion_alone), Expect.HOLDS),
)


def accepted_by(era):
    def scope(c, s, F, R):
        return accepts(era, c)
    return scope


def name(ch: Change) -> str:
    after = ch.release or ch.after.value
    return f"difference:{ch.before.value}->{after}:{ch.id}"


def prop(ch: Change) -> Property:
    from .era_tables import explain
    layer = ch.claim is not None
    flags = ()
    if ch.expect == Expect.REFUTED and not layer:
        flags = (tp_gt_1,) if ch.region is fusion_alone else (no_flags,)
    qwen3 = (in_layer, claims.model_runs(QWEN3)) if layer and ch.expect == Expect.REFUTED else ()
    scopes = (ch.region, accepted_by(ch.after)) + flags + qwen3
    verb = "agree" if ch.expect == Expect.HOLDS else "differ, witness below"
    what = "qwen3_moe's layers" if layer else "the helpers"
    meaning = f"{ch.before.value} -> {ch.release or ch.after.value} ({ch.evidence}): {what} {verb}"
    story = both(ch) if layer and ch.expect == Expect.REFUTED else explain(ch.after.value)
    return Property(name(ch), meaning, ch.region.__name__, Kind.DIFFERENCE,
                    ch.claim or helpers_agree(ch.before, ch.after), scopes, expect=ch.expect, upstream=ch.upstream,
                    era=ch.after.value, explain=story)


def both(ch: Change):
    """A layer row's witness, as each side's layer runs it."""
    from .era_tables import explain
    before = "0.5.10.post1" if ch.before == E10 else ch.before.value
    model = QWEN3_0510 if ch.before == E10 else QWEN3
    sides = (explain(before, model), explain(ch.release, QWEN3))

    def story(c, s, F, R):
        return {"era_story": {"before": sides[0](c, s, F, R)["era_story"], "after": sides[1](c, s, F, R)["era_story"]}}
    return story


def differences_into(era: Era) -> list[Property]:
    """The rows whose later side is `era` (a within-era change belongs to its era)."""
    return [prop(ch) for ch in CHANGES if ch.after == era]
