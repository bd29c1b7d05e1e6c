"""`sumonce prove` end to end, three-valued verdicts, counterexamples matching upstream issues."""
import json

import pytest

from sumonce.spec import check, cli, lift
from sumonce.spec.properties import Expect, Kind, Property, all_properties
from sumonce.spec.solve import Status
from sumonce.spec.world import World


@pytest.fixture(scope="module")
def proved(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cx")
    import contextlib
    import io
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = cli.prove_main(["--json", "--counterexamples", str(folder)])
    return code, json.loads(out.getvalue()), folder


def by_name(report):
    return {r["property"]: r for r in report["results"]}


def test_prove_passes_and_every_expectation_is_met(proved):
    code, report, _ = proved
    assert code == 0
    assert report["passed"] is True
    assert all(r["passed"] and r["lift_ok"] for r in report["results"])
    kinds = {r["kind"] for r in report["results"]}
    assert kinds == {"lemma", "no-drift", "refactor", "exactly-once", "finding", "history", "difference"}
    from sumonce.proto.eras import Era
    assert {r["era"] for r in report["results"]} == {e.value for e in Era}


def test_refactor_equivalence_names_the_q_term_sites(proved):
    _, report, _ = proved
    rows = by_name(report)
    q_term = sorted(n.split(":")[1] for n, r in rows.items() if r["kind"] == "refactor" and "Q term" in r["detail"])
    assert q_term == ["bailing_moe_linear", "exaone_moe", "llada2", "llama4"]
    for n, r in rows.items():
        if r["kind"] == "refactor" and "Q term" in r["detail"]:
            assert r["witness"]["Q"] is True
            # Q needs DP attention, which exaone_moe cannot run (no DP gather: issue 11)
            runs = "exaone_moe" not in n
            assert ("; reachable for" in r["detail"]) == runs, n
    # hunyuan_v3's MoE-TP guard lacks Q too, but Q forces ep == tp, so moe_tp == 1 and it never matters
    hunyuan = [r for n, r in rows.items() if n.startswith("site-equivalent:hunyuan_v3") and n.endswith(":tp")]
    assert len(hunyuan) == 2 and all(r["detail"] == "identical to the legacy guard" for r in hunyuan)


def test_issue_23729_counterexample_is_dp_attention_with_ep(proved):
    _, report, _ = proved
    cx = by_name(report)["history:qwen3_moe@pre-23731:#23729"]["counterexample"]
    c = cx["config"]
    assert c["enable_dp_attention"] and c["moe_a2a_backend"] == "none"
    assert c["ep_size"] == c["dp_size"] > 1 and cx["V"] is True
    assert "EP axis" in cx["axes"] and "summed 2 times" in cx["axes"]
    assert cx["python_claim"] is False
    assert "#23729" in cx["upstream"]


def test_issue_23734_counterexample_reduce_scatters_with_ep(proved):
    _, report, _ = proved
    cx = by_name(report)["history:qwen3_moe@pre-23734:#23734"]["counterexample"]
    assert cx["block_R"] is True and cx["config"]["ep_size"] > 1 and cx["V"] is False
    assert "EP axis" in cx["axes"]


def test_issue_23431_counterexamples_for_the_13_models(proved):
    _, report, _ = proved
    rows = {n: r for n, r in by_name(report).items() if n.startswith("history:") and "pre-23732" in n}
    assert len(rows) == 13
    refuted = sorted(n.split(":")[1].split("@")[0] for n, r in rows.items() if r["verdict"] == "refuted")
    assert len(refuted) == 13
    for n, r in rows.items():
        cx = r["counterexample"]
        assert cx["V"] is True
        if cx["model"] in ("exaone_moe", "hunyuan_v3"):
            # 0.5.11 exaone_moe.py:511-535, hunyuan_v3.py:386-408: no DP gather, so the old
            # all-reduce summed different DP ranks' tokens (it was never "the only, right sum").
            assert cx["outcome"] == "a sum over ranks holding different tokens (mixes tokens; a hang where counts differ)"
            assert cx["label"].startswith("unsupported: model lacks DP attention support")


def test_counterexamples_written_for_repro(proved):
    _, _, folder = proved
    files = sorted(folder.glob("*.json"))
    assert files
    data = json.loads(files[0].read_text())
    assert {"model", "variant", "version", "config", "state"} <= set(data)


def test_without_known_findings_the_run_fails(capsys):
    assert cli.prove_main(["--only", "exactly-once:minimax_m2@helper", "--no-known-findings"]) == 1
    assert "refuted" in capsys.readouterr().out


def test_bad_arguments_exit_2(capsys):
    assert cli.prove_main(["--only", "no-such-property"]) == 2
    with pytest.raises(SystemExit) as e:
        cli.prove_main(["--timeout-ms", "x"])
    assert e.value.code == 2


def hard_claim(c, s, F, R):
    """Pell's x^2 - 991 y^2 = 1 has no positive solution: false, but the smallest one has 30
    digits, out of reach for z3's nonlinear arithmetic in 50 ms."""
    x, y = c.tp_size, c.dp_size
    return x * x - 991 * y * y != 1


def test_unknown_is_a_failure_never_a_pass(monkeypatch, capsys):
    w = World()
    for expect in Expect:
        p = Property("hard", "Fermat, n = 3.", "sizes", Kind.LEMMA, hard_claim, expect=expect)
        r = check.run_property(w, p, timeout_ms=50)
        assert r.status == Status.UNKNOWN
        assert not r.passed
    monkeypatch.setattr(cli, "all_properties", lambda known_findings=True, era="all": [
        Property("hard", "Fermat, n = 3.", "sizes", Kind.LEMMA, hard_claim)])
    assert cli.prove_main(["--timeout-ms", "50"]) == 1
    assert "unknown" in capsys.readouterr().out


def test_lift_refuses_what_it_cannot_handle_naming_function_and_line():
    def uses_a_while_loop(c):
        while c.tp_size > 1:
            return True
        return False
    with pytest.raises(lift.LiftError) as err:
        World().lift(uses_a_while_loop, World().c)
    assert "uses_a_while_loop" in str(err.value) and "test_prove.py:" in str(err.value)
    assert "While" in str(err.value)


def test_lift_refuses_loops_over_symbolic_values():
    def loops(c):
        for x in c.tp_size:
            return x
    with pytest.raises(lift.LiftError, match="concrete tuple or list"):
        World().lift(loops, World().c)


def test_every_property_is_listed(capsys):
    assert cli.prove_main(["--list"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == len(all_properties())


def test_every_printed_witness_is_reachable_or_labelled(proved):
    """Section 2 of issue 11: a counterexample is a configuration validation accepts, in a forward
    state SGLang can run, that the model can serve and that does not crash (0.5.11
    parallel_state.py:783), or it says which of those it is not."""
    from sumonce.proto import catalogue, semantics, validate
    from sumonce.proto.serial import config_from_dict, state_from_dict
    _, report, _ = proved
    seen = labelled = 0
    for r in report["results"]:
        for cx in (r.get("counterexample"), r.get("reachable_witness")):
            if not cx or "model" not in cx:
                continue
            c, s = config_from_dict(cx["config"]), state_from_dict(cx["state"])
            m = catalogue.model(cx["model"])
            validate(c)
            assert semantics.forward_state_valid(c, s), r["property"]
            seen += 1
            runs = semantics.model_supports(c, m) and not semantics.crashes(c, s, m)
            if not runs:
                labelled += 1
                assert cx.get("label"), f"{r['property']}: unreachable witness without a label"
            else:
                assert not cx.get("label")
    assert seen > 30 and labelled >= 3  # exaone_moe/hunyuan_v3 DP attention, the reduce_scatterv crash


def test_findings_say_reachability_and_upstream_status(proved):
    _, report, _ = proved
    findings = [r for r in report["results"] if r["kind"] == "finding"]
    assert findings and all(r["status"] and r["reachable"] for r in findings)
    rows = by_name(report)
    assert rows["finding:model-lacks-dp-attention-gather"]["reachable"].startswith("reached only where")
    assert rows["finding:fused-kernel-declined-norm-without-allreduce"]["reachable"].startswith("reachable")
    assert "0.5.23" in rows["finding:reduce-scatterv-crashes-with-attention-tp"]["status"]


def test_history_labels_name_their_own_issue(proved):
    """history:qwen3_moe@pre-23731:#23734 printed #23729's report before issue 11."""
    _, report, _ = proved
    for n, r in by_name(report).items():
        if n.startswith("history:"):
            issue = n.rsplit(":", 1)[1]
            assert r["counterexample"]["upstream"].startswith(issue), n


def test_23734_witness_is_reachable_without_attn_tp_input_scattered(proved):
    """0.5.11 layers/communicator.py:260-272: only DeepSeek (q_lora_rank, no NSA, piecewise CUDA
    graph off) may scatter attention-TP input; qwen3_moe reaches R through DP attention MAX_LEN."""
    _, report, _ = proved
    for name in ("history:qwen3_moe@pre-23734:#23734", "history:qwen3_moe@pre-23731:#23734"):
        cx = by_name(report)[name]["counterexample"]
        assert cx["state"]["attn_tp_input_scattered"] is False
        assert cx["config"]["enable_dp_attention"] and cx["state"]["dp_padding_mode"] == "max_len"
        assert not cx["label"]
