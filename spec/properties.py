"""The property table: a name that reads as a claim, one English sentence, the claim, the scope.

Every claim and scope is a Python function in spec.claims or spec.findings over proto's own code;
spec.check lifts them. Expectation is part of the table: a property either HOLDS (must be proved)
or is an expected refutation (a known finding, or a historical guard that must be refuted).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Callable

from sumonce.proto import semantics
from sumonce.proto.catalogue import MODELS, SITES
from sumonce.proto.predicates import should_use_dp_reduce_scatterv
from sumonce.proto.sites import ISSUES, Model, Path, Version

from . import claims
from .findings import FINDINGS


class Expect(StrEnum):
    HOLDS = "holds"
    REFUTED = "refuted"


class Kind(StrEnum):
    LEMMA = "lemma"
    DRIFT = "no-drift"
    REFACTOR = "refactor"
    ONCE = "exactly-once"
    FINDING = "finding"
    HISTORY = "history"
    DIFFERENCE = "difference"


@dataclass
class Property:
    name: str
    meaning: str
    scope: str
    kind: Kind
    claim: Callable
    scopes: tuple = ()
    expect: Expect = Expect.HOLDS
    model: Model | None = None
    version: Version | None = None
    upstream: str = ""
    site: object = None
    fallback: Callable | None = None
    """REFACTOR: the weaker claim (equal up to the TP-only Q term) tried when equality fails."""
    targets: tuple = field(default=())
    """FINDING: tiers of (model, version) pairs searched for a failure; a tier is searched only
    when the tiers before it found none."""
    status: str = ""
    """FINDING: upstream status (open, or fixed in which release by which change)."""
    era: str = "0.5.11"
    """The era whose facts the property is about (proto.eras.Era value)."""
    explain: Callable | None = None
    """(c, s, F, R) -> dict: what the era's own functions say at a counterexample (spec.eras)."""
    premise: Callable | None = None
    """A proof of an era's property is vacuous unless some valid point satisfies the scopes and
    this (spec.check._not_vacuous); None: the scopes alone."""
    """(c, s, F, R) -> dict: what the era's own functions say at a counterexample (spec.eras)."""


def lemmas() -> list[Property]:
    every = "all valid configurations and forward states"
    return [
        Property("q-and-v-exclusive", "The FP4 all-gather (Q) and DP reduce-scatterv (V) never both apply.",
                 every, Kind.LEMMA, claims.q_and_v_exclusive),
        Property("f-and-v-exclusive-on-cuda",
                 "Off AMD, next-layer fusion (F) and the DP reduce-scatterv (V) never both apply "
                 "(aiter's F has no DP-attention term: finding aiter-fusion-under-dp-attention).",
                 every, Kind.LEMMA, claims.f_and_v_exclusive_on_cuda),
        Property("f-needs-tp-and-a-fused-allreduce",
                 "F needs tp > 1, not the last layer, tokens, and either flashinfer's fused all-reduce "
                 "(SM90/SM100, available, enabled, no DP attention, <= 2048 tokens) or aiter's (AMD, flag, tp != 6).",
                 every, Kind.LEMMA, claims.f_requirements),
        Property("fusion-auto-enable-excludes-h20",
                 "On an H20 the flashinfer fusion is on only when the user asks for it.",
                 every, Kind.LEMMA, claims.auto_fusion_excludes_h20),
        Property("v-needs-dp-attention-with-ep-equal-dp",
                 "V needs DP attention with attn_dp > 1, ep == attn_dp and no a2a backend.",
                 every, Kind.LEMMA, claims.v_requirements),
        Property("q-needs-fp4-cutlass-and-leaves-no-moe-tp-axis",
                 "Q needs modelopt_fp4, flashinfer_cutlass, DP attention, ep == tp (so moe_tp == 1).",
                 every, Kind.LEMMA, claims.q_requirements),
        Property("helper-skips-on-f-or-r", "Given F or R the helper skips on both paths.",
                 "all valid configurations, all F, R", Kind.LEMMA, claims.helper_skips_on_f_or_r),
        Property("sizes-factor", "ep * moe_tp == tp and attn_dp * (tp // attn_dp) == tp (each attention-DP rank a block of attn_cp * attn_tp ranks).",
                 every, Kind.LEMMA, claims.sizes_factor),
    ]


def drift() -> list[Property]:
    scope = "all valid configurations, all F, R"
    return [
        Property("ep-and-tp-paths-differ-only-by-q",
                 "The helper's TP path skips exactly when its EP path does or Q holds.",
                 scope, Kind.DRIFT, claims.paths_differ_only_by_q),
        Property("ep-skip-implies-tp-skip", "Whatever the EP path skips, the TP path skips.",
                 scope, Kind.DRIFT, claims.ep_skip_implies_tp_skip),
    ]


def site_equivalent(s, m: Model) -> Property:
    """Site s (of model m): its helper-based guard against its legacy one."""
    return Property(f"site-equivalent:{s.name}",
                    "The helper-based guard equals the legacy guard at da175b96, or differs only by the TP-only Q term.",
                    "all valid configurations, all F, R", Kind.REFACTOR, claims.guards_equal(s),
                    model=m, site=s, fallback=claims.guards_equal_but_q(s) if s.path == Path.TP else None)


def refactor() -> list[Property]:
    out = [site_equivalent(s, next(m for m in MODELS if m.name == s.model)) for s in SITES]
    for path in Path:
        sites = tuple(s for s in SITES if s.path == path)
        out.append(Property(f"skip-set-is-union-of-legacy:{path.value}",
                            f"On the {path.value.upper()} path the helper skips exactly where some legacy "
                            f"{path.value.upper()} site (of size > 1) skips.",
                            "all valid configurations, all F, R", Kind.REFACTOR, claims.skip_union(sites, path)))
    return out


def known_regions(known: bool = True) -> tuple:
    """The regions excluded from exactly-once: the known findings (none with --no-known-findings)."""
    return tuple(f.region for f in FINDINGS) if known else ()


def exactly_once(models=MODELS, known: bool = True) -> list[Property]:
    out = []
    for m in models:
        for v in (Version.HELPER, Version.LEGACY):
            out.append(Property(f"exactly-once:{m.name}@{v.value}",
                                "Every partial axis of size > 1 is summed exactly once, outside the known findings.",
                                "valid configurations with moe_a2a_backend none, all forward states",
                                Kind.ONCE, claims.exactly_once(m, v),
                                (claims.in_scope_outside(m, v, known_regions(known)),), model=m, version=v))
    return out


def findings() -> list[Property]:
    """Each finding must fail somewhere: searched at the helper (where it matters now), then, for a
    finding the helper fixed, at the legacy guards."""
    targets = (tuple((m, Version.HELPER) for m in MODELS), tuple((m, Version.LEGACY) for m in MODELS))
    return [Property(f"finding:{f.name}", f.meaning, "inside the finding's region", Kind.FINDING,
                     f.region, expect=Expect.REFUTED, upstream=f.upstream, targets=targets, status=f.status)
            for f in FINDINGS]


# --- history: each historical guard must be refuted inside its upstream issue's configuration ---


def dp_attention_with_ep(c, s, m, version):
    """DP attention + EP == attn_dp > 1 without an a2a backend: V holds (#23729, #23431)."""
    return should_use_dp_reduce_scatterv(c)


def reduce_scatter_with_ep(c, s, m, version):
    """The communicator reduce-scatters (R) with ep > 1, V off: what #23734 guarded the EP path for."""
    return semantics.block_reduce_scatter(c, s, m) and c.ep_size > 1 and not should_use_dp_reduce_scatterv(c)


ISSUE_CLASSES = {
    Version.PRE_23731: ((dp_attention_with_ep, "#23729"), (reduce_scatter_with_ep, "#23734")),
    Version.PRE_23734: ((reduce_scatter_with_ep, "#23734"),),
    Version.PRE_23732: ((dp_attention_with_ep, "#23431"),),
}


def history(known: bool = True) -> list[Property]:
    out, excluded = [], known_regions(known)
    for m in MODELS:
        for v, classes in ISSUE_CLASSES.items():
            if v not in m.versions:
                continue
            for region, issue in classes:
                out.append(_history(m, v, region, issue))
            regions = excluded + tuple(r for r, _ in classes)
            out.append(Property(
                f"exactly-once:{m.name}@{v.value}",
                "Outside its upstream issues' configurations (and the known findings) the old guard sums once.",
                "valid configurations with moe_a2a_backend none", Kind.ONCE, claims.exactly_once(m, v),
                (claims.in_scope_outside(m, v, regions),), model=m, version=v))
    return out


def _history(m: Model, v: Version, region, issue: str) -> Property:
    """The guard before the fix must fail in its issue's configuration: where the decoder has a
    LayerCommunicator, whose reduce-scatter(v) then sums as well (a double). Without one
    (exaone_moe, hunyuan_v3) there is no DP gather either: the old all-reduce mixed tokens, before
    the fix as after it (the witness is labelled: the model cannot run DP attention)."""
    meaning = (f"The guards before the fix are refuted in the configuration of {issue}."
               if m.decoder.gathers_for_dp_attention else
               f"No DP gather: in the configuration of {issue} the old all-reduce mixed tokens.")
    return Property(f"history:{m.name}@{v.value}:{issue}", meaning, region.__doc__.strip(), Kind.HISTORY,
                    claims.exactly_once(m, v), (claims.in_scope_inside(m, v, region),),
                    expect=Expect.REFUTED, model=m, version=v, upstream=ISSUES[issue])


def era_0511_properties(known_findings: bool = True) -> list[Property]:
    """The #23748 era's table (proto.predicates, semantics, catalogue)."""
    found = findings() if known_findings else []
    from sumonce.proto.eras import Era
    from .era_differences import differences_into
    return (lemmas() + drift() + refactor() + exactly_once(known=known_findings) + found
            + history(known=known_findings) + differences_into(Era.V0_5_11))


def era_tables() -> dict:
    """proto.eras.Era value -> the builder of that era's table. A third era adds one entry."""
    from .era_tables import builders
    from .eras import era_0523_properties
    # NOTE: 0.5.11 and 0.5.23 first (the table's first rows stay what they were), then the rest
    # oldest first.
    return {"0.5.11": era_0511_properties, "0.5.23": era_0523_properties, **builders()}


def all_properties(known_findings: bool = True, era: str = "all") -> list[Property]:
    """The table for one era (a proto.eras.Era value) or every era ("all")."""
    out = []
    for name, build in era_tables().items():
        if era in ("all", name):
            out += build(known_findings)
    return out + shared_expert_hook(era)


def shared_expert_hook(era: str) -> list[Property]:
    """issue 16's replicated shared expert (spec.shared_expert), for each era that has a table;
    kept apart from era_tables so that the eras' tables and this table merge without touching
    each other (an era's shared-expert properties join `prove` when its table lands)."""
    from .shared_expert import shared_expert_properties
    return [p for p in shared_expert_properties(era) if p.era in era_tables()]
