"""Which row of `sumonce prove`'s tables decides an upstream bug at a release, and what that row
expects (audit --history asks here rather than re-deriving the decision).

A row's expectation is part of its table: `sumonce prove` fails when a row expected refuted is
proved or one expected to hold is refuted, and every refutation carries a witness the era accepts
(tests/spec/test_era_tables.py). So "the row expects refuted" is "the era's model has the bug, with
a witness", for as long as prove passes. The lookups read the tables' own sets, never a list of
releases: a release maps to its era (proto.eras.RELEASE_ERA), the era to its rows.
"""
from __future__ import annotations

from sumonce.proto import era_layers as L
from sumonce.proto import shared_expert as se
from sumonce.proto.eras import RELEASE_ERA, Era

from . import era_0521, era_findings, eras
from .findings import FINDINGS
from .shared_expert import FIXED_IN

HYBRID = "fused-allreduce-sums-ep-group-only"


def finding_row(release: str, name: str) -> tuple[bool | None, str]:
    """(still there, the row) for a 0.5.11 finding at `release`: True where its era's row expects
    it refuted, False where proved, None (with why) where the era's table does not ask it."""
    era = RELEASE_ERA[release]
    if name not in {f.name for f in FINDINGS}:
        raise KeyError(f"no 0.5.11 finding {name!r}")
    if era == Era.V0_5_11:
        return True, f"finding:{name}"
    if era == Era.V0_5_23:
        skipped = eras.AMD_ONLY | eras.CP_ONLY | eras.FIXED_BY_23748
        if name in skipped:
            return None, "not asked in 0.5.23 (AMD, attention CP, or fixed by #23748)"
        return name in eras.STILL_IN_0523, f"finding-in-0.5.23:{name}"
    if era == Era.V0_5_21:
        if name in era_0521.NOT_ASKED:
            return None, f"not asked in 0.5.21: {era_0521.NOT_ASKED[name]}"
        return name in era_0521.STILL_0521, f"finding-in-0.5.21:{name}"
    table = era_tables_era(era)
    if name in era_findings.not_asked(table):
        return None, f"not asked in {table.value}: {era_findings.not_asked(table)[name]}"
    row = f"finding-in-{table.value}:{name}"
    if table == Era.V0_5_17 and release in L.HYBRID_F_OFF and name == HYBRID:
        row += "@0.5.18"  # re-asked at 0.5.18's F gate, the same gate at 0.5.19 (communicator.py:905)
    return name in era_findings.still_at(table, release), row


def era_tables_era(era: Era) -> Era:
    """The era whose rows stand for `era`'s (0.5.16's are 0.5.15's, spec.era_tables.DERIVED)."""
    from .era_tables import DERIVED
    return DERIVED.get(era, era)


def shared_expert_row(release: str) -> tuple[bool, str]:
    """(counted more than once, the rows) for SGLANG_SHARED_EXPERT_TP1 at `release`: its readers'
    shared-once rows, refuted outside the eras that fixed #31475 (spec.shared_expert.FIXED_IN)."""
    era = RELEASE_ERA[release]
    models = tuple(r.model for r in se.READERS if r.release == release)
    if not models:
        return False, f"no model file reads SGLANG_SHARED_EXPERT_TP1 in {release}"
    rows = ", ".join(f"shared-once:{m}@{era.value}" for m in models)
    return era not in FIXED_IN, rows
