"""spec.shared_expert: every property gets its expected verdict, refutations are readable and
re-evaluate to False in plain Python, proofs are not vacuous, and `prove` runs them."""
import pytest
import z3

from sumonce.proto import shared_expert as se
from sumonce.proto.eras import Era
from sumonce.spec.check import lift_claim, run_property
from sumonce.spec.properties import Expect, all_properties
from sumonce.spec.shared_expert import shared_expert_properties
from sumonce.spec.solve import Status
from sumonce.spec.world import World

PROPS = shared_expert_properties()


@pytest.fixture(scope="module")
def world():
    return World()


def test_one_property_per_reader_and_era():
    names = {p.name for p in PROPS}
    for e in Era:
        for m in se.readers(e):
            assert f"shared-once:{m}@{e.value}" in names
        assert f"shared-once:deepseek_v2:fp4-allgather@{e.value}" in names
    assert "shared-once:deepseek_v4@0.5.23" in names and len(PROPS) == 23


@pytest.mark.parametrize("p", PROPS, ids=lambda p: p.name)
def test_expected_verdict(world, p):
    r = run_property(world, p, 20000)
    assert r.status != Status.UNKNOWN
    assert r.passed, (r.status, r.detail, r.counterexample)
    if p.expect == Expect.REFUTED:
        cx = r.counterexample
        assert cx["python_claim"] is False and "--shared-expert-tp1" in cx["flags"]
        assert cx["env"] == "SGLANG_SHARED_EXPERT_TP1=1"
        assert set(cx["replicated_counted"].values()) != {1}
    else:
        scope = z3.And(*[lift_claim(world, s) for s in p.scopes])
        assert world.check(z3.Not(scope), [], 20000).status == Status.REFUTED, "vacuous proof"


def test_refuted_eras_are_exactly_the_pre_helper_ones():
    assert all(p.expect == Expect.HOLDS for p in PROPS if ":fp4-allgather" in p.name)
    refuted = {p.era for p in PROPS if p.expect == Expect.REFUTED and ":other-a2a" not in p.name}
    assert refuted == {"0.5.11", "0.5.15", "0.5.16", "0.5.17", "0.5.20"}
    assert all(p.upstream.endswith("/31475") for p in PROPS if p.expect == Expect.REFUTED and ":other-a2a" not in p.name)


def test_prove_runs_them_for_every_era_with_a_table():
    from sumonce.spec.properties import era_tables
    names = {p.name for p in all_properties()}
    assert {p.name for p in PROPS if p.era in era_tables()} <= names
    assert {"0.5.11", "0.5.23"} <= set(era_tables())
    assert {p.name for p in all_properties(era="0.5.23") if p.name.startswith("shared-once")} == \
        {p.name for p in PROPS if p.era == "0.5.23"}


def test_the_doc_counts_what_the_table_holds():
    from pathlib import Path
    doc = (Path(__file__).parents[2] / "docs" / "SHARED_EXPERT.md").read_text()
    assert f"holds all {len(PROPS)}" in doc
