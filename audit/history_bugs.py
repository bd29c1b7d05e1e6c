"""Upstream bugs, decided per release from what the audit lifted from that release's own
layers/moe/utils.py (its Q, V and helper, audit/release.py), never from a list of releases.

"Bug B shipped in release X" means: B's defining configuration is satisfiable with X's lifted
predicates under proto's validity, found by z3 with a witness (SGLang flags). Two bugs lie in code
the audit does not lift (the communicator's hybrid F gate and the fused kernel's group; the
replicated shared expert's addition): those are taken, per release, from the `sumonce prove` row
that decides them in the release's era (spec.bug_rows: its expectation, which every prove run
checks, with a witness the era accepts), never re-derived here; without the release's version
(decide_utils on a utils.py alone) they stay *not decided* (None) with the reason.
The research these definitions were checked against is docs/eras.json's bugs_shipped; where the
two disagree, tests/audit/test_history.py says why.
"""
from __future__ import annotations

from dataclasses import dataclass

import z3
from sumonce.spec.readable import Unknown

from .release import Release
from .release_world import AuditWorld
from .witness import find, flags


def _attention_tp_above_one(c) -> bool:
    return c.tp_size > c.attn_dp_size  # more than one rank per attention-DP rank (attention TP or CP above 1)


@dataclass(frozen=True)
class Bug:
    id: str
    what: str
    upstream: str
    undecided: str = ""
    """Why the audit cannot decide it from what it lifts (what it would have to read); such a bug
    is taken from the prove row `from_proofs` names (spec.bug_rows) when the release is known."""
    from_proofs: str = ""
    """"finding:<0.5.11 finding>" or "shared-expert": which spec.bug_rows lookup decides it."""


BUGS = (
    Bug("v_with_attention_tp",
        "V (should_use_dp_reduce_scatterv) can hold with attention TP > 1: the DP reduce-scatterv over the "
        "TP group gets one size per DP rank", "sgl-project/sglang#32663"),
    Bug("q_ep_sum_of_dp_local_outputs",
        "under Q, with no reduce-scatter (R false), the helper does not skip the EP path: an EP all-reduce "
        "sums DP-local outputs", "not found upstream"),
    Bug("hybrid_fused_sum_ep_only",
        "moe_ep > 1, moe_tp > 1 and F: both sums skipped, the next layer's fused kernel sums over EP only",
        "sgl-project/sglang#32963",
        undecided="F's hybrid gate (layers/communicator.py) and the fused kernel's group "
                  "(layers/flashinfer_comm_fusion.py) are not read by the audit",
        from_proofs="finding:fused-allreduce-sums-ep-group-only"),
    Bug("tp1_shared_expert_counted_tp_times",
        "SGLANG_SHARED_EXPERT_TP1: the replicated shared output added on every rank before a later sum",
        "sgl-project/sglang issue #31475",
        undecided="the audit does not read the replicated shared expert's addition in model files "
                  "(issue 16's shared-expert part)", from_proofs="shared-expert"),
)


def decide(release: Release, version: str | None = None) -> dict[str, dict]:
    """bug id -> {"shipped": True/False/None, "witness": SGLang flags or "", "why": one line};
    `version`: the registry release (its era's prove rows decide the bugs the audit cannot read)."""
    w = AuditWorld(has_v=release.has_v)  # NOTE: the same variable names as the audit's world
    out = {}
    for bug in BUGS:
        if bug.undecided:
            out[bug.id] = from_proofs(bug, version)
            continue
        out[bug.id] = _query(w, *_claim(w, release, bug.id))
    return out


def from_proofs(bug: Bug, version: str | None) -> dict:
    """The bug at `version` as its era's prove row expects it (spec.bug_rows)."""
    from sumonce.proto.eras import RELEASE_ERA
    from sumonce.spec import bug_rows
    if version not in RELEASE_ERA:
        return {"shipped": None, "witness": "", "why": f"not decided: {bug.undecided}; the release's era's "
                "prove rows decide it, and this source names no registry release"}
    if bug.from_proofs == "shared-expert":
        shipped, row = bug_rows.shared_expert_row(version)
    else:
        shipped, row = bug_rows.finding_row(version, bug.from_proofs.split(":", 1)[1])
    if shipped is None:
        return {"shipped": None, "witness": "", "why": f"not decided: {row}"}
    era = RELEASE_ERA[version].value
    if not row.startswith(("finding", "shared-once")):
        return {"shipped": shipped, "witness": "", "why": row}
    says = "refuted: shipped" if shipped else "to hold: not shipped"
    return {"shipped": shipped, "witness": f"sumonce prove --era {era}: {row}" if shipped else "",
            "why": f"era {era}'s prove rows {row} are expected {says}"}


def _claim(w, release: Release, bug_id: str):
    """(formula or None, why when None, what a witness shows)."""
    if bug_id == "v_with_attention_tp":
        if release.V is None:
            return None, "no V in this release (or V not understood)", ""
        return z3.And(release.V, w.lift(_attention_tp_above_one, w.c)), "", "V holds with attention TP > 1"
    if release.helper is None or release.Q is None:
        return None, "no helper (or Q or the helper not understood) in this release", ""
    claim = z3.And(release.Q, z3.Not(w.R), z3.Not(release.helper(z3.BoolVal(False), w.R, w.F)))
    return claim, "", "Q holds, R does not, and the helper runs the EP path's all-reduce"


def _query(w, claim, why_none: str, shows: str) -> dict:
    if claim is None:
        return {"shipped": False, "witness": "", "why": why_none}
    try:
        m = find(w, claim, w.valid())
    except Unknown as e:
        return {"shipped": None, "witness": "", "why": f"not decided: the solver said unknown ({e})"}
    if m is None:
        return {"shipped": False, "witness": "", "why": f"no valid configuration where {shows}"}
    return {"shipped": True, "witness": flags(w, m), "why": f"{shows} at {flags(w, m)}"}


def decide_utils(text: str | None) -> dict[str, dict]:
    """decide() on a release's layers/moe/utils.py alone (its Q, V and helper, read as the audit
    reads them)."""
    from .audit import V_DEF
    from .release import read_release
    w = AuditWorld(has_v=text is not None and V_DEF in text)
    return decide(read_release(w, text))
