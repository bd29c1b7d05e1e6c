"""Upstream bugs decided from each release's own utils.py (lifted Q, V, helper), on all 17 cached
releases, against docs/eras.json's bugs_shipped (research)."""
from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest
from sumonce.audit.history_bugs import BUGS, decide_utils, from_proofs
from sumonce.audit.source import UTILS, fetch

ERAS = json.loads((Path(__file__).parents[2] / "docs" / "eras.json").read_text())
RELEASES = list(ERAS["releases"])


@pytest.fixture(scope="module")
def decided():
    out = {}
    for v in RELEASES:
        with zipfile.ZipFile(fetch(v)) as z:
            out[v] = decide_utils(z.read(UTILS).decode())
    return out


@pytest.mark.parametrize("bug", [b for b in BUGS if not b.undecided], ids=lambda b: b.id)
def test_decided_bugs_ship_where_the_research_says(decided, bug):
    research = next(b for b in ERAS["bugs_shipped"] if b["id"] == bug.id)
    shipped = [v for v in RELEASES if decided[v][bug.id]["shipped"]]
    assert shipped == research["shipped"]
    assert all(decided[v][bug.id]["witness"] for v in shipped)


@pytest.mark.parametrize("bug", [b for b in BUGS if b.undecided], ids=lambda b: b.id)
def test_bugs_the_audit_cannot_read_are_not_decided_from_utils_alone(decided, bug):
    """hybrid_fused_sum_ep_only: its fix (0.5.18) is F turned off for hybrid layouts in
    layers/communicator.py, and its cause the fused kernel's group; tp1_shared_expert: the shared
    expert's addition in deepseek_v2. The audit lifts neither: from a utils.py alone (no release
    named) it prints 'not decided' rather than the research's list."""
    assert any(b["id"] == bug.id for b in ERAS["bugs_shipped"])
    assert all(decided[v][bug.id]["shipped"] is None and "not decided" in decided[v][bug.id]["why"]
               for v in RELEASES)


@pytest.mark.parametrize("bug", [b for b in BUGS if b.undecided], ids=lambda b: b.id)
def test_with_the_release_named_its_era_s_prove_rows_decide(bug):
    """Issue 16: with the release known, each is its era's prove row (spec.bug_rows): shipped
    exactly in the releases the research lists, each shipping release naming its row."""
    research = next(b for b in ERAS["bugs_shipped"] if b["id"] == bug.id)
    per = {v: from_proofs(bug, v) for v in RELEASES}
    assert [v for v in RELEASES if per[v]["shipped"]] == research["shipped"]
    assert all(per[v]["shipped"] is False for v in RELEASES if v not in research["shipped"])
    assert all(per[v]["witness"].startswith("sumonce prove --era ") for v in research["shipped"])


def test_the_rows_named_are_in_the_tables_with_that_expectation():
    """Sound only while the rows exist and expect what the lookup says: every row spec.bug_rows
    names is a property of its era's table, expected refuted exactly where the bug shipped."""
    from sumonce.proto.eras import RELEASE_ERA
    from sumonce.spec import bug_rows
    from sumonce.spec.properties import Expect, all_properties
    table = {p.name: p for p in all_properties(era="all")}
    for v in RELEASES:
        for shipped, rows in (bug_rows.finding_row(v, bug_rows.HYBRID), bug_rows.shared_expert_row(v)):
            if not rows.startswith(("finding", "shared-once")):
                assert shipped is False and RELEASE_ERA[v].value in ("0.5.10.post1", "0.5.11"), (v, rows)
                continue
            for row in rows.split(", "):
                assert (table[row].expect == Expect.REFUTED) == shipped, (v, row)
