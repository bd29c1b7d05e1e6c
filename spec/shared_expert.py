"""The replicated shared expert (SGLANG_SHARED_EXPERT_TP1), counted exactly once: one property per
era and model file reading the switch (proto.shared_expert.readers), plus deepseek_v4's block
(reduce_results=True) from 0.5.22.

Each claim is proto.shared_expert.counted_once lifted on (c, s, F, R); the scope is the era's
releases accepting c (proto.eras.accepts) with the switch on, in proto.shared_expert.in_scope.
0.5.12 - 0.5.20 add the output on every rank after a skippable all-reduce: refuted, upstream
issue #31475 (fixed by should_add_replicated_moe_output in 0.5.21). One more expected refutation
is a finding of this module: from 0.5.22 laguna adds it on rank 0 only while the output owes a TP
sum (adds_replicated_output_to_partial reads complete(True), which knows no deepep-like combine),
but under such an a2a backend the stage boundary declares the output complete and sums nothing
(0.5.23 layers/layer_boundary/factories.py:128, 194): the other ranks' tokens miss it.
"""
from __future__ import annotations

from sumonce.proto import shared_expert as se
from sumonce.proto.config import MoeA2ABackend
from sumonce.proto.eras import Era, accepts

from .properties import Expect, Kind, Property

ISSUE_31475 = "https://github.com/sgl-project/sglang/issues/31475"
FIXED_IN = (Era.V0_5_21, Era.V0_5_23)


def once(era: Era, how: se.Adds):
    def claim(c, s, F, R):
        return se.counted_once(era, how, c, s, F, R)
    return claim


def scope(era: Era, model: str):
    def in_scope(c, s, F, R):
        return accepts(era, c) and se.in_scope(era, model, c)
    return in_scope


def other_a2a(era: Era):
    """laguna under an a2a backend the helper does not name (deepep, mooncake, ...)."""
    def in_scope(c, s, F, R):
        return (accepts(era, c) and c.shared_expert_tp1 and c.moe_dp_size == 1
                and c.architecture in se.ARCHITECTURES["laguna"]
                and c.moe_a2a_backend != MoeA2ABackend.NONE
                and c.moe_a2a_backend not in se.completing_a2a(era))
    return in_scope


def explain(era: Era, how: se.Adds):
    def story(c, s, F, R):
        counts = {"rank 0": se.replicated_count(era, how, c, s, F, R, 0)}
        if c.tp_size > 1:
            counts["every other rank"] = se.replicated_count(era, how, c, s, F, R, 1)
        return {"env": "SGLANG_SHARED_EXPERT_TP1=1", "adds": how.value, "replicated_counted": counts}
    return story


def _prop(era: Era, model: str, how: se.Adds, scopes, expect: Expect, meaning: str, suffix: str = ""):
    releases = ", ".join(r.release for r in se.READERS if r.era == era and r.model == model)
    what = (f"SGLANG_SHARED_EXPERT_TP1=1, releases {releases or '0.5.22, 0.5.23'}" if suffix != ":fp4-allgather"
            else "the FP4 all-gather, the switch off, every release of the era")
    return Property(f"shared-once:{model}{suffix}@{era.value}", meaning, what, Kind.ONCE, once(era, how), scopes,
                    expect=expect, era=era.value, explain=explain(era, how),
                    upstream=ISSUE_31475 if expect == Expect.REFUTED and not suffix else "")


def readers_properties(era: Era) -> list[Property]:
    out = []
    for model in se.readers(era):
        fixed = era in FIXED_IN
        meaning = ("The replicated shared expert is counted exactly once in every rank's output."
                   if fixed else "Added on every rank after a skipped all-reduce, the later sum counts "
                   "the replicated shared expert once per rank (#31475): refuted.")
        out.append(_prop(era, model, se.rule(era), (scope(era, model),),
                         Expect.HOLDS if fixed else Expect.REFUTED, meaning))
    return out


def under_q(era: Era):
    """deepseek_v2 with the FP4 all-gather and the switch off: its shared expert is replicated."""
    def in_scope(c, s, F, R):
        return accepts(era, c) and se.in_scope(era, "deepseek_v2", c) and not c.shared_expert_tp1
    return in_scope


def era_properties(era: Era) -> list[Property]:
    out = readers_properties(era)
    out.append(_prop(era, "deepseek_v2", se.rule(era), (under_q(era),), Expect.HOLDS,
                     "Under the FP4 all-gather (Q) deepseek_v2's shared expert is replicated even without "
                     "the switch; the output is complete, every rank adds it once.", suffix=":fp4-allgather"))
    if era == Era.V0_5_23:
        out.append(_prop(era, "deepseek_v4", se.rule(era, reduce_results=True), (scope(era, "deepseek_v2"),),
                         Expect.HOLDS, "deepseek_v4 builds deepseek_v2's block with reduce_results=True: "
                         "should_add_replicated_moe_output after the block's sum counts it once."))
        out.append(_prop(era, "laguna", se.rule(era), (other_a2a(era),), Expect.REFUTED,
                         "Under an a2a backend the helper does not name, laguna adds it on rank 0 only but "
                         "the boundary sums nothing: the other ranks never count it (refuted).",
                         suffix=":other-a2a"))
    return out


def shared_expert_properties(era: str = "all") -> list[Property]:
    """The table for one era (a proto.eras.Era value) or all; the hook spec.properties calls."""
    return [p for e in Era if era in ("all", e.value) for p in era_properties(e)]
