"""The property tables of the eras between 0.5.11 and 0.5.23: 0.5.10.post1, 0.5.15, 0.5.16,
0.5.17, 0.5.20, 0.5.21. The same families as 0.5.11's and 0.5.23's: lemmas and no-drift on the
era's helper (decisions.HELPERS), exactly-once per catalogued model that exists in the era (its
layer: proto.era_layers), every 0.5.11 finding re-asked in the era, and the era's differences from
the one before (spec.era_differences). Names end in `@<era>`.

0.5.21's models sum through reduce_moe_output while its stage boundary publishes F and R
(layer_boundary/exit.py:183): that layer was not modelled, so its table has the helper families
and its differences only (no exactly-once rows; say so, not silence: SCOPE_NOTES).
"""
from __future__ import annotations

from sumonce.proto import era_layers as L
from sumonce.proto import semantics
from sumonce.proto.decisions import HELPERS
from sumonce.proto.eras import Era, accepts
from sumonce.proto.predicates import should_use_flashinfer_cutlass_moe_fp4_allgather as Q
from sumonce.proto.sites import Path, Version

from . import claims
from .findings import FINDINGS
from .properties import Expect, Kind, Property

SCOPE_NOTES = {
    Era.V0_5_10.value: "layers: a2a none, dwdp 1, off AMD, no attention CP, moe_dp 1; 14 models (no hunyuan_v3 yet)",
    Era.V0_5_15.value: "layers: a2a none, dwdp 1, off AMD, no attention CP, moe_dp 1",
    Era.V0_5_16.value: "layers: a2a none, dwdp 1, off AMD, no attention CP, moe_dp 1",
    Era.V0_5_17.value: "layers at release 0.5.17 (0.5.18's hybrid F gate: finding rows); a2a none, dwdp 1, off AMD",
    Era.V0_5_20.value: "layers: a2a none, dwdp 1, off AMD, no attention CP, moe_dp 1",
    Era.V0_5_21.value: "helper only: 0.5.21's reduce_moe_output layers and stage boundary were not modelled",
}

# 0.5.11 findings per era: which the era still has (REFUTED) in the finding's region; the rest
# are gone (proved). Established from the era's layer (proto.era_layers), reasons in docs/ERAS.md.
STILL = {
    Era.V0_5_10: {"fused-allreduce-sums-ep-group-only", "fused-kernel-declined-norm-without-allreduce",
                  "pp-stage-boundary-drops-fusion-mark", "fusion-flag-without-handoff",
                  "model-lacks-dp-attention-gather", "fp4-allgather-ep-path", "tp-guard-without-q"},
    Era.V0_5_15: {"fused-allreduce-sums-ep-group-only", "fused-kernel-declined-norm-without-allreduce",
                  "pp-stage-boundary-drops-fusion-mark", "fusion-flag-without-handoff",
                  "model-lacks-dp-attention-gather", "reduce-scatterv-crashes-with-attention-tp",
                  "decoder-allreduce-ignores-v-and-q", "fp4-allgather-ep-path"},
}
STILL[Era.V0_5_16] = STILL[Era.V0_5_15]
STILL[Era.V0_5_17] = STILL[Era.V0_5_15] - {"reduce-scatterv-crashes-with-attention-tp"}
STILL[Era.V0_5_20] = STILL[Era.V0_5_17] - {"fused-allreduce-sums-ep-group-only"}
NOT_ASKED = {"aiter-unfused-branch-sums-moe-tp-only": "AMD is outside the era layers' scope",
             "aiter-fusion-under-dp-attention": "AMD is outside the era layers' scope",
             "moe-cp-allgather-under-v": "attention CP is outside the era layers' scope"}


def not_asked(era: Era) -> dict:
    """Finding -> why the era's table does not ask it."""
    if era == Era.V0_5_10:
        return {**NOT_ASKED, "decoder-allreduce-ignores-v-and-q": "0.5.10.post1's step3p5 decoder has no all-reduce"}
    return {**NOT_ASKED, "tp-guard-without-q": "the #23748 helper (0.5.11) fixed it"}

# Failures an era has that 0.5.11 does not (known: excluded from its exactly-once, each refuted).
def reduce_scatter_on_a_guard_without_r(c, s, m, release):
    """0.5.10.post1: the communicator reduce-scatters (R) while a site's guard has no R term
    (qwen3_moe's EP guard before #23734; minimax_m2's unconditional all-reduce before #23732)."""
    return L.reduce_scatter(release, c, s, m) and (m.name == "qwen3_moe" and c.ep_size > 1 or m.name == "minimax_m2")


NEW_KNOWN = {Era.V0_5_10: ((reduce_scatter_on_a_guard_without_r, "reduce-scatter-on-a-guard-without-r",
                            "#23734 / #23431: a guard without R all-reduces on top of the communicator's reduce-scatter"),)}


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


def explain_failing(era: Era, release: str, f):
    """At a finding's witness: the first model in the region that fails at `release`."""
    def story(c, s, F, R):
        for m in L.models_of(era):
            if L.layer_in_scope(c, m) and f.region(c, s, m, region_version(era)) and not L.exactly_once(release, c, s, m):
                return {"era_story": story_at(release, c, s, F, R, m)}
        return {"era_story": story_at(release, c, s, F, R)}
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


def region_version(era: Era) -> Version:
    """The version at which a 0.5.11 finding's region is asked of the era's models (0.5.10.post1's
    sites keep their one guard as LEGACY)."""
    return Version.LEGACY if era == Era.V0_5_10 else Version.HELPER


def known_named(era: Era, release: str = "") -> tuple:
    """(name, region(c, s, m, release)) the era's exactly-once excludes: the 0.5.11 findings the
    era still has (asked of the era's own model), and the era's own."""
    release, version = release or era.value, region_version(era)
    out = tuple((f.name, _asked(f.region, version)) for f in FINDINGS if f.name in still_at(era, release))
    return out + tuple((name, _release_region(r, release)) for r, name, _ in NEW_KNOWN.get(era, ()))


def known_regions(era: Era):
    return tuple(r for _, r in known_named(era))


def _asked(region, version):
    def inside(c, s, m, release):
        return region(c, s, m, version)
    return inside


def _release_region(region, release):
    def inside(c, s, m, _):
        return region(c, s, m, release)
    return inside


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


# --- every 0.5.11 finding, re-asked ------------------------------------------------------------


def others(era, release, name):
    """The era's known regions other than finding `name`'s (a witness must be this finding's)."""
    return tuple(r for n, r in known_named(era, release) if n != name)


def in_region(era, f, release, runs):
    """Some model of the era, in its layer scope and outside the era's other known findings, is
    inside the 0.5.11 finding's region (and, with runs, can run the configuration there)."""
    version, excluded = region_version(era), others(era, release, f.name)

    def scope(c, s, F, R):
        hit = False
        for m in L.models_of(era):
            out = False
            for other in excluded:
                out = out or other(c, s, m, release)
            hit = hit or (accepts(era, c) and L.layer_in_scope(c, m) and c.attn_cp_size == 1 and not out
                          and f.region(c, s, m, version) and (not runs or semantics.model_supports(c, m)))
        return hit
    return scope


def once_in_region(era, f, release):
    version, excluded = region_version(era), others(era, release, f.name)

    def claim(c, s, F, R):
        ok = True
        for m in L.models_of(era):
            out = False
            for other in excluded:
                out = out or other(c, s, m, release)
            if L.layer_in_scope(c, m) and not out and f.region(c, s, m, version):
                ok = ok and L.exactly_once(release, c, s, m)
        return ok
    return claim


def carried_findings(era: Era, release: str = "") -> list[Property]:
    """Each 0.5.11 finding in the era's layers: gone (proved) or still there (refuted, reachable
    unless the finding is the model's own inability to run the configuration)."""
    from .eras import fails_0511
    release = release or first_release(era)
    out = []
    for f in FINDINGS:
        if f.name in not_asked(era):
            continue
        still = f.name in still_at(era, release)
        runs = still and f.name != "model-lacks-dp-attention-gather"
        suffix = "" if release == era.value else f"@{release}"
        out.append(Property(
            f"finding-in-{era.value}:{f.name}{suffix}",
            (f"{release} still has it: " if still else f"{release} no longer has it: ") + f.meaning,
            "the finding's region, for a model in the era's layer scope", Kind.FINDING,
            once_in_region(era, f, release), (in_region(era, f, release, runs),),
            expect=Expect.REFUTED if still else Expect.HOLDS, era=era.value,
            explain=explain_failing(era, release, f),
            premise=fails_0511(f.region) if not still else None,
            status=(f"still open in {release}" if still else f"gone in {release}")))
    return out


def still_at(era: Era, release: str) -> set:
    if release in L.HYBRID_F_OFF:
        return STILL[era] - {"fused-allreduce-sums-ep-group-only"}
    return STILL[era]


def finding_extras(p: Property, status, cx) -> dict:
    if cx is None:
        return {"status": p.status, "reachable": f"no failure in {p.era}"}
    runs = cx.get("era_story", {}).get("model_runs", True)
    return {"status": p.status, "reachable": "reachable" if runs else "not reachable where the model can run it"}


DERIVED = {Era.V0_5_16: Era.V0_5_15}
"""Eras whose layer rows follow from another era's: 0.5.16's sites decide exactly as 0.5.15's
(difference:0.5.15->0.5.16:context_flags:every-site-decides-the-same, proved) and nothing else in
the layer changed, so 0.5.15's exactly-once and finding rows are 0.5.16's too (not run twice)."""


def era_properties(era: Era, known: bool = True) -> list[Property]:
    from .era_differences import differences_into
    rows = helper_rows(era) if era in HELPERS else pre_helper_rows()
    if era in L.LAYER_ERAS and era not in DERIVED:
        rows += exactly_once(era, known) + (new_findings(era) if known else []) + carried_findings(era)
    if era == Era.V0_5_17:
        rows += [p for p in carried_findings(era, "0.5.18") if "fused-allreduce-sums-ep-group-only" in p.name]
    return rows + differences_into(era)


def builders() -> dict:
    """Era value -> its table's builder (for spec.properties.era_tables)."""
    def builder(era):
        return lambda known=True: era_properties(era, known)
    return {e.value: builder(e) for e in (Era.V0_5_10, Era.V0_5_15, Era.V0_5_16, Era.V0_5_17, Era.V0_5_20, Era.V0_5_21)}
