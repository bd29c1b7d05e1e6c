"""Every 0.5.11 finding, re-asked in the eras between 0.5.11 and 0.5.23 (rows
`finding-in-<era>:<name>`), and what each era still has: the regions its exactly-once excludes.

Which findings an era still has (STILL) was established by running its layer (proto.era_layers)
in each finding's region and reading the witnesses against the wheels (docs/ERAS.md section 7);
the rows check it every run: a finding marked still there must be refuted, one marked gone proved
(and its proof non-vacuous: some model fails there at 0.5.11).
"""
from __future__ import annotations

from functools import cache

from sumonce.proto import era_layers as L
from sumonce.proto import semantics
from sumonce.proto.eras import Era, accepts
from sumonce.proto.sites import Version

from .findings import FINDINGS
from .properties import Expect, Kind, Property

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



def explain_failing(era: Era, release: str, f):
    """At a finding's witness: the first model in the region that fails at `release`."""
    def story(c, s, F, R):
        for m in L.models_of(era):
            if L.layer_in_scope(c, m) and f.region(c, s, m, region_version(era)) and not L.exactly_once(release, c, s, m):
                return {"era_story": _story_at(release, c, s, F, R, m)}
        return {"era_story": _story_at(release, c, s, F, R)}
    return story



# --- every 0.5.11 finding, re-asked ------------------------------------------------------------


def others(era, release, name):
    """The era's known regions other than finding `name`'s (a witness must be this finding's)."""
    return tuple(r for n, r in known_named(era, release) if n != name)


@cache
def _inside(era, release, f):
    """(c, s, m) -> model m is in the era's layer scope, outside the era's other known findings and
    inside finding f's region. One function per (era, release, finding), so that the lifter lifts
    it once per model for the row's claim and its scope alike (spec/lift.py memoises a call by the
    function and its arguments)."""
    version, excluded = region_version(era), others(era, release, f.name)

    def inside(c, s, m):
        out = False
        for other in excluded:
            out = out or other(c, s, m, release)
        return L.layer_in_scope(c, m) and not out and f.region(c, s, m, version)
    return inside


def in_region(era, f, release, runs):
    """Some model of the era, in its layer scope and outside the era's other known findings, is
    inside the 0.5.11 finding's region (and, with runs, can run the configuration there)."""
    inside = _inside(era, release, f)

    def scope(c, s, F, R):
        hit = False
        for m in L.models_of(era):
            hit = hit or (accepts(era, c) and c.attn_cp_size == 1 and inside(c, s, m)
                          and (not runs or semantics.model_supports(c, m)))
        return hit
    return scope


def once_in_region(era, f, release):
    inside = _inside(era, release, f)

    def claim(c, s, F, R):
        ok = True
        for m in L.models_of(era):
            if inside(c, s, m):
                ok = ok and L.exactly_once(release, c, s, m)
        return ok
    return claim


def carried_findings(era: Era, release: str = "") -> list[Property]:
    """Each 0.5.11 finding in the era's layers: gone (proved) or still there (refuted, reachable
    unless the finding is the model's own inability to run the configuration)."""
    from .eras import fails_0511
    release = release or era.value
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


def _story_at(*args, **kwargs):
    from .era_tables import story_at
    return story_at(*args, **kwargs)
