"""The 0.5.23 era's property table: the same families as 0.5.11's (lemmas, no-drift, exactly-once
per model, findings), each named `...@0.5.23`, plus every 0.5.11 finding re-asked in 0.5.23 and
the differences between the two helpers (spec.differences).

Claims are plain Python over proto's 0.5.23 functions (proto.boundary, proto.models_0523), lifted
like every other claim; (c, s, F, R) as in spec.claims, R standing for ctx.mlp_reduce_scatter.
"""
from __future__ import annotations

from sumonce.proto import boundary as b
from sumonce.proto import models_0523 as m23
from sumonce.proto import semantics
from sumonce.proto.catalogue import MODELS
from sumonce.proto.eras import Era, accepts
from sumonce.proto.predicates import should_use_dp_reduce_scatterv as V11
from sumonce.proto.sites import Version

from . import claims
from .findings import FINDINGS
from .properties import Expect, Kind, Property

ERA = Era.V0_5_23.value
PAIRS = tuple(zip(MODELS, m23.MODELS_0523))


def explain(model=None):
    """What the 0.5.23 functions say at a counterexample (beside describe's 0.5.11 view)."""
    def story(c, s, F, R):
        out = {"V_0523": b.should_use_dp_reduce_scatterv(c),
               "complete": {"tp": b.post_experts_output_is_complete(c, is_tp_path=True),
                            "ep": b.post_experts_output_is_complete(c, is_tp_path=False)},
               "ffn_exit": b.ffn_exit(c, s).value,
               "reduction_group": b.post_experts_reduction_group(c).value}
        if model is not None:
            n = m23.sum_counts(c, s, model)
            out.update(model_0523=model.name, sums_at=model.sums_at.value, counts_0523={"ep": n.ep, "moe_tp": n.moe_tp},
                       model_runs_0523=m23.model_supports(c, model))
        return out
    return story


# --- lemmas and no-drift --------------------------------------------------------------------


def complete_ignores_path(c, s, F, R):
    return b.post_experts_output_is_complete(c, is_tp_path=True) == b.post_experts_output_is_complete(c, is_tp_path=False)


def v_needs_attention_tp_1(c, s, F, R):
    return not b.should_use_dp_reduce_scatterv(c) or (c.attn_tp_size == 1 and V11(c))


def helper_skips_on_r(c, s, F, R):
    ctx = b.ForwardContext(R)
    return not R or (b.should_skip_post_experts_all_reduce(c, ctx, is_tp_path=True)
                     and b.should_skip_post_experts_all_reduce(c, ctx, is_tp_path=False))


def reduction_group_covers_owed_axes(c, s, F, R):
    """Where the exit may defer the sum to the next input, that input's one all-reduce (fused or
    not) over post_experts_reduction_group sums every partial axis once."""
    n = m23.group_counts(b.post_experts_reduction_group(c))
    return not b.defers_sum(c, s) or ((c.ep_size == 1 or n.ep == 1) and (c.moe_tp_size == 1 or n.moe_tp == 1))


def moe_dp_1(c, s, F, R):
    """proto's sizes (moe_tp = tp // ep) are SGLang's only at moe_dp_size 1 (proto.config)."""
    return c.moe_dp_size == 1


def replicated_output_counted_once(c, s, F, R):
    """Rank 0 always adds it; another rank adds it exactly when no TP sum is owed, on both the
    boundary blocks' and the reduce_moe_output blocks' rule."""
    owes = c.tp_size > 1 and not b.post_experts_output_is_complete(c, is_tp_path=True)
    ctx = b.ForwardContext(R)
    summed_later = c.tp_size > 1 and b.should_skip_post_experts_all_reduce(c, ctx, is_tp_path=True) and owes
    return (b.adds_replicated_output_to_partial(c, 0) and b.adds_replicated_output_to_partial(c, 1) == (not owes)
            and b.should_add_replicated_moe_output(c, ctx, 0)
            and b.should_add_replicated_moe_output(c, ctx, 1) == (not summed_later))


def paths_agree(c, s, F, R):
    ctx = b.ForwardContext(R)
    return (b.should_skip_post_experts_all_reduce(c, ctx, is_tp_path=True)
            == b.should_skip_post_experts_all_reduce(c, ctx, is_tp_path=False))


def boundary_sum_ignores_context(c, s, F, R):
    """reduce_moe_output reads ctx; the boundary's sum never does. With nothing published they
    agree: the TP all-reduce runs exactly where the boundary's sum owes some axis."""
    owed = b.sum_post_experts_output(c)
    return b.reduce_moe_output_runs(c, b.ForwardContext()) == (owed.ep + owed.moe_tp > 0)


def _p(name, meaning, kind, claim, scope="all valid configurations, all ctx.R", **kw):
    return Property(f"{name}@{ERA}", meaning, scope, kind, claim, era=ERA, explain=explain(), **kw)


def lemmas() -> list[Property]:
    return [
        _p("complete-ignores-the-path", "post_experts_output_is_complete is the same on the EP and TP paths (Q completes both).",
           Kind.LEMMA, complete_ignores_path),
        _p("v-needs-attention-tp-1", "0.5.23's V needs attention TP 1 and implies 0.5.11's V.", Kind.LEMMA, v_needs_attention_tp_1),
        _p("helper-skips-on-r", "Given ctx.mlp_reduce_scatter the helper skips on both paths.", Kind.LEMMA, helper_skips_on_r),
        _p("deferred-sum-group-covers-every-owed-axis",
           "Where the exit defers the sum, post_experts_reduction_group sums every partial axis of size > 1 once.",
           Kind.LEMMA, reduction_group_covers_owed_axes, "valid configurations with moe_dp_size 1, all forward states",
           scopes=(moe_dp_1,)),
        _p("replicated-output-counted-once",
           "A replicated (TP1) output is added on rank 0 only while a TP sum is still owed, on every rank otherwise.",
           Kind.LEMMA, replicated_output_counted_once),
        _p("ep-and-tp-paths-agree", "The helper's EP and TP paths skip in exactly the same configurations.",
           Kind.DRIFT, paths_agree),
        _p("boundary-sum-matches-reduce-moe-output",
           "With nothing published, reduce_moe_output all-reduces exactly where the boundary's sum is owed.",
           Kind.DRIFT, boundary_sum_ignores_context),
    ]


# --- exactly once and findings ----------------------------------------------------------------


def lacks_dp_gather(c, s, m):
    return not m23.model_supports(c, m)


KNOWN_0523 = ((lacks_dp_gather, "model-lacks-dp-attention-gather",
               "DP attention for hunyuan_v3, whose 0.5.23 decoder (models/hunyuan_v3.py:369) has no DP "
               "gather: its block's post_experts_all_reduce sums ranks holding different tokens"),)


def once(model):
    def claim(c, s, F, R):
        return m23.exactly_once(c, s, model)
    return claim


def in_any(regions, c, s, model) -> bool:
    """Is (c, s) inside one of a model's finding regions? (Every era's table leaves them out.)"""
    inside = False
    for region in regions:
        inside = inside or region(c, s, model)
    return inside


def in_scope_outside(model, regions):
    def scope(c, s, F, R):
        return accepts(Era.V0_5_23, c) and m23.in_scope(c, model) and not in_any(regions, c, s, model)
    return scope


def in_scope_inside(model, region):
    def scope(c, s, F, R):
        return m23.in_scope(c, model) and region(c, s, model)
    return scope


def exactly_once(known: bool) -> list[Property]:
    regions = tuple(r for r, _, _ in KNOWN_0523) if known else ()
    return [Property(f"exactly-once:{m.name}@{ERA}",
                     f"Every partial axis of size > 1 is summed exactly once ({m.sums_at.value}; {m.cite}), "
                     "outside the known 0.5.23 findings.",
                     "configurations 0.5.23 accepts, a2a none/flashinfer/pplx/flashinfer_megamoe, any dwdp, "
                     "off AMD, no attention CP, moe_dp_size 1",
                     Kind.ONCE, once(m), (in_scope_outside(m, regions),), era=ERA, explain=explain(m))
            for m in m23.MODELS_0523]


def findings() -> list[Property]:
    out = []
    for region, name, meaning in KNOWN_0523:
        for m in m23.MODELS_0523:
            if not m.gathers_for_dp_attention:
                out.append(Property(f"finding:{name}:{m.name}@{ERA}", meaning, "inside the finding's region",
                                    Kind.FINDING, once(m), (in_scope_inside(m, region),), expect=Expect.REFUTED,
                                    era=ERA, explain=explain(m), status="open in 0.5.23"))
    return out


# Every 0.5.11 finding, asked in the 0.5.23 era: where 0.5.11 fails for the finding's reason, does
# 0.5.23 sum once? HOLDS = the 0.5.23 era no longer has it; REFUTED = it still does.
STILL_IN_0523 = {"model-lacks-dp-attention-gather"}
AMD_ONLY = {"aiter-unfused-branch-sums-moe-tp-only", "aiter-fusion-under-dp-attention"}
"""Findings whose region is AMD-only: outside the 0.5.23 era's scope (proto.models_0523.in_scope)."""
CP_ONLY = {"moe-cp-allgather-under-v"}
"""Findings whose region needs attention CP: outside the 0.5.23 era's scope too."""


def in_region(region, runs_0523):
    """Some catalogued model is in scope in both eras and inside the finding's region (and, with
    runs_0523, can run the configuration in 0.5.23: a model that cannot is the lacks-DP-gather
    finding's, not this one's)."""
    def scope(c, s, F, R):
        hit = False
        for m11, m in PAIRS:
            hit = hit or (semantics.in_scope(c, m11) and m23.in_scope(c, m) and region(c, s, m11, Version.HELPER)
                          and (not runs_0523 or m23.model_supports(c, m)))
        return hit
    return scope


def fails_0511(region):
    """The premise that keeps the proof from being vacuous: some model fails there at 0.5.11."""
    def premise(c, s, F, R):
        hit = False
        for m11, m in PAIRS:
            hit = hit or (semantics.in_scope(c, m11) and region(c, s, m11, Version.HELPER)
                          and not claims.exactly_once(m11, Version.HELPER)(c, s, F, R))
        return hit
    return premise


def once_0523_in_region(region):
    """0.5.23 sums once wherever the finding's region holds for the model (stronger than 'where
    0.5.11 failed')."""
    def claim(c, s, F, R):
        ok = True
        for m11, m in PAIRS:
            if semantics.in_scope(c, m11) and region(c, s, m11, Version.HELPER):
                ok = ok and m23.exactly_once(c, s, m)
        return ok
    return claim


FIXED_BY_23748 = {"tp-guard-without-q"}
"""Findings the 0.5.11 era never had (the #23748 helper fixed them): nothing to carry."""


def carried_findings() -> list[Property]:
    out = []
    for f in FINDINGS:
        if f.name in AMD_ONLY or f.name in CP_ONLY or f.name in FIXED_BY_23748:
            continue
        still = f.name in STILL_IN_0523
        out.append(Property(
            f"finding-in-0.5.23:{f.name}",
            ("0.5.23 still has it: " if still else "0.5.23 no longer has it: ") + f.meaning,
            "the finding's region, for a model in scope in both eras (off AMD)", Kind.FINDING,
            once_0523_in_region(f.region), (in_region(f.region, not still),),
            expect=Expect.REFUTED if still else Expect.HOLDS, era=ERA, explain=explain(),
            premise=fails_0511(f.region),
            status=("still open in the 0.5.23 era" if still else "gone in the 0.5.23 era")))
    return out


def finding_extras(p: Property, status, cx) -> dict:
    """status and reachability for a 0.5.23 finding's result, as 0.5.11's findings carry them:
    a failure is reachable when some model in scope fails at the witness and can run it there.
    The other eras' findings: spec.era_findings.finding_extras."""
    if p.era != ERA:
        from .era_findings import finding_extras as other
        return other(p, status, cx)
    if cx is None:
        return {"status": p.status, "reachable": "no failure in the 0.5.23 era"}
    from sumonce.proto.serial import from_dict
    from sumonce.proto.config import ForwardState, ServerConfig
    c, s = from_dict(ServerConfig, cx["config"]), from_dict(ForwardState, cx["state"])
    failing = [m for m in m23.MODELS_0523 if m23.in_scope(c, m) and not m23.exactly_once(c, s, m)]
    runs = [m.name for m in failing if m23.model_supports(c, m)]
    reach = (f"reachable ({runs[0]}@{ERA})" if runs else
             "not reachable where the model can run it (model lacks DP attention support: "
             + ", ".join(m.name for m in failing) + ")")
    return {"status": p.status, "reachable": reach}


def annotate_findings(results) -> None:
    """Each 0.5.11 finding's result says whether the 0.5.23 era still has it (from its
    finding-in-0.5.23 row when that ran; else why there is none)."""
    carried = {r.prop.name.split(":", 1)[1]: r for r in results if r.prop.name.startswith("finding-in-0.5.23:")}
    for r in results:
        if r.prop.kind != Kind.FINDING or r.prop.era != "0.5.11":
            continue
        name = r.prop.name.split(":", 1)[1]
        if name in AMD_ONLY:
            verdict = "not asked: AMD is outside the 0.5.23 era's scope"
        elif name in CP_ONLY:
            verdict = "not asked: attention CP is outside the 0.5.23 era's scope (not re-read)"
        elif name in FIXED_BY_23748:
            verdict = "not asked: the #23748 helper (0.5.11) already fixed it"
        elif name not in carried:
            verdict = "not run (--era 0.5.11)"
        elif carried[name].status.value == "refuted":
            verdict = f"still has it (finding-in-0.5.23:{name})"
        elif carried[name].status.value == "proved":
            verdict = f"no longer has it (finding-in-0.5.23:{name}, proved)"
        else:
            verdict = f"unknown (finding-in-0.5.23:{name})"
        r.extra["in_0_5_23"] = verdict
        r.detail = f"{r.detail}; 0.5.23 era: {verdict}"


def era_0523_properties(known: bool = True) -> list[Property]:
    from .differences import differences
    from .era_differences import differences_into
    found = findings() if known else []
    return lemmas() + exactly_once(known) + found + carried_findings() + differences() + differences_into(Era.V0_5_23)
