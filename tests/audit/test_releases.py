"""Against real wheels from the registry. Expectations are derived from the wheel's own text
(which files call the helper, how often) and from proto's catalogue, never typed in as a table."""
import re
import zipfile

import pytest

from sumonce.proto import catalogue
from sumonce.proto.eras import Era, era_of_release
from sumonce.audit.verdict import SiteVerdict
from sumonce.proto.sites import Group

DIFFERS, EQUIVALENT, HELPER, NOT_UNDERSTOOD = (SiteVerdict.DIFFERS, SiteVerdict.EQUIVALENT, SiteVerdict.HELPER,
                                              SiteVerdict.NOT_UNDERSTOOD)
from sumonce.audit.source import fetch

pytestmark = pytest.mark.sglang
GUARD = re.compile(r"if self\.(tp|ep)_size > 1 and not should_skip_post_experts_all_reduce\(")


def helper_guards_in_wheel(version):
    """(file stem, count) of `if self.X_size > 1 and not helper(` guards, read from the wheel."""
    with zipfile.ZipFile(fetch(version)) as z:
        out = {}
        for n in z.namelist():
            if n.startswith("sglang/srt/models/") and n.endswith(".py"):
                k = len(GUARD.findall(z.read(n).decode("utf-8-sig")))
                if k:
                    out[n.rsplit("/", 1)[-1][:-3]] = k
        return out


def test_0_5_11_helper_sites_are_the_catalogue(release_reports):
    rep = release_reports["0.5.11"]
    helper = [v for v in rep.sites if v.verdict == HELPER]
    from collections import Counter
    assert Counter(v.model for v in helper) == Counter(helper_guards_in_wheel("0.5.11"))
    assert len(helper) == len(catalogue.SITES) == 22
    assert len({v.model for v in helper}) == len(catalogue.MODELS) == 15
    assert rep.release.form.startswith("three-argument")
    assert all(c["verdict"] == "equivalent" for c in rep.release.checks)


def test_0_5_11_decoder_facts_match_catalogue(release_reports):
    rep = release_reports["0.5.11"]
    cat = [d for d in rep.decoders if "catalogued_as" in d]
    assert len(cat) == 15 and all(d["mismatches"] == [] for d in cat)


def test_0_5_11_flags_passed_as_catalogued(release_reports):
    rep = release_reports["0.5.11"]
    for site in catalogue.SITES:
        if site.level.value != "block":
            continue
        want = " and ".join(f for f, has in (("R", site.receives_R), ("F", site.receives_F)) if has)
        method = site.method
        got = [v for v in rep.sites if v.method == method and v.path == site.path.value]
        assert got and all(v.detail.startswith(f"passes {want}" if want else "passes neither") for v in got), method


def test_0_5_10_has_no_v_and_no_helper(release_reports):
    rep = release_reports["0.5.10.post1"]
    checks = {c["name"]: c["verdict"] for c in rep.release.checks}
    assert checks["should_use_dp_reduce_scatterv"] == "absent"
    assert rep.release.form == "none" and not any(v.verdict == HELPER for v in rep.sites)
    assert all("V = False" in v.detail for v in rep.sites if v.verdict in (EQUIVALENT, DIFFERS))


def test_0_5_10_qwen3_ep_guard_lacks_not_r(release_reports):
    """Before #23734 the qwen3_moe EP all-reduce ran on top of the reduce-scatter."""
    ep = [v for v in release_reports["0.5.10.post1"].sites if v.model == "qwen3_moe" and v.path == "ep"]
    assert len(ep) == 1 and ep[0].verdict == DIFFERS
    assert "EP axis" in ep[0].detail and "summed twice" in ep[0].detail and "R=True" in ep[0].detail


def test_0_5_23_judged_in_its_era(release_reports):
    """0.5.23 is read as the 0.5.23 era (from its code), and every predicate its utils define is
    checked against that era's proto: the helper against proto.decisions.HELPERS, V against
    proto.boundary's (tp == attn_dp), the boundary's decisions against proto.boundary."""
    rep = release_reports["0.5.23"]
    assert rep.era == Era.V0_5_23 and rep.era_reason.startswith("era 0.5.23 (one-argument helper")
    assert rep.release.form == "one-argument context form"
    checks = {c["name"]: c["verdict"] for c in rep.release.checks}
    assert set(checks) == {"should_use_flashinfer_cutlass_moe_fp4_allgather", "should_use_dp_reduce_scatterv",
                           "should_skip_post_experts_all_reduce", "post_experts_output_is_complete",
                           "reduce_moe_output (all-reduces)", "post_experts_all_reduce (reduce_ep)",
                           "post_experts_all_reduce (reduce_tp)", "sum_post_experts_output (reduce_ep)",
                           "sum_post_experts_output (reduce_tp)", "should_add_replicated_moe_output"}
    assert set(checks.values()) == {"equivalent"}


def test_0_5_23_v_and_helper_differ_from_0_5_11s():
    """The same utils read in the 0.5.11 era: V (tp == attn_dp since 0.5.17) and the helper differ."""
    from sumonce.audit.release import read_release
    from sumonce.audit.release_world import AuditWorld
    with zipfile.ZipFile(fetch("0.5.23")) as z:
        text = z.read("sglang/srt/layers/moe/utils.py").decode()
    checks = {c["name"]: c for c in read_release(AuditWorld(era=Era.V0_5_11), text).checks}
    assert checks["should_use_dp_reduce_scatterv"]["verdict"] == "differs"
    assert checks["should_skip_post_experts_all_reduce"]["verdict"] == "differs"


def test_0_5_23_helper_sites_compared_with_the_era(release_reports):
    """Every site through the helper or its wrappers is compared (nothing "not comparable"); they
    are exactly the wheel's calls of the helper and wrappers in model files' MoE blocks."""
    rep = release_reports["0.5.23"]
    helper = [v for v in rep.sites if v.verdict == HELPER]
    assert not any("not comparable" in v.detail for v in rep.sites)
    assert all("era 0.5.23" in v.detail or v.detail.startswith("F and R from the per-forward context")
               for v in helper)
    assert {v.model for v in helper} == {"beam", "deepseek_v2", "deepseek_v4_mhc", "hunyuan_v3", "iquest_q1",
                                         "qwen2_moe"}
    # muse_spark's `_is_cpu or ...` guard is read (is_cpu() is False on proto's GPUs), and grok's
    # `self.ffn = lambda x: tensor_model_parallel_all_reduce(self.moe_with_rmoe(x))` (grok.py:550,
    # bound under `if get_parallel().tp_size > 1` and `self.residual_moe`) is followed to forward's
    # `hidden_states = self.ffn(hidden_states)` (:612): nothing is left not understood
    assert not [v for v in rep.sites if v.verdict == NOT_UNDERSTOOD]
    (grok,) = [v for v in rep.sites if v.model == "grok"]
    assert (grok.method, grok.line, grok.group) == ("Grok1DecoderLayer.__init__", 550, Group.TP)
    assert grok.verdict == SiteVerdict.EQUIVALENT_HERE and grok.reach == ["self.num_experts > 0", "self.residual_moe"]


def test_each_release_names_its_era(release_reports):
    for version, rep in release_reports.items():
        assert rep.era == era_of_release(version), version


def test_compare_lists_the_helper_migration(release_reports):
    from sumonce.audit.report import compare
    changes = compare(release_reports["0.5.10.post1"], release_reports["0.5.11"])
    moved = {(c["model"], c["method"]) for c in changes if c["after"] == HELPER}
    assert ("qwen3_moe", "Qwen3MoeSparseMoeBlock.forward_normal") in moved
    assert all(v.verdict != NOT_UNDERSTOOD or v.detail for r in release_reports.values() for v in r.sites)


def test_0_5_23_decoders_are_compared_with_the_era_not_the_communicator(release_reports):
    """Issue 13: 0.5.23 has no layers/communicator.py, so its decoders are asked whether they sum at
    the stage boundary (proto.models_0523), not whether they hold a communicator: deepseek_v2 and
    qwen2_moe (the two the old audit reported as 'no communicator') agree with proto."""
    from sumonce.audit.decoder import boundary_mismatches
    decoders = {d["model"]: d for d in release_reports["0.5.23"].decoders if "catalogued_as" in d}
    assert {"deepseek_v2", "qwen2_moe", "hunyuan_v3"} <= set(decoders)
    assert all(d["mismatches"] == [] for d in decoders.values()), decoders
    # the check can fail: a boundary model whose file declares no stages, a block model that does
    assert boundary_mismatches("class Decoder: pass", True) == ["sums at: source the MoE block, proto the stage boundary"]
    assert boundary_mismatches("self.append_stages(x)", False) == ["sums at: source the stage boundary, proto the MoE block"]
