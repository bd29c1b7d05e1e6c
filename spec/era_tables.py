"""The property tables of the eras between 0.5.11 and 0.5.23: 0.5.10.post1, 0.5.15, 0.5.16,
0.5.17, 0.5.20, 0.5.21. The same families as 0.5.11's and 0.5.23's: lemmas and no-drift on the
era's helper (decisions.HELPERS), exactly-once per catalogued model that exists in the era (its
layer: proto.era_layers), every 0.5.11 finding re-asked in the era, and the era's differences from
the one before (spec.era_differences). Names end in `@<era>`.

0.5.21's layer is proto.models_0521 (the stage boundary publishes F and R, the model files sum
on them); its exactly-once and finding rows are spec.era_0521's.
"""
from __future__ import annotations

from sumonce.proto import era_layers as L
from sumonce.proto import semantics
from sumonce.proto.decisions import HELPERS
from sumonce.proto.eras import Era, accepts
from sumonce.proto.predicates import should_use_flashinfer_cutlass_moe_fp4_allgather as Q
from sumonce.proto.sites import Version

from . import claims
from .era_findings import NEW_KNOWN, _release_region, carried_findings, known_regions
from .properties import Expect, Kind, Property

SCOPE_NOTES = {
    Era.V0_5_10.value: "layers: a2a none, dwdp 1, off AMD, no attention CP, moe_dp 1; 14 models (no hunyuan_v3 yet)",
    Era.V0_5_15.value: "layers: a2a none, dwdp 1, off AMD, no attention CP, moe_dp 1",
    Era.V0_5_16.value: "layers: a2a none, dwdp 1, off AMD, no attention CP, moe_dp 1",
    Era.V0_5_17.value: "layers at release 0.5.17 (0.5.18's hybrid F gate: finding rows); a2a none, dwdp 1, off AMD",
    Era.V0_5_20.value: "layers: a2a none, dwdp 1, off AMD, no attention CP, moe_dp 1",
    Era.V0_5_21.value: "layers: proto.models_0521 (spec.era_0521.SCOPE)",
}

# 0.5.11 findings per era: which the era still has (REFUTED) in the finding's region; the rest
# are gone (proved). Established from the era's layer (proto.era_layers), reasons in docs/ERAS.md.
def first_release(era: Era) -> str:
    return era.value


def story_at(release: str, c, s, F, R, model=None) -> dict:
    """What the era's functions say at (c, s, F, R), for `model` when given."""
    era = L.era_of(release)
    out = {"release": release, "V": L.V(release, c)}
    if era in HELPERS:
        out["skip"] = {"tp": HELPERS[era](c, True, R, F), "ep": HELPERS[era](c, False, R, F)}
    if model is not None:
        out.update(model=model.name, F=L.fusion(release, c, s, model), R=L.reduce_scatter(release, c, s, model),
                   after=L.after_experts(release, c, s, model).value, crashes=L.crashes(release, c, s, model),
                   model_runs=semantics.model_supports(c, model),
                   counts={v: vars(L.sum_counts(release, c, s, model, v)) for v in model.variants})
    return out


def explain(release: str, model=None):
    """The era's functions at a counterexample (describe puts it under era_story)."""
    def story(c, s, F, R):
        return {"era_story": story_at(release, c, s, F, R, model)}
    return story


# --- lemmas and no-drift on the helper -------------------------------------------------------


def skips_on_f_or_r(era):
    def claim(c, s, F, R):
        return not (F or R) or (HELPERS[era](c, True, R, F) and HELPERS[era](c, False, R, F))
    return claim


def paths_differ_only_by_q(era):
    def claim(c, s, F, R):
        return HELPERS[era](c, True, R, F) == (HELPERS[era](c, False, R, F) or Q(c))
    return claim


def accepted(era):
    def scope(c, s, F, R):
        return accepts(era, c)
    return scope


def helper_rows(era: Era) -> list[Property]:
    scope = f"configurations {era.value} accepts, all F, R"
    kw = dict(era=era.value, explain=explain(first_release(era)), scopes=(accepted(era),))
    return [Property(f"helper-skips-on-f-or-r@{era.value}", "Given F or R the helper skips on both paths.", scope,
                     Kind.LEMMA, skips_on_f_or_r(era), **kw),
            Property(f"ep-and-tp-paths-differ-only-by-q@{era.value}",
                     "The helper's TP path skips exactly when its EP path does or Q holds.", scope,
                     Kind.DRIFT, paths_differ_only_by_q(era), **kw)]


def guards_agree_0510(c, s, F, R):
    """qwen3_moe's two 0.5.10.post1 guards skip on the same (F, R), given both sizes > 1."""
    ep, tp = L.MODELS_0510[0].sites
    return not (c.ep_size > 1 and c.moe_tp_size > 1) or (ep.guard(Version.LEGACY)(c, F, R) == tp.guard(Version.LEGACY)(c, F, R)
                                                       or Q(c))


def guards_skip_on_f(c, s, F, R):
    """Every 0.5.10.post1 block guard whose decoder hands it F skips when F is set."""
    ok = True
    for m in L.MODELS_0510:
        for site in m.sites:
            if site.receives_F and m.decoder.block_F != semantics.BlockFlag.ABSENT:
                ok = ok and not site.guard(Version.LEGACY)(c, True, R)
    return ok


def pre_helper_rows() -> list[Property]:
    """Before the helper: a lemma on the hand-written guards, and the drift #23748 removed:
    qwen3_moe's EP and MoE-TP guards disagree on R."""
    return [Property("guards-skip-on-f@0.5.10.post1",
                     "Every hand-written guard whose decoder hands it F skips when F is set.",
                     "configurations 0.5.10.post1 accepts, all R", Kind.LEMMA, guards_skip_on_f,
                     (accepted(Era.V0_5_10),), era=Era.V0_5_10.value, explain=explain("0.5.10.post1")),
            Property("ep-and-tp-guards-agree@0.5.10.post1",
                     "qwen3_moe's EP and MoE-TP guards skip on the same flags (up to Q): refuted, its EP guard "
                     "has no R term (models/qwen3_moe.py:328 vs :330-337), the drift #23734 and #23748 removed.",
                     "configurations 0.5.10.post1 accepts, all F, R", Kind.DRIFT, guards_agree_0510,
                     (accepted(Era.V0_5_10),), expect=Expect.REFUTED, era=Era.V0_5_10.value,
                     upstream="#23734 (qwen3_moe EP all-reduce ran on top of the reduce-scatter)",
                     explain=explain("0.5.10.post1"))]


# --- exactly once ------------------------------------------------------------------------------


def once(release, model):
    def claim(c, s, F, R):
        return L.exactly_once(release, c, s, model)
    return claim


def in_layer_scope(era, release, model, regions=(), inside=None):
    def scope(c, s, F, R):
        out = False
        for region in regions:
            out = out or region(c, s, model, release)
        ok = accepts(era, c) and L.layer_in_scope(c, model) and c.attn_cp_size == 1 and not out
        return ok and (inside is None or inside(c, s, model, release))
    return scope


def exactly_once(era: Era, known: bool) -> list[Property]:
    release, regions = first_release(era), known_regions(era) if known else ()
    return [Property(f"exactly-once:{m.name}@{era.value}",
                     "Every partial axis of size > 1 is summed exactly once, outside the era's known findings.",
                     SCOPE_NOTES[era.value], Kind.ONCE, once(release, m), (in_layer_scope(era, release, m, regions),),
                     era=era.value, explain=explain(release, m))
            for m in L.models_of(era)]


def new_findings(era: Era) -> list[Property]:
    out = []
    for region, name, meaning in NEW_KNOWN.get(era, ()):
        for m in L.models_of(era):
            if m.name in ("qwen3_moe", "minimax_m2"):
                scope = in_layer_scope(era, era.value, m, inside=_release_region(region, era.value))
                runs = claims.model_runs(m)
                out.append(Property(f"finding:{name}:{m.name}@{era.value}", meaning, "inside the finding's region",
                                    Kind.FINDING, once(era.value, m), (scope, runs), expect=Expect.REFUTED,
                                    era=era.value, explain=explain(era.value, m), status=f"open in {era.value}"))
    return out


DERIVED = {Era.V0_5_16: Era.V0_5_15}
"""Eras whose layer rows follow from another era's: 0.5.16's sites decide exactly as 0.5.15's
(difference:0.5.15->0.5.16:context_flags:every-site-decides-the-same, proved) and nothing else in
the layer changed, so 0.5.15's exactly-once and finding rows are 0.5.16's too (not run twice)."""


def era_properties(era: Era, known: bool = True) -> list[Property]:
    from .era_differences import differences_into
    rows = helper_rows(era) if era in HELPERS else pre_helper_rows()
    if era in L.LAYER_ERAS and era not in DERIVED:
        rows += exactly_once(era, known) + (new_findings(era) if known else []) + carried_findings(era)
    if era == Era.V0_5_21:
        from .era_0521 import layer_rows
        rows += layer_rows(known)
    if era == Era.V0_5_17:
        rows += [p for p in carried_findings(era, "0.5.18") if "fused-allreduce-sums-ep-group-only" in p.name]
    return rows + differences_into(era)


def builders() -> dict:
    """Era value -> its table's builder (for spec.properties.era_tables)."""
    def builder(era):
        return lambda known=True: era_properties(era, known)
    return {e.value: builder(e) for e in (Era.V0_5_10, Era.V0_5_15, Era.V0_5_16, Era.V0_5_17, Era.V0_5_20, Era.V0_5_21)}
