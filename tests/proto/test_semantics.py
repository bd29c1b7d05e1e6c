"""Reduction semantics: how many times each axis is summed, on configurations with known answers."""
import pytest

from sumonce.proto import ForwardState as S, ServerConfig as C, Version
from sumonce.proto.catalogue import MODELS, SITES, model
from sumonce.proto.config import DpPaddingMode, MoeRunnerBackend as Runner, Quantization as Quant
from sumonce.proto.semantics import exactly_once, sum_counts

# Issue #23729: Qwen3 MoE, DP attention + EP, no DeepEP.
ISSUE_23729 = C(tp_size=4, dp_size=4, ep_size=4, enable_dp_attention=True)
QWEN3 = model("qwen3_moe")
Q3 = QWEN3.variants[0]


def test_issue_23729_sums_ep_twice_before_23731_and_once_with_the_helper():
    before = sum_counts(ISSUE_23729, S(), QWEN3, Q3, Version.PRE_23731)
    helper = sum_counts(ISSUE_23729, S(), QWEN3, Q3, Version.HELPER)
    assert (before.ep, helper.ep) == (2, 1)
    assert not exactly_once(ISSUE_23729, S(), QWEN3, Q3, Version.PRE_23731)
    assert exactly_once(ISSUE_23729, S(), QWEN3, Q3, Version.HELPER)
    assert exactly_once(ISSUE_23729, S(), QWEN3, Q3, Version.LEGACY)


def test_issue_23431_minimax_tp8_dp8_ep8_double_reduces_before_23732():
    c = C(tp_size=8, dp_size=8, ep_size=8, enable_dp_attention=True, architecture="MiniMaxM2ForCausalLM")
    m = model("minimax_m2")
    assert sum_counts(c, S(), m, m.variants[0], Version.PRE_23732).ep == 2
    assert sum_counts(c, S(), m, m.variants[0], Version.HELPER).ep == 1


def test_plain_tp_without_absorbers_sums_once_at_the_site():
    for m in MODELS:
        c = C(tp_size=4, architecture=m.architectures[0], gpu_arch="sm80")  # no F on SM80
        for v in m.versions:
            for variant in m.variants:
                assert sum_counts(c, S(), m, variant, v).moe_tp == 1, (m.name, v, variant)
                assert exactly_once(c, S(), m, variant, v)


def test_reduce_scatter_absorbs_when_the_sites_skip():
    c = C(tp_size=4, dp_size=2, ep_size=4, enable_dp_attention=True)  # ep != attn_dp: no V
    s = S(dp_padding_mode=DpPaddingMode.MAX_LEN)
    n = sum_counts(c, s, QWEN3, Q3, Version.HELPER)
    assert (n.ep, n.moe_tp) == (1, 1)
    # before #23734 the EP all-reduce ran on top of the reduce-scatter
    assert sum_counts(c, s, QWEN3, Q3, Version.PRE_23734).ep == 2


def test_fp4_allgather_combine_sums_before_the_sites():
    c = C(tp_size=4, dp_size=4, ep_size=4, enable_dp_attention=True,
          moe_runner_backend=Runner.FLASHINFER_CUTLASS, quantization=Quant.MODELOPT_FP4,
          architecture="Llama4ForCausalLM")
    m = model("llama4")
    assert sum_counts(c, S(), m, m.variants[0], Version.HELPER).ep == 1
    assert sum_counts(c, S(), m, m.variants[0], Version.LEGACY).ep == 2  # legacy guard had no Q term


def test_fused_next_layer_sums_one_group():
    c = C(tp_size=4, ep_size=4)  # F on: auto-enabled for Qwen3 on SM90
    assert sum_counts(c, S(), QWEN3, Q3, Version.HELPER) == sum_counts(c, S(), QWEN3, Q3, Version.LEGACY)
    n = sum_counts(c, S(), QWEN3, Q3, Version.HELPER)
    assert (n.ep, n.moe_tp) == (1, 0)  # moe_tp has size 1 here: nothing owed
    assert exactly_once(c, S(), QWEN3, Q3, Version.HELPER)


def test_catalogue_holds_22_sites_in_15_models_at_da175b96():
    assert len(SITES) == 22
    assert len({s.model for s in SITES}) == 15
    assert len(MODELS) == 15
    for s in SITES:
        assert s.guard(Version.LEGACY).__doc__.startswith("da175b96")
        assert s.guard(Version.HELPER).__doc__.startswith("85376a61")


def test_history_versions_are_where_the_facts_put_them():
    with_23732 = {m.name for m in MODELS if Version.PRE_23732 in m.versions}
    assert with_23732 == {m.name for m in MODELS} - {"qwen3_moe", "qwen2_moe"}
    assert len(with_23732) == 13
    assert set(QWEN3.versions) >= {Version.PRE_23731, Version.PRE_23734}


@pytest.mark.parametrize("name", ["exaone_moe", "llada2", "llama4"])
def test_r_only_sites_do_not_receive_f(name):
    for s in model(name).sites:
        assert not s.receives_F and s.receives_R
