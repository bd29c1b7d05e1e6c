"""Q, V, F, R and the helper on tables of configurations."""
import pytest

from sumonce.proto import ForwardState as S, ServerConfig as C
from sumonce.proto.communicator import flashinfer_fusion_applies, scatters_hidden_states, should_allreduce_fusion, \
    use_reduce_scatter
from sumonce.proto.config import DpPaddingMode, GpuArch, MoeA2ABackend as A2A, MoeRunnerBackend as Runner, \
    Quantization as Quant, SpeculativeAlgorithm as Spec
from sumonce.proto.predicates import should_skip_post_experts_all_reduce as skip
from sumonce.proto.predicates import should_use_dp_reduce_scatterv as V
from sumonce.proto.predicates import should_use_flashinfer_cutlass_moe_fp4_allgather as Q

FP4 = dict(moe_runner_backend=Runner.FLASHINFER_CUTLASS, quantization=Quant.MODELOPT_FP4)
DPA = dict(tp_size=4, dp_size=4, ep_size=4, enable_dp_attention=True)


@pytest.mark.parametrize("config,q,v", [
    (C(), False, False),
    (C(**DPA), False, True),                                   # issue #23729's shape
    (C(**DPA, **FP4), True, False),                            # Q wins, V steps aside
    (C(**DPA, **FP4, disable_flashinfer_cutlass_moe_fp4_allgather=True), False, True),
    (C(tp_size=4, dp_size=2, ep_size=4, enable_dp_attention=True), False, False),  # ep != attn_dp
    (C(tp_size=4, dp_size=4, ep_size=4, enable_dp_attention=True, moe_a2a_backend=A2A.DEEPEP), False, False),
    (C(tp_size=4, dp_size=4, ep_size=4), False, False),        # dp replicas, no DP attention
    (C(tp_size=4, ep_size=4, **FP4), False, False),            # Q needs DP attention
])
def test_q_and_v(config, q, v):
    assert Q(config) is q
    assert V(config) is v


FUSED = C(tp_size=4, ep_size=4)  # Qwen3MoeForCausalLM on SM90 auto-enables the fusion


@pytest.mark.parametrize("config,state,f", [
    (FUSED, S(), True),
    (FUSED, S(num_tokens=2048), True),
    (FUSED, S(num_tokens=2049), False),
    (FUSED, S(num_tokens=0), False),
    (FUSED, S(is_last_layer=True), False),
    (C(tp_size=1), S(), False),
    (C(tp_size=4, gpu_arch=GpuArch.SM80), S(), False),
    (C(tp_size=4, flashinfer_available=False), S(), False),
    (C(tp_size=4, architecture="LLaDA2MoeModelLM"), S(), False),            # no auto-enable
    (C(tp_size=4, architecture="LLaDA2MoeModelLM", enable_flashinfer_allreduce_fusion=True), S(), True),
    (C(tp_size=4, enforce_disable_flashinfer_allreduce_fusion=True), S(), False),
    (C(tp_size=4, nnodes=2), S(), False),                                   # auto-enable is one node only
    (C(tp_size=4, dp_size=2, enable_dp_attention=True, enable_flashinfer_allreduce_fusion=True), S(), False),
    (C(tp_size=4, attn_cp_size=2), S(), False),                            # MoE-CP all-gather
    (C(tp_size=4, enable_attn_tp_input_scattered=True), S(attn_tp_input_scattered=True), False),
])
def test_f(config, state, f):
    assert should_allreduce_fusion(config, state) is f


def test_fusion_applies_only_on_sm90_sm100():
    for arch in GpuArch:
        want = arch in (GpuArch.SM90, GpuArch.SM100)
        assert flashinfer_fusion_applies(C(tp_size=2, gpu_arch=arch), S()) is want


@pytest.mark.parametrize("config,state,allow,r", [
    (C(**DPA), S(dp_padding_mode=DpPaddingMode.MAX_LEN), True, True),
    (C(**DPA), S(dp_padding_mode=DpPaddingMode.MAX_LEN), False, False),
    (C(**DPA), S(dp_padding_mode=DpPaddingMode.SUM_LEN), True, False),
    (C(**DPA, **FP4), S(dp_padding_mode=DpPaddingMode.MAX_LEN), True, False),  # no scatter under Q
    (C(tp_size=4), S(attn_tp_input_scattered=True), True, True),
    (C(tp_size=4), S(attn_tp_input_scattered=True, is_last_layer=True), True, False),
    (C(tp_size=8, enable_nsa_prefill_context_parallel=True), S(), True, True),
])
def test_r(config, state, allow, r):
    assert use_reduce_scatter(config, state, allow) is r


def test_scatter_mode_needs_dp_attention_and_no_a2a():
    assert scatters_hidden_states(C(**DPA))
    assert not scatters_hidden_states(C(tp_size=4))
    assert not scatters_hidden_states(C(**DPA, moe_a2a_backend=A2A.DEEPEP))


@pytest.mark.parametrize("config,is_tp,r,f,want", [
    (C(), True, False, False, False),
    (C(), False, True, False, True),
    (C(), True, False, True, True),
    (C(**DPA), False, False, False, True),        # V
    (C(**DPA, **FP4), True, False, False, True),  # Q on the TP path
    (C(**DPA, **FP4), False, False, False, False),  # ... but not on the EP path
])
def test_helper(config, is_tp, r, f, want):
    assert skip(config, is_tp_path=is_tp, use_reduce_scatter=r, should_allreduce_fusion=f) is want


def test_nextn_reads_as_eagle():
    assert C(speculative_algorithm=Spec.NEXTN).speculative_is_eagle
