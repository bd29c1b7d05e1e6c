"""The 0.5.23 era executed on a real (local, shared) Ray cluster with gloo: every step of the FFN
exit, hunyuan_v3's block sum, dwdp, each measured from the numbers and equal to proto.models_0523's
prediction; where the two eras decide differently, the real collectives follow the case's era."""
import pytest

from sumonce.actors.cases import Case, sweep
from sumonce.actors.conformance import run_cases
from sumonce.proto import boundary, catalogue, models_0523, semantics
from sumonce.proto.boundary import Exit
from sumonce.proto.config import ForwardState, GpuArch, ServerConfig
from sumonce.proto.eras import Era
from sumonce.proto.models_0523 import SumsAt
from sumonce.proto.sites import Version

pytestmark = pytest.mark.ray


def step_of(k):
    return "block" if k.variant == SumsAt.BLOCK.value else boundary.ffn_exit(k.config, k.state)


def one_per_step(cases):
    """The first case of each (world, exit step, dwdp, DP attention, mixing) in the 0.5.23 sweep."""
    seen, out = set(), []
    for k in cases:
        mixes = models_0523.mixes_tokens(k.config, models_0523.era_model(k.model))
        key = (k.world, step_of(k), k.config.dwdp_size > 1, k.config.attn_dp_size > 1, mixes)
        if key not in seen:
            seen.add(key)
            out.append(k)
    return out


def test_every_exit_step_on_real_collectives(ray_cluster):
    cases = one_per_step(sweep("small", eras=(Era.V0_5_23,)))
    assert {step_of(k) for k in cases} == set(Exit) | {"block"} and len(cases) >= 15
    rows = run_cases(cases)
    bad = [(r.case, r.predicted, r.measured, r.problem) for r in rows if not r.ok]
    assert not bad, bad[:3]
    for r in rows:
        if r.case.config.dwdp_size > 1:  # every expert on its own rows: the experts call's output is complete
            assert r.measured.steps == [("experts", ("ep",))] and r.measured.ep == 1, r.measured.steps
    mixed = [r for r in rows if r.case.variant == SumsAt.BLOCK.value and r.case.config.attn_dp_size > 1]
    assert any(r.measured.mixes and r.predicted_mixes for r in mixed)  # no DP gather in hunyuan_v3


def qwen(era, **kw):
    c = ServerConfig(architecture="Qwen3MoeForCausalLM", gpu_arch=GpuArch.SM90, tp_size=4, ep_size=2,
                     enable_flashinfer_allreduce_fusion=True, **kw)
    if era == Era.V0_5_11:
        return Case("qwen3_moe", "Qwen3MoeSparseMoeBlock.forward_normal", Version.HELPER, c, ForwardState(num_tokens=5))
    return Case("qwen3_moe", SumsAt.BOUNDARY.value, None, c, ForwardState(num_tokens=5), era=Era.V0_5_23)


def test_the_hybrid_layout_follows_the_cases_era(ray_cluster):
    """tp 4, ep 2 with F: 0.5.11's fused kernel sums over EP only (MoE-TP never summed); in 0.5.23
    the exit sums now, both axes merged into one TP all-reduce (utils.py:890). Measured, not assumed:
    the 0.5.23 run's counts are not what 0.5.11 predicts, so the check compares against the case's era."""
    old, new = run_cases([qwen(Era.V0_5_11), qwen(Era.V0_5_23)])
    assert old.ok and (old.measured.ep, old.measured.moe_tp) == (1, 0) and old.measured.max_err > 1e-2
    assert boundary.ffn_exit(new.case.config, new.case.state) == Exit.SUM_NOW
    assert new.ok and (new.measured.ep, new.measured.moe_tp) == (1, 1) and new.measured.max_err < 1e-4
    assert [axes for _, axes in new.measured.steps] == [("ep", "moe_tp")]  # one step: the TP group
    m = catalogue.model("qwen3_moe")
    c, s = new.case.config, new.case.state
    assert semantics.sum_counts(c, s, m, old.case.variant, Version.HELPER) != new.predicted
    assert new.predicted == models_0523.sum_counts(c, s, models_0523.era_model("qwen3_moe"))
