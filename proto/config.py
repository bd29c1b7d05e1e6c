"""Server configuration and per-forward state, in SGLang's own names.

ServerConfig holds what a user passes to `python -m sglang.launch_server` (after SGLang's own
adjustments, see proto.flags.normalize); ForwardState holds what changes per layer and per batch.
Both are frozen: a decision is a pure function of them.

NOTE: every property below is written in the small Python subset that spec/ lifts into z3
(boolean operators, comparisons, + - * //, conditional expressions, attribute access and calls of
other proto functions). Keep it that way: the lifter refuses anything else, naming the line.
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from enum import StrEnum


class MoeA2ABackend(StrEnum):
    """--moe-a2a-backend: how tokens travel to the experts (layers/moe/utils.py)."""
    NONE = "none"
    DEEPEP = "deepep"
    MOONCAKE = "mooncake"
    NIXL = "nixl"
    MORI = "mori"
    ASCEND_FUSEEP = "ascend_fuseep"
    FLASHINFER = "flashinfer"
    PPLX = "pplx"
    """From 0.5.17 (0.5.23 layers/moe/utils.py:47); refused by 0.5.11 (proto.eras.accepts)."""
    FLASHINFER_MEGAMOE = "flashinfer_megamoe"
    """From 0.5.20 (0.5.23 layers/moe/utils.py:48); refused by 0.5.11 (proto.eras.accepts)."""


class BoundaryReduction(StrEnum):
    """--boundary-reduction (0.5.21+): which reduce-scatters a stage boundary may use to complete
    a sum (0.5.23 layers/layer_boundary/factories.py:152-159); auto resolves per architecture
    (0.5.23 arg_groups/boundary_reduction.py:28-54). Absent in 0.5.11 (proto.eras.accepts)."""
    AUTO = "auto"
    AR = "ar"
    RS = "rs"
    RSV = "rsv"
    RS_RSV = "rs+rsv"


# 0.5.23 arg_groups/boundary_reduction.py:7-13: auto resolves to rsv for these; MoE models not
# listed there (nor in _AR_ARCHITECTURES, :14-25, which holds no MoE model proto catalogues) get
# rs+rsv (:54).
RSV_ARCHITECTURES = ("BailingMoELinearForCausalLM", "BailingMoeV2_5ForCausalLM",
                     "LongcatFlashForCausalLM", "LongcatFlashForCausalLMNextN",
                     "Step3VLForConditionalGeneration")


class MoeRunnerBackend(StrEnum):
    """--moe-runner-backend: which kernels run the experts (layers/moe/utils.py)."""
    AUTO = "auto"
    DEEP_GEMM = "deep_gemm"
    TRITON = "triton"
    TRITON_KERNELS = "triton_kernel"
    FLASHINFER_TRTLLM = "flashinfer_trtllm"
    FLASHINFER_TRTLLM_ROUTED = "flashinfer_trtllm_routed"
    FLASHINFER_CUTLASS = "flashinfer_cutlass"
    FLASHINFER_MXFP4 = "flashinfer_mxfp4"
    FLASHINFER_CUTEDSL = "flashinfer_cutedsl"
    CUTLASS = "cutlass"
    MARLIN = "marlin"
    AITER = "aiter"


class Quantization(StrEnum):
    """--quantization, the methods that matter to the MoE communication decisions."""
    NONE = "none"
    FP8 = "fp8"
    MODELOPT_FP4 = "modelopt_fp4"
    MODELOPT_FP8 = "modelopt_fp8"
    MODELOPT_MIXED = "modelopt_mixed"
    MXFP8 = "mxfp8"
    MXFP4 = "mxfp4"
    W4AFP8 = "w4afp8"
    AWQ = "awq"
    GPTQ = "gptq"
    COMPRESSED_TENSORS = "compressed-tensors"


class SpeculativeAlgorithm(StrEnum):
    """--speculative-algorithm (NEXTN is read as EAGLE by SGLang)."""
    NONE = "none"
    EAGLE = "eagle"
    EAGLE3 = "eagle3"
    NEXTN = "nextn"
    STANDALONE = "standalone"
    NGRAM = "ngram"
    DFLASH = "dflash"


class GpuArch(StrEnum):
    """The accelerator the server runs on: only SM90 and SM100 get flashinfer's fused kernel;
    the AMD ones (gfx*) run aiter's fused all-reduce + RMSNorm instead (_use_aiter)."""
    SM80 = "sm80"
    SM90 = "sm90"
    SM100 = "sm100"
    SM120 = "sm120"
    GFX942 = "gfx942"
    GFX950 = "gfx950"
    CPU = "cpu"


class DpPaddingMode(StrEnum):
    """How DP attention pads the gathered tokens (forward_batch.dp_padding_mode)."""
    MAX_LEN = "max_len"
    SUM_LEN = "sum_len"


# Architectures for which SGLang 0.5.11 switches enable_flashinfer_allreduce_fusion on by itself
# (server_args.py, _handle_model_specific_adjustments).
AUTO_FUSION_ARCHITECTURES = (
    "DeepseekV3ForCausalLM",
    "DeepseekV32ForCausalLM",
    "GptOssForCausalLM",
    "GlmMoeDsaForCausalLM",
    "Glm4MoeForCausalLM",
    "Glm4MoeLiteForCausalLM",
    "Qwen3MoeForCausalLM",
    "Qwen3NextForCausalLM",
    "KimiK25ForConditionalGeneration",
    "Qwen3_5MoeForConditionalGeneration",
    "Qwen3_5ForConditionalGeneration",
)

# flashinfer's fused all-reduce handles at most this many tokens (FUSE_ALLREDUCE_MAX_BATCH_SIZE,
# 0.5.11 layers/communicator.py:154; the workspace's max_token_num, flashinfer_comm_fusion.py:606).
FUSE_ALLREDUCE_MAX_BATCH_SIZE = 2048

# Architectures whose model calls AttnTpContext.init_context with q_lora_rank and not NSA
# (0.5.11 models/deepseek_v2.py:2225-2226; NSA = index_topk set, configs/model_config.py:85-105,
# which DeepSeek V3.2 and GLM-5 always have). Only they may keep attention-TP input scattered.
# NOTE: DeepSeek-V2-Lite has no q_lora_rank; this over-approximates it as having one.
ATTN_TP_SCATTER_ARCHITECTURES = ("DeepseekV2ForCausalLM", "DeepseekV3ForCausalLM")


@dataclass(frozen=True)
class ServerConfig:
    """One SGLang server (one model replica group), as the MoE all-reduce decisions see it."""

    tp_size: int = 1
    """Tensor-parallel size: every GPU of one model replica."""
    dp_size: int = 1
    """Data-parallel size: attention DP ranks with DP attention, whole replicas without."""
    ep_size: int = 1
    """Expert-parallel size; the MoE tensor-parallel size is tp_size // ep_size."""
    enable_dp_attention: bool = False
    """Attention runs data-parallel over dp_size groups of tp_size // dp_size GPUs."""
    moe_a2a_backend: MoeA2ABackend = MoeA2ABackend.NONE
    moe_runner_backend: MoeRunnerBackend = MoeRunnerBackend.AUTO
    quantization: Quantization = Quantization.NONE
    disable_flashinfer_cutlass_moe_fp4_allgather: bool = False
    """NOTE: SGLang forces this on only around a speculative draft model, never for the target."""
    enable_flashinfer_allreduce_fusion: bool = False
    """The user's flag; SGLang may switch it on by itself (see allreduce_fusion_enabled)."""
    enforce_disable_flashinfer_allreduce_fusion: bool = False
    architecture: str = "Qwen3MoeForCausalLM"
    """The model's architecture name (config.json 'architectures'), for the fusion auto-enable."""
    gpu_arch: GpuArch = GpuArch.SM90
    flashinfer_available: bool = True
    """flashinfer is importable and its all-reduce workspace could be created."""
    speculative_algorithm: SpeculativeAlgorithm = SpeculativeAlgorithm.NONE
    nnodes: int = 1
    attn_cp_size: int = 1
    """Attention context-parallel size; above 1 the MoE runs on tokens all-gathered over CP ranks."""
    enable_nsa_prefill_context_parallel: bool = False
    enable_attn_tp_input_scattered: bool = False
    """Let MLA models keep attention-TP input scattered (AttnTpContext.allow_input_scattered)."""
    disable_piecewise_cuda_graph: bool = False
    """--disable-piecewise-cuda-graph as SGLang holds it (it also sets it itself, e.g. under DP
    attention or pp_size > 1: server_args.py:1194-1212)."""
    moe_dp_size: int = 1
    """MoE data-parallel size (context parallelism's MoE side); above 1 the MoE groups cover
    tp_size // moe_dp_size ranks, outside the facts the sum model follows (semantics.in_scope)."""
    pp_size: int = 1
    """Pipeline-parallel size: stages of consecutive layers, each on its own TP group."""
    enable_aiter_allreduce_fusion: bool = False
    """AMD: fuse the next layer's all-reduce + RMSNorm with aiter (never switched on by SGLang)."""
    h20_device: bool = False
    """The GPU is an H20 (SM90): SGLang leaves the fusion auto-enable off (server_args.py:2327)."""
    dwdp_size: int = 1
    """0.5.17+: distributed weight data parallelism; above 1 every rank computes its own tokens
    with all experts (0.5.23 layers/moe/utils.py:769). Absent in 0.5.11 (proto.eras.accepts)."""
    boundary_reduction: BoundaryReduction = BoundaryReduction.AUTO
    """0.5.21+: the reduce-scatters a stage boundary may use (BoundaryReduction)."""
    shared_expert_tp1: bool = False
    """The environment switch SGLANG_SHARED_EXPERT_TP1=1 (0.5.12+, 0.5.12 environ.py:637; absent
    in 0.5.10.post1 and 0.5.11): the MoE blocks that read it build their shared expert with tp 1,
    replicated on every rank (proto.shared_expert). SGLang refuses no combination with it; it only
    relaxes the quantized-weight block-size check (0.5.23 moe_ep_setup.py:168)."""

    @property
    def attn_dp_size(self) -> int:
        """Attention DP size: dp_size under DP attention, else 1."""
        return self.dp_size if self.enable_dp_attention else 1

    @property
    def attn_tp_size(self) -> int:
        """Attention TP size, SGLang's get_attention_tp_size(): what is left of TP after attention DP
        and attention CP, tp // attn_dp // attn_cp (0.5.11 layers/dp_attention.py:244; the same
        line in every release from 0.5.10.post1 (:241) to 0.5.18 (:329); 0.5.23 runtime_context.py
        :73-76). Without attention CP (the actors' only case, actors.cases) the ranks of one
        attention-DP rank are the attention-TP group; with it they are attn_cp * attn_tp ranks."""
        return self.tp_size // self.attn_dp_size // self.attn_cp_size

    @property
    def moe_tp_size(self) -> int:
        """MoE tensor-parallel size: the slices of each expert's intermediate dimension."""
        return self.tp_size // self.ep_size

    @property
    def speculative_is_eagle(self) -> bool:
        """SpeculativeAlgorithm.is_eagle(): EAGLE, EAGLE3, and NEXTN (read as EAGLE)."""
        return (self.speculative_algorithm == SpeculativeAlgorithm.EAGLE
                or self.speculative_algorithm == SpeculativeAlgorithm.EAGLE3
                or self.speculative_algorithm == SpeculativeAlgorithm.NEXTN)

    @property
    def moe_cp_allgather(self) -> bool:
        """is_enable_moe_cp_allgather(): attn_cp_size > moe_dp_size (layers/dp_attention.py:599-604)."""
        return self.attn_cp_size > self.moe_dp_size

    @property
    def is_amd(self) -> bool:
        """_use_aiter: an AMD GPU (SGLANG_USE_AITER is assumed on there)."""
        return self.gpu_arch == GpuArch.GFX942 or self.gpu_arch == GpuArch.GFX950

    @property
    def attn_tp_input_scattered_allowed(self) -> bool:
        """AttnTpContext.init_context (0.5.11 layers/communicator.py:260-272): the flag, CUDA, a
        DeepSeek-family model with q_lora_rank and no NSA (the only caller, deepseek_v2.py:2226),
        tp > 1, no DP attention, a2a none, piecewise CUDA graph off, not EAGLE3."""
        return (self.enable_attn_tp_input_scattered
                and self.architecture in ATTN_TP_SCATTER_ARCHITECTURES
                and self.disable_piecewise_cuda_graph
                and self.gpu_arch != GpuArch.CPU
                and not self.is_amd
                and not self.enable_nsa_prefill_context_parallel
                and self.tp_size > 1
                and not self.enable_dp_attention
                and self.moe_a2a_backend == MoeA2ABackend.NONE
                and self.speculative_algorithm != SpeculativeAlgorithm.EAGLE3)

    @property
    def resolved_boundary_reduction(self) -> BoundaryReduction:
        """boundary_reduction after auto (0.5.23 arg_groups/boundary_reduction.py:28-65)."""
        if self.boundary_reduction != BoundaryReduction.AUTO:
            return self.boundary_reduction
        if self.architecture in RSV_ARCHITECTURES:
            return BoundaryReduction.RSV
        return BoundaryReduction.RS_RSV

    @property
    def allreduce_fusion_enabled(self) -> bool:
        """enable_flashinfer_allreduce_fusion after SGLang's auto-enable and enforce-disable
        (server_args.py:2326-2360): the auto-enable leaves H20 devices out."""
        auto = (self.architecture in AUTO_FUSION_ARCHITECTURES
                and (self.gpu_arch == GpuArch.SM90 or self.gpu_arch == GpuArch.SM100)
                and self.tp_size > 1
                and not self.enable_dp_attention
                and self.nnodes == 1
                and not self.h20_device
                and self.moe_a2a_backend == MoeA2ABackend.NONE)
        return ((self.enable_flashinfer_allreduce_fusion or auto)
                and not self.enforce_disable_flashinfer_allreduce_fusion)


@dataclass(frozen=True)
class ForwardState:
    """What one layer sees of one batch."""

    num_tokens: int = 1
    """Tokens in the batch on this rank (forward_batch.input_ids.shape[0])."""
    dp_padding_mode: DpPaddingMode = DpPaddingMode.SUM_LEN
    attn_tp_input_scattered: bool = False
    """The attention-TP context says this layer's input is scattered over attention-TP ranks."""
    is_last_layer: bool = False
    """The model's last layer (decoders test layer_id == num_hidden_layers - 1, not the stage's)."""
    is_stage_last_layer: bool = False
    """The last layer of a pipeline stage that is not the last stage (pp_size > 1): its output
    leaves for the next stage as PPProxyTensors."""
    next_norm_fused: bool = True
    """The next layer's fused all-reduce + RMSNorm takes this tensor. False: on CUDA flashinfer's
    kernel declines (returns None: workspace unavailable, non-contiguous input) and the norm runs
    with no all-reduce; on AMD the tensor is past apply_aiter_all_reduce_fusion's limits and the
    MoE-TP all-reduce runs instead (layers/communicator.py:519-533, layernorm.py:145-172)."""


def field_names(cls) -> tuple[str, ...]:
    """The dataclass fields of ServerConfig or ForwardState, in declaration order."""
    return tuple(f.name for f in fields(cls))
