"""Every validation rule, accepted and rejected, with its message."""
import pytest

from sumonce.proto import ConfigError, ServerConfig, validate
from sumonce.proto.config import MoeA2ABackend as A2A, MoeRunnerBackend as Runner, Quantization as Quant
from sumonce.proto.config import SpeculativeAlgorithm as Spec
from sumonce.proto.validation import RULES, violations

C = ServerConfig

ACCEPTED = [
    C(),
    C(tp_size=8, ep_size=8),
    C(tp_size=8, ep_size=2),
    C(tp_size=8, dp_size=8, ep_size=8, enable_dp_attention=True),
    C(tp_size=8, dp_size=2, enable_dp_attention=True),
    C(tp_size=4, dp_size=2),  # plain data-parallel replicas on one node
    C(tp_size=8, ep_size=8, moe_a2a_backend=A2A.DEEPEP),
    C(tp_size=4, dp_size=4, ep_size=4, enable_dp_attention=True, moe_runner_backend=Runner.FLASHINFER_CUTLASS,
      quantization=Quant.MODELOPT_FP4),
    C(tp_size=8, ep_size=8, moe_a2a_backend=A2A.FLASHINFER, moe_runner_backend=Runner.FLASHINFER_CUTLASS),
    C(tp_size=4, moe_runner_backend=Runner.CUTLASS, quantization=Quant.FP8),
    C(tp_size=4, dp_size=2, enable_dp_attention=True, speculative_algorithm=Spec.EAGLE),
    C(tp_size=8, dp_size=2, attn_cp_size=4),
    C(tp_size=8, enable_nsa_prefill_context_parallel=True, architecture="DeepseekV32ForCausalLM"),
    C(tp_size=8, nnodes=2),
]

REJECTED = [
    (C(tp_size=0), "sizes_positive", "must be at least 1"),
    (C(ep_size=-1), "sizes_positive", "must be at least 1"),
    (C(tp_size=4, ep_size=3), "ep_divides_tp", "--ep-size must divide --tp-size"),
    (C(tp_size=4, dp_size=3, enable_dp_attention=True), "dp_attention_divides_tp", "must divide --tp-size"),
    (C(tp_size=4, dp_size=1, enable_dp_attention=True), "dp_attention_needs_dp", "--dp-size > 1"),
    (C(tp_size=4, dp_size=2, nnodes=2), "multinode_dp_needs_dp_attention", "needs --enable-dp-attention"),
    (C(tp_size=4, nnodes=3), "nodes_divide_tp", "--nnodes must divide --tp-size"),
    (C(tp_size=4, attn_cp_size=2, enable_aiter_allreduce_fusion=True), "context_parallel_no_aiter_fusion",
     "--enable-aiter-allreduce-fusion needs --attn-cp-size 1"),
    (C(tp_size=4, moe_dp_size=2, attn_cp_size=1), "moe_dp_size_rules", "--moe-dp-size > 1 needs"),
    (C(tp_size=1, pp_size=2, nnodes=4), "nodes_divide_tp", "--nnodes must divide --tp-size * --pp-size"),
    (C(tp_size=2, pp_size=2, speculative_algorithm=Spec.EAGLE), "pp_without_speculative",
     "--pp-size > 1 needs no --speculative-algorithm"),
    (C(tp_size=8, ep_size=2, moe_a2a_backend=A2A.DEEPEP), "a2a_backend_sets_ep", "equals --tp-size"),
    (C(tp_size=8, ep_size=8, moe_a2a_backend=A2A.FLASHINFER), "flashinfer_a2a_needs_cutlass_runner",
     "flashinfer_cutlass"),
    (C(tp_size=4, moe_runner_backend=Runner.FLASHINFER_CUTLASS, quantization=Quant.FP8),
     "cutlass_runner_quantization", "modelopt_fp4"),
    (C(tp_size=8, ep_size=2, moe_runner_backend=Runner.FLASHINFER_CUTLASS), "cutlass_runner_ep", "--ep-size 1 or"),
    (C(tp_size=4, moe_runner_backend=Runner.FLASHINFER_CUTEDSL, quantization=Quant.FP8),
     "cutedsl_runner", "modelopt_fp4"),
    (C(tp_size=4, moe_runner_backend=Runner.FLASHINFER_TRTLLM, quantization=Quant.AWQ),
     "trtllm_runner_quantization", "flashinfer_trtllm needs"),
    (C(tp_size=4, moe_runner_backend=Runner.FLASHINFER_TRTLLM_ROUTED, quantization=Quant.MODELOPT_FP8),
     "trtllm_runner_quantization", "flashinfer_trtllm_routed needs"),
    (C(tp_size=4, ep_size=2, moe_runner_backend=Runner.CUTLASS, quantization=Quant.FP8),
     "fp8_cutlass_runner_ep", "--ep-size 1"),
    (C(tp_size=4, dp_size=2, enable_dp_attention=True, speculative_algorithm=Spec.NGRAM),
     "speculative_dp_attention", "EAGLE"),
    (C(tp_size=4, dp_size=2, attn_cp_size=4), "context_parallel_divides_tp", "--attn-cp-size"),
    (C(tp_size=8, enable_nsa_prefill_context_parallel=True), "nsa_prefill_cp", "DeepSeek V3.2"),
    (C(tp_size=4, enable_nsa_prefill_context_parallel=True, architecture="DeepseekV32ForCausalLM"),
     "nsa_prefill_cp", "--tp-size 8"),
]


@pytest.mark.parametrize("config", ACCEPTED)
def test_accepted(config):
    assert validate(config) is config
    assert violations(config) == []


@pytest.mark.parametrize("config,rule,text", REJECTED)
def test_rejected_names_rule_and_what_is_allowed(config, rule, text):
    with pytest.raises(ConfigError) as err:
        validate(config)
    assert err.value.rule == rule
    assert str(err.value).startswith(f"{rule}: ")
    assert text in str(err.value)
    assert "\n" not in str(err.value)


def test_every_rule_has_a_rejection_case_and_a_citation():
    covered = {rule for _, rule, _ in REJECTED}
    assert covered == {r.name for r in RULES}
    for r in RULES:
        assert r.holds.__doc__ and len(r.holds.__doc__) > 20, r.name


def test_size_rule_comes_first_so_others_never_divide_by_zero():
    assert [r.name for r in violations(C(tp_size=4, ep_size=0))] == ["sizes_positive"]
