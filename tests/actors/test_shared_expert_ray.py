"""The replicated shared expert (SGLANG_SHARED_EXPERT_TP1) on real gloo collectives: each rank
adds it per proto.shared_expert's rule for the case's era, and the count measured from the output
equals proto's prediction: tp times (or the fused group's size) in 0.5.12 - 0.5.20 where a later
sum is owed, once from 0.5.21."""
from pathlib import Path

import pytest

from sumonce.actors.cases import shared_expert_cases
from sumonce.actors.replicated import run_shared_cases
from sumonce.proto.eras import Era

FIXED = (Era.V0_5_21, Era.V0_5_23)


@pytest.fixture(scope="module")
def rows(ray_cluster):
    return run_shared_cases(shared_expert_cases(), deadline_s=180)


def test_every_case_measures_what_proto_predicts(rows):
    assert len(rows) == len(shared_expert_cases()) == 12
    doc = (Path(__file__).parents[2] / "docs" / "SHARED_EXPERT.md").read_text()
    assert "(12 cases" in doc and "Measured = predicted in all 12" in doc
    bad = [(r.case.model, r.case.era.value, r.predicted, r.measured, r.residual) for r in rows if not r.ok]
    assert not bad


def test_counted_once_from_0_5_21_and_the_reference_agrees(rows):
    for r in rows:
        if r.case.era in FIXED:
            assert r.measured == [1] * r.case.world and r.error_vs_once <= 1e-3, r


def test_counted_per_rank_of_the_later_sum_before_0_5_21(rows):
    before = {(r.case.model, r.case.era.value, r.case.world, r.later): r.measured
              for r in rows if r.case.era not in FIXED}
    assert before[("deepseek_v2", "0.5.11", 2, "next layer's (fused or unfused) all-reduce over MoE-TP")] == [2, 2]
    assert before[("deepseek_v2", "0.5.20", 4, "next layer's (fused or unfused) all-reduce over MoE-TP")] == [4] * 4
    assert before[("deepseek_v2", "0.5.20", 2, "DP-attention reduce-scatterv over TP")] == [2, 2]
    assert before[("laguna", "0.5.17", 2, "communicator reduce-scatter over TP")] == [2, 2]
    assert before[("deepseek_v2", "0.5.20", 2, "nothing: the output is complete, or the block summed it")] == [1, 1]
    assert all(r.error_vs_once > 1e-3 for r in rows if r.case.era not in FIXED and r.measured != [1] * r.case.world)
