"""The layer communicator's per-layer, per-batch decisions F and R (layers/communicator.py).

F (should_allreduce_fusion): hand the MoE output, still partial, to the next layer's fused
all-reduce + residual + RMSNorm. R (use_reduce_scatter): the communicator reduce-scatters the
MoE output itself. Both are computed by decoders that own a LayerCommunicator; `allow_reduce_scatter`
is that decoder's constructor argument.
"""
from __future__ import annotations

from .config import (
    FUSE_ALLREDUCE_MAX_BATCH_SIZE,
    DpPaddingMode,
    ForwardState,
    GpuArch,
    MoeA2ABackend,
    ServerConfig,
)
from .predicates import should_use_flashinfer_cutlass_moe_fp4_allgather


def flashinfer_fusion_applies(c: ServerConfig, s: ForwardState) -> bool:
    """apply_flashinfer_allreduce_fusion(batch) (0.5.11 layers/communicator.py:157-168): the fused
    kernel may run for this batch; flashinfer_available stands for flashinfer importable and
    `not is_flashinfer_allreduce_unavailable()` (its comm API present, its workspace created)."""
    return (
        (c.gpu_arch == GpuArch.SM90 or c.gpu_arch == GpuArch.SM100)
        and c.flashinfer_available
        and s.num_tokens > 0
        and s.num_tokens <= FUSE_ALLREDUCE_MAX_BATCH_SIZE
        and not c.enable_dp_attention
        and c.allreduce_fusion_enabled
    )


def aiter_fusion_may_apply(c: ServerConfig, s: ForwardState) -> bool:
    """F's AMD disjunct (layers/communicator.py:742-747): aiter, a non-empty batch, tp != 6 and
    --enable-aiter-allreduce-fusion (no DP-attention term here, unlike the norm's own check)."""
    return (c.is_amd and s.num_tokens > 0 and c.tp_size != 6
            and c.enable_aiter_allreduce_fusion)


def aiter_norm_fuses(c: ServerConfig, s: ForwardState) -> bool:
    """apply_aiter_all_reduce_fusion (layers/communicator.py:171-182) as prepare_attn tests it on
    the marked tensor: within aiter's size limits (next_norm_fused) and no DP attention."""
    return aiter_fusion_may_apply(c, s) and s.next_norm_fused and not c.enable_dp_attention


def should_allreduce_fusion(c: ServerConfig, s: ForwardState) -> bool:
    """F = should_fuse_mlp_allreduce_with_next_layer (0.5.11 layers/communicator.py:713-750)."""
    return (
        not c.moe_cp_allgather
        and not (c.enable_dp_attention and c.speculative_is_eagle)
        and not s.attn_tp_input_scattered
        and (flashinfer_fusion_applies(c, s) or aiter_fusion_may_apply(c, s))
        and not s.is_last_layer
        and c.tp_size > 1
    )


def scatters_hidden_states(c: ServerConfig) -> bool:
    """The post-MoE communicate function is `_scatter_hidden_states`: the MoE ran on all of the
    DP group's tokens (mlp mode FULL) and each attention-DP rank takes its own back.

    mlp mode is SCATTERED under an a2a backend or the FP4 all-gather (dispatch happens inside the
    experts call), MOE_FULL under the MoE-CP all-gather without NSA prefill CP, else FULL; FULL
    differs from the layer output mode TP_ATTN_FULL only when attn_dp_size > 1.
    """
    return (
        c.moe_a2a_backend == MoeA2ABackend.NONE
        and not should_use_flashinfer_cutlass_moe_fp4_allgather(c)
        and (not c.moe_cp_allgather or c.enable_nsa_prefill_context_parallel)
        and c.attn_dp_size > 1
    )


def use_reduce_scatter(c: ServerConfig, s: ForwardState, allow_reduce_scatter: bool) -> bool:
    """R = LayerCommunicator.should_use_reduce_scatter."""
    return allow_reduce_scatter and (
        (scatters_hidden_states(c) and s.dp_padding_mode == DpPaddingMode.MAX_LEN)
        or c.enable_nsa_prefill_context_parallel
        or (s.attn_tp_input_scattered and not s.is_last_layer)
    )
