"""SGLang's constraints between server settings, one rule each, checked by `validate`.

Each rule cites where SGLang 0.5.11 enforces it (server_args.py unless named). Rules are stated on
the configuration as SGLang holds it after its silent adjustments (proto.flags.normalize applies
those); a rule that mirrors an adjustment says so. spec/ lifts every rule's predicate, and their
conjunction is the reachability constraint of every proof.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from .config import (
    MoeA2ABackend,
    MoeRunnerBackend,
    Quantization,
    ServerConfig,
    SpeculativeAlgorithm,
)

NSA_ARCHITECTURES = ("DeepseekV32ForCausalLM", "GlmMoeDsaForCausalLM")


class ConfigError(ValueError):
    """A configuration SGLang would refuse (or silently change): names the rule and what is allowed."""

    def __init__(self, rule: str, message: str):
        super().__init__(f"{rule}: {message}")
        self.rule = rule


@dataclass(frozen=True)
class Rule:
    name: str
    holds: Callable[[ServerConfig], bool]
    allowed: str
    """What is allowed, in SGLang's flag names (the error message)."""


def sizes_positive(c: ServerConfig) -> bool:
    """Every size is at least 1 (argparse types; parallel_state builds groups of these sizes)."""
    return (c.tp_size >= 1 and c.dp_size >= 1 and c.ep_size >= 1 and c.nnodes >= 1
            and c.attn_cp_size >= 1 and c.pp_size >= 1 and c.moe_dp_size >= 1 and c.dwdp_size >= 1)


def ep_divides_tp(c: ServerConfig) -> bool:
    """MoE groups have tp_size // ep_size ranks (engine._compute_parallelism_ranks; model_runner
    check_quantized_moe_compatibility: 'tp_size must be divisible by ep_size')."""
    return c.tp_size % c.ep_size == 0


def dp_attention_divides_tp(c: ServerConfig) -> bool:
    """_handle_data_parallelism: with DP attention, assert tp_size % dp_size == 0."""
    return not c.enable_dp_attention or c.tp_size % c.dp_size == 0


def dp_attention_needs_dp(c: ServerConfig) -> bool:
    """_handle_data_parallelism: dp_size == 1 switches DP attention off (an adjustment)."""
    return not c.enable_dp_attention or c.dp_size > 1


def multinode_dp_needs_dp_attention(c: ServerConfig) -> bool:
    """check_server_args: multi-node data parallel is not supported unless DP attention."""
    return not (c.dp_size > 1 and c.nnodes != 1 and not c.enable_dp_attention)


def nodes_divide_tp(c: ServerConfig) -> bool:
    """check_server_args (server_args.py:6774-6776): (tp_size * pp_size) % nnodes == 0."""
    return (c.tp_size * c.pp_size) % c.nnodes == 0


def pp_without_speculative(c: ServerConfig) -> bool:
    """check_server_args (server_args.py:6786-6789): pp_size > 1 refuses speculative decoding
    (and the overlap schedule, which SGLang turns off itself for pp, :3176-3177)."""
    return c.pp_size == 1 or c.speculative_algorithm == SpeculativeAlgorithm.NONE


def a2a_backend_sets_ep(c: ServerConfig) -> bool:
    """_handle_a2a_moe: every a2a backend but none sets ep_size = tp_size (an adjustment)."""
    return c.moe_a2a_backend == MoeA2ABackend.NONE or c.ep_size == c.tp_size


def flashinfer_a2a_needs_cutlass_runner(c: ServerConfig) -> bool:
    """_handle_a2a_moe: the flashinfer a2a backend asserts moe_runner_backend == flashinfer_cutlass."""
    return (c.moe_a2a_backend != MoeA2ABackend.FLASHINFER
            or c.moe_runner_backend == MoeRunnerBackend.FLASHINFER_CUTLASS)


def cutlass_runner_quantization(c: ServerConfig) -> bool:
    """_handle_moe_kernel_config: flashinfer_cutlass needs modelopt_fp4/fp8/mixed or no quantization."""
    return c.moe_runner_backend != MoeRunnerBackend.FLASHINFER_CUTLASS or c.quantization in (
        Quantization.MODELOPT_FP4, Quantization.MODELOPT_FP8, Quantization.MODELOPT_MIXED,
        Quantization.NONE)


def cutlass_runner_ep(c: ServerConfig) -> bool:
    """_handle_moe_kernel_config: flashinfer_cutlass and flashinfer_cutedsl need ep_size in [1, tp_size]."""
    return (c.moe_runner_backend != MoeRunnerBackend.FLASHINFER_CUTLASS
            and c.moe_runner_backend != MoeRunnerBackend.FLASHINFER_CUTEDSL
            or c.ep_size == 1 or c.ep_size == c.tp_size)


def cutedsl_runner(c: ServerConfig) -> bool:
    """_handle_moe_kernel_config: flashinfer_cutedsl needs modelopt_fp4 and a2a none or deepep."""
    return c.moe_runner_backend != MoeRunnerBackend.FLASHINFER_CUTEDSL or (
        c.quantization == Quantization.MODELOPT_FP4
        and (c.moe_a2a_backend == MoeA2ABackend.NONE or c.moe_a2a_backend == MoeA2ABackend.DEEPEP))


def trtllm_runner_quantization(c: ServerConfig) -> bool:
    """_handle_moe_kernel_config: the quantizations flashinfer_trtllm(_routed) accept."""
    if c.moe_runner_backend == MoeRunnerBackend.FLASHINFER_TRTLLM:
        return c.quantization in (
            Quantization.MODELOPT_FP4, Quantization.FP8, Quantization.MXFP8,
            Quantization.MODELOPT_FP8, Quantization.MODELOPT_MIXED,
            Quantization.COMPRESSED_TENSORS, Quantization.NONE)
    if c.moe_runner_backend == MoeRunnerBackend.FLASHINFER_TRTLLM_ROUTED:
        return c.quantization in (
            Quantization.FP8, Quantization.MXFP8, Quantization.MODELOPT_FP4, Quantization.NONE)
    return True


def fp8_cutlass_runner_ep(c: ServerConfig) -> bool:
    """_handle_moe_kernel_config: the cutlass runner with fp8/mxfp8 needs ep_size == 1."""
    return not (c.moe_runner_backend == MoeRunnerBackend.CUTLASS
                and (c.quantization == Quantization.FP8 or c.quantization == Quantization.MXFP8)
                and c.ep_size != 1)


def speculative_dp_attention(c: ServerConfig) -> bool:
    """_handle_speculative_decoding: DFLASH, STANDALONE and NGRAM reject DP attention."""
    return not c.enable_dp_attention or c.speculative_algorithm not in (
        SpeculativeAlgorithm.DFLASH, SpeculativeAlgorithm.STANDALONE, SpeculativeAlgorithm.NGRAM)


def context_parallel_divides_tp(c: ServerConfig) -> bool:
    """_handle_context_parallelism: attn_cp_size > 1 needs tp_size % (dp_size * attn_cp_size) == 0."""
    return c.attn_cp_size == 1 or c.tp_size % (c.dp_size * c.attn_cp_size) == 0


def context_parallel_no_aiter_fusion(c: ServerConfig) -> bool:
    """_handle_context_parallelism (server_args.py:2891-2925): aiter's fusion is refused with
    attn_cp_size > 1 or moe_dp_size > 1."""
    return not c.enable_aiter_allreduce_fusion or (c.attn_cp_size == 1 and c.moe_dp_size == 1)


def moe_dp_size_rules(c: ServerConfig) -> bool:
    """_handle_context_parallelism (server_args.py:2904-2926): moe_dp_size > 1 needs tp divisible by
    it, ep * moe_dp <= tp (== tp when ep > 1), pp 1, and attn_cp_size == moe_dp_size."""
    return c.moe_dp_size == 1 or (
        c.tp_size % c.moe_dp_size == 0 and c.ep_size * c.moe_dp_size <= c.tp_size
        and c.pp_size == 1 and (c.ep_size == 1 or c.ep_size * c.moe_dp_size == c.tp_size)
        and c.attn_cp_size == c.moe_dp_size)


def nsa_prefill_cp(c: ServerConfig) -> bool:
    """_handle_model_specific_adjustments: NSA prefill context parallel (round-robin mode) is for
    DeepSeek V3.2 / GLM-5 only, asserts tp_size == 8 and dp_size == 1."""
    return not c.enable_nsa_prefill_context_parallel or (
        c.architecture in NSA_ARCHITECTURES and c.tp_size == 8 and c.dp_size == 1)


RULES = (
    Rule("sizes_positive", sizes_positive,
         "--tp-size, --dp-size, --ep-size, --nnodes, --attn-cp-size, --pp-size, --moe-dp-size and "
         "--dwdp-size must be at least 1"),
    Rule("ep_divides_tp", ep_divides_tp, "--ep-size must divide --tp-size"),
    Rule("dp_attention_divides_tp", dp_attention_divides_tp,
         "with --enable-dp-attention, --dp-size must divide --tp-size"),
    Rule("dp_attention_needs_dp", dp_attention_needs_dp,
         "--enable-dp-attention needs --dp-size > 1 (SGLang turns it off at dp_size 1)"),
    Rule("multinode_dp_needs_dp_attention", multinode_dp_needs_dp_attention,
         "--dp-size > 1 over several nodes needs --enable-dp-attention"),
    Rule("nodes_divide_tp", nodes_divide_tp, "--nnodes must divide --tp-size * --pp-size"),
    Rule("pp_without_speculative", pp_without_speculative,
         "--pp-size > 1 needs no --speculative-algorithm"),
    Rule("a2a_backend_sets_ep", a2a_backend_sets_ep,
         "with --moe-a2a-backend other than none, --ep-size equals --tp-size (SGLang sets it)"),
    Rule("flashinfer_a2a_needs_cutlass_runner", flashinfer_a2a_needs_cutlass_runner,
         "--moe-a2a-backend flashinfer needs --moe-runner-backend flashinfer_cutlass"),
    Rule("cutlass_runner_quantization", cutlass_runner_quantization,
         "--moe-runner-backend flashinfer_cutlass needs --quantization modelopt_fp4, modelopt_fp8, "
         "modelopt_mixed or none"),
    Rule("cutlass_runner_ep", cutlass_runner_ep,
         "--moe-runner-backend flashinfer_cutlass/flashinfer_cutedsl needs --ep-size 1 or --tp-size"),
    Rule("cutedsl_runner", cutedsl_runner,
         "--moe-runner-backend flashinfer_cutedsl needs --quantization modelopt_fp4 and "
         "--moe-a2a-backend none or deepep"),
    Rule("trtllm_runner_quantization", trtllm_runner_quantization,
         "--moe-runner-backend flashinfer_trtllm needs fp8, mxfp8, modelopt_fp4/fp8/mixed, "
         "compressed-tensors or none; flashinfer_trtllm_routed needs fp8, mxfp8, modelopt_fp4 or none"),
    Rule("fp8_cutlass_runner_ep", fp8_cutlass_runner_ep,
         "--moe-runner-backend cutlass with fp8/mxfp8 needs --ep-size 1"),
    Rule("speculative_dp_attention", speculative_dp_attention,
         "--enable-dp-attention works with --speculative-algorithm EAGLE, EAGLE3, NEXTN or none"),
    Rule("context_parallel_divides_tp", context_parallel_divides_tp,
         "--attn-cp-size > 1 needs --tp-size divisible by --dp-size * --attn-cp-size"),
    Rule("context_parallel_no_aiter_fusion", context_parallel_no_aiter_fusion,
         "--enable-aiter-allreduce-fusion needs --attn-cp-size 1 and --moe-dp-size 1"),
    Rule("moe_dp_size_rules", moe_dp_size_rules,
         "--moe-dp-size > 1 needs --tp-size divisible by it, --ep-size * --moe-dp-size <= --tp-size "
         "(equal when --ep-size > 1), --pp-size 1 and --attn-cp-size equal to it"),
    Rule("nsa_prefill_cp", nsa_prefill_cp,
         "--enable-nsa-prefill-context-parallel needs a DeepSeek V3.2 / GLM-5 architecture, "
         "--tp-size 8 and --dp-size 1"),
)


def violations(c: ServerConfig) -> list[Rule]:
    """Every rule `c` breaks, in RULES order. The size rule comes first: others divide by sizes."""
    if not sizes_positive(c):
        return [RULES[0]]
    return [r for r in RULES if not r.holds(c)]


def validate(c: ServerConfig) -> ServerConfig:
    """Return `c` if SGLang accepts it; else raise ConfigError for the first rule it breaks."""
    for rule in violations(c):
        raise ConfigError(rule.name, rule.allowed)
    return c
