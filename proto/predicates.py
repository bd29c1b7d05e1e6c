"""The global predicates Q and V and the helper of PR #23748, shaped as SGLang writes them.

SGLang reads the server configuration from globals; here it is the explicit argument `c`.
"""
from __future__ import annotations

from .config import MoeA2ABackend, MoeRunnerBackend, Quantization, ServerConfig


def should_use_flashinfer_cutlass_moe_fp4_allgather(c: ServerConfig) -> bool:
    """Q: quantise to FP4 before the all-gather; the combine reduce-scatters (layers/moe/utils.py)."""
    return (
        not c.disable_flashinfer_cutlass_moe_fp4_allgather
        and c.moe_a2a_backend == MoeA2ABackend.NONE
        and c.moe_runner_backend == MoeRunnerBackend.FLASHINFER_CUTLASS
        and c.enable_dp_attention
        and c.quantization == Quantization.MODELOPT_FP4
        and c.ep_size == c.attn_dp_size
    )


def should_use_dp_reduce_scatterv(c: ServerConfig) -> bool:
    """V: DP attention + EP replaces all-reduce and DP scatter by one reduce-scatterv (PR #22642)."""
    return (
        not should_use_flashinfer_cutlass_moe_fp4_allgather(c)
        and c.moe_a2a_backend == MoeA2ABackend.NONE
        and c.enable_dp_attention
        and c.attn_dp_size > 1
        and c.ep_size == c.attn_dp_size
    )


def should_skip_post_experts_all_reduce(
    c: ServerConfig,
    *,
    is_tp_path: bool,
    use_reduce_scatter: bool = False,
    should_allreduce_fusion: bool = False,
) -> bool:
    """The helper of #23748 (at 85376a61): a later step already sums the experts' output.

    Reasons, in SGLang's order: the next layer fuses the all-reduce (F), the communicator
    reduce-scatters (R), DP attention's reduce-scatterv (V), and on the TP path only the FP4
    all-gather path, whose combine already reduce-scattered (Q).
    """
    if should_allreduce_fusion or use_reduce_scatter:
        return True
    if should_use_dp_reduce_scatterv(c):
        return True
    return is_tp_path and should_use_flashinfer_cutlass_moe_fp4_allgather(c)
