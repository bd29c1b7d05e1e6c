"""`sumonce prove --era`: the 0.5.23 era's table, the two helpers side by side, and proofs that
can fail (a mutated 0.5.23 fact is caught)."""
import contextlib
import io
import json

import pytest

from sumonce.proto import boundary as b
from sumonce.proto import models_0523 as m23
from sumonce.proto.eras import Era, accepts
from sumonce.proto.flags import parse_flags
from sumonce.proto.serial import from_dict
from sumonce.proto.config import ForwardState, ServerConfig
from sumonce.proto.sites import Group
from sumonce.proto.validation import validate
from sumonce.spec import check, cli
from sumonce.spec.differences import DIFFERENCES, QWEN3_23
from sumonce.spec.eras import AMD_ONLY, CP_ONLY, FIXED_BY_23748, STILL_IN_0523, era_0523_properties
from sumonce.spec.findings import FINDINGS
from sumonce.spec.properties import Expect, all_properties
from sumonce.spec.world import World


def prove(*argv):
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = cli.prove_main(["--json", *argv])
    return code, json.loads(out.getvalue())


@pytest.fixture(scope="module")
def era23():
    code, report = prove("--era", "0.5.23")
    return code, {r["property"]: r for r in report["results"]}


def test_the_0_5_23_table_passes_with_its_counts(era23):
    code, rows = era23
    assert code == 0 and all(r["passed"] and r["lift_ok"] for r in rows.values())
    counts = {}
    for r in rows.values():
        if r["era"] == "0.5.23" and not r["property"].startswith("shared-once:"):  # spec.shared_expert's
            counts[r["kind"]] = counts.get(r["kind"], 0) + 1
    # 15 differences 0.5.11 vs 0.5.23 (spec.differences), 3 from 0.5.21 (spec.era_differences)
    assert counts == {"lemma": 5, "no-drift": 2, "exactly-once": 15, "finding": 9, "difference": 18}
    assert all(n.endswith("@0.5.23") for n, r in rows.items()
               if r["era"] == "0.5.23" and r["kind"] in ("lemma", "no-drift", "exactly-once"))


def test_each_difference_has_a_reachable_witness_where_the_decisions_differ(era23):
    """Every expected refutation's counterexample: 0.5.23 accepts it (validity, era acceptance),
    qwen3_moe runs it in 0.5.23, and the claim is False there in plain Python."""
    _, rows = era23
    differ = [d for d in DIFFERENCES if d.expect == Expect.REFUTED]
    assert len(differ) == 11
    for d in differ:
        r = rows[f"difference:{d.id}"]
        assert r["verdict"] == "refuted" and r["counterexample"]["upstream"] == d.upstream, d.id
        cx = r["counterexample"]
        c, s = validate(from_dict(ServerConfig, cx["config"])), from_dict(ForwardState, cx["state"])
        assert accepts(Era.V0_5_23, c) and m23.in_scope(c, QWEN3_23) and m23.model_supports(c, QWEN3_23), d.id
        assert d.claim(c, s, cx["block_F"], cx["block_R"]) is False and cx["python_claim"] is False, d.id
        assert d.region(c, s, cx["block_F"], cx["block_R"]), d.id
        assert parse_flags(cx["flags"].split())[0] == c, f"{d.id}: the printed flags give back the witness"
    hybrid = rows["difference:hybrid_merged_group"]["counterexample"]
    assert hybrid["outcome"] == "an axis never summed (missing reduce)" and hybrid["counts_0523"] == {"ep": 1, "moe_tp": 1}
    assert hybrid["reduction_group"] == Group.TP.value


def test_refactor_rows_and_completeness_are_proved_not_vacuous(era23):
    _, rows = era23
    for name in ("context_flags", "f_leaves_context:same-layer-outcome-single-group", "replicated_shared_expert",
                 "helpers-agree-outside-the-differences"):
        assert rows[f"difference:{name}"]["verdict"] == "proved", name


def test_every_0_5_11_finding_says_whether_0_5_23_has_it(era23):
    _, rows = era23
    carried = {n.split(":", 1)[1]: r for n, r in rows.items() if n.startswith("finding-in-0.5.23:")}
    names = {f.name for f in FINDINGS}
    assert set(carried) == names - AMD_ONLY - CP_ONLY - FIXED_BY_23748
    for name, r in carried.items():
        assert r["verdict"] == ("refuted" if name in STILL_IN_0523 else "proved"), name
    assert STILL_IN_0523 == {"model-lacks-dp-attention-gather"}
    assert carried["model-lacks-dp-attention-gather"]["reachable"].startswith("not reachable")
    assert "hunyuan_v3" in carried["model-lacks-dp-attention-gather"]["reachable"]
    assert all(r["reachable"] == "no failure in the 0.5.23 era" for n, r in carried.items() if n not in STILL_IN_0523)


def test_a_vacuous_era_proof_fails():
    """tp-guard-without-q never fails at the #23748 helper: asked in 0.5.23 its scope is empty,
    and a proof over an empty scope is not a pass."""
    from sumonce.spec import eras
    f = next(f for f in FINDINGS if f.name == "tp-guard-without-q")
    p = eras.carried_findings()[0]
    p.claim, p.scopes, p.premise = eras.once_0523_in_region(f.region), (eras.in_region(f.region, True),), eras.fails_0511(f.region)
    r = check.run_property(World(), p, 10_000)
    assert not r.passed and "vacuous" in r.detail


def old_fusion_group(c):
    """0.5.11's fused group (flashinfer_comm_fusion.py:525): EP when ep > 1, else MoE-TP."""
    if c.ep_size > 1:
        return Group.EP
    return Group.MOE_TP


def defers_any_layout(c, s):
    """_defers_sum without single_sum: any layout may defer."""
    return b.may_defer_sum(c, s) and s.num_tokens > 0


def rows_without_dwdp(c):
    """is_moe_input_scattered_across_dp_ranks without its dwdp term (utils.py:726)."""
    return c.moe_a2a_backend != b.MoeA2ABackend.NONE or b.should_use_flashinfer_cutlass_moe_fp4_allgather(c)


def run_mutated(overrides, name="exactly-once:qwen3_moe@0.5.23"):
    p = next(p for p in era_0523_properties() if p.name == name)
    return check.run_property(World(overrides=overrides), p, 10_000)


def test_the_hybrid_protections_are_load_bearing():
    """0.5.23 keeps a hybrid EP x MoE-TP sum whole twice over: the exit only defers a one-group
    sum (single_sum), and the fused group is TP when mergeable. Either alone suffices; with both
    taken back to 0.5.11's behaviour, exactly-once@0.5.23 fails at a hybrid layout."""
    assert run_mutated({b.post_experts_reduction_group: old_fusion_group}).passed
    assert run_mutated({b.defers_sum: defers_any_layout}).passed
    r = run_mutated({b.post_experts_reduction_group: old_fusion_group, b.defers_sum: defers_any_layout})
    assert r.status.value == "refuted"
    cfg = r.counterexample["config"]
    assert cfg["ep_size"] > 1 and cfg["tp_size"] > cfg["ep_size"]


def test_a_wrong_0_5_23_fact_is_caught():
    """Without dwdp among the rows the boundary declares complete (factories.py:194), the exit
    owes the sum and sum_post_experts_output skips it as complete: the proof finds that no step
    sums (the proofs rest on the fact, they do not restate it)."""
    r = run_mutated({b.is_moe_input_scattered_across_dp_ranks: rows_without_dwdp})
    assert r.status.value == "refuted" and r.counterexample["config"]["dwdp_size"] > 1


def test_every_era_has_a_table():
    from sumonce.spec.properties import era_tables
    assert set(era_tables()) == {e.value for e in Era} == set(cli.ERA_NAMES)


def test_era_option():
    for era in Era:
        assert {p.era for p in all_properties(era=era.value)} == {era.value}
    assert len(all_properties()) == sum(len(all_properties(era=e.value)) for e in Era)


def test_bad_era_exits_2(capsys):
    assert cli.prove_main(["--era", "0.5.18"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "allowed: " in err and err.rstrip().endswith(", all")
    assert all(e.value in err for e in Era)
    assert cli.prove_main(["--era", "0.5.11,0.5.19"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "'0.5.19' (sglang 0.5.19 is in era 0.5.17)" in err
    assert cli.prove_main(["--era", ""]) == 2


def test_several_eras(capsys):
    """--era A,B: both eras' tables, in the table's order, each once (however named)."""
    assert cli.prove_main(["--list", "--era", "0.5.23, 0.5.11,0.5.23"]) == 0
    names = [line.split("\t")[0] for line in capsys.readouterr().out.splitlines()]
    both = [p.name for e in ("0.5.11", "0.5.23") for p in all_properties(era=e)]
    assert names == both and len(set(names)) == len(names)


def test_each_0_5_11_finding_says_what_0_5_23_does(capsys):
    """The 0.5.11 finding rows carry the 0.5.23 answer; where findings.py's hand-written status
    says 'fixed in 0.5.23', the computed answer agrees."""
    code, report = prove("--only", "finding*")
    assert code == 0
    rows = {r["property"]: r for r in report["results"]}
    for f in FINDINGS:
        row = rows[f"finding:{f.name}"]
        answer = row["in_0_5_23"]
        assert answer in row["detail"]
        if f.name in STILL_IN_0523:
            assert answer.startswith("still has it")
        elif f.name in AMD_ONLY or f.name in CP_ONLY or f.name in FIXED_BY_23748:
            assert answer.startswith("not asked")
        else:
            assert answer.startswith("no longer has it")
        if "fixed in 0.5.23" in f.status:
            assert answer.startswith("no longer has it"), f.name
