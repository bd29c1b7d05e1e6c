"""Known findings: regions of (configuration, forward state, model) where the exactly-once property
fails under the facts this spec is pinned to. CI records them so that the run stays green on what
is known and fails on anything new: every exactly-once property is proved OUTSIDE these regions,
and each region is checked to really contain a failure (a region that no longer fails is reported
as fixed, and the run fails until it is removed from here).

Each region is a predicate written in the subset spec/ lifts, over proto's own functions. Each
finding carries its upstream status (where later releases show it fixed, and by what); whether it
is reachable in a configuration the model can run is computed by `sumonce prove` itself.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from sumonce.proto import semantics
from sumonce.proto.alignment import model_runs_dp_attention
from sumonce.proto.config import ForwardState, ServerConfig
from sumonce.proto.predicates import should_use_dp_reduce_scatterv, should_use_flashinfer_cutlass_moe_fp4_allgather
from sumonce.proto.sites import BlockFlag, Model, Path, Version


@dataclass(frozen=True)
class Finding:
    name: str
    meaning: str
    region: Callable[[ServerConfig, ForwardState, Model, Version], bool]
    upstream: str = ""
    status: str = "open in 0.5.11; not re-checked in 0.5.23"
    """Upstream status: open, or fixed in which release by which change (file:line there)."""


def has_ep_site(m: Model) -> bool:
    return any(site.path == Path.EP for site in m.sites)


def after_is(c, s, m, step) -> bool:
    return semantics.after_experts(c, s, m) == step


def fused_sums_ep_only(c, s, m, version):
    return after_is(c, s, m, semantics.After.NEXT_LAYER_FUSED) and c.ep_size > 1 and c.moe_tp_size > 1


def fused_kernel_declines(c, s, m, version):
    return after_is(c, s, m, semantics.After.NEXT_LAYER_DECLINED)


def aiter_unfused_sums_moe_tp_only(c, s, m, version):
    return after_is(c, s, m, semantics.After.NEXT_LAYER_UNFUSED) and c.ep_size > 1


def stage_boundary_drops_mark(c, s, m, version):
    return after_is(c, s, m, semantics.After.STAGE_BOUNDARY)


def fusion_without_handoff(c, s, m, version):
    return (semantics.decoder_fusion(c, s, m) and not m.decoder.fuses_next_layer
            and m.decoder.block_F != BlockFlag.ABSENT)


def model_lacks_dp_gather(c, s, m, version):
    return not model_runs_dp_attention(c, m)


def reduce_scatterv_crash(c, s, m, version):
    return semantics.after_experts(c, s, m) == semantics.After.REDUCE_SCATTERV and c.tp_size > c.attn_dp_size


def aiter_fusion_under_dp_attention(c, s, m, version):
    return semantics.decoder_fusion(c, s, m) and m.decoder.fuses_next_layer and c.attn_dp_size > 1


def decoder_allreduce_under_v_or_q(c, s, m, version):
    return len(m.decoder_sites) > 0 and (should_use_dp_reduce_scatterv(c)
                                         or should_use_flashinfer_cutlass_moe_fp4_allgather(c))


def moe_cp_under_v(c, s, m, version):
    return c.moe_cp_allgather and not c.enable_nsa_prefill_context_parallel and should_use_dp_reduce_scatterv(c)


def fp4_allgather_ep_path(c, s, m, version):
    return has_ep_site(m) and should_use_flashinfer_cutlass_moe_fp4_allgather(c) and c.ep_size > 1


def tp_site_runs_under_q(c, s, m, version):
    runs = False
    for site in m.sites:
        if site.path == Path.TP:
            runs = runs or semantics.site_runs(c, s, m, site, version)
    return should_use_flashinfer_cutlass_moe_fp4_allgather(c) and runs


FIXED_0523 = "open in 0.5.11; fixed in 0.5.23: "
FINDINGS = (
    Finding("fused-allreduce-sums-ep-group-only",
            "F on CUDA with ep > 1 and moe_tp > 1: the next layer's fused all-reduce sums the EP group "
            "only (flashinfer_comm_fusion.py:635-644); the MoE-TP axis is never summed", fused_sums_ep_only,
            status=FIXED_0523 + "the fusion group is the TP group when ep > 1 and moe_tp > 1 "
            "(flashinfer_comm_fusion.py:685-695, layers/moe/utils.py:837-848)"),
    Finding("fused-kernel-declined-norm-without-allreduce",
            "F on CUDA and flashinfer's fused kernel declines (returns None): the norm runs with no "
            "all-reduce at all (layernorm.py:157-172); every axis is left partial", fused_kernel_declines,
            status=FIXED_0523 + "a declined kernel all-reduces over its group first (layernorm.py:256-264)"),
    Finding("aiter-unfused-branch-sums-moe-tp-only",
            "F on AMD with ep > 1 and the tensor past aiter's limits: prepare_attn's unfused branch "
            "all-reduces the MoE-TP group only (communicator.py:528-533); the EP axis is never summed",
            aiter_unfused_sums_moe_tp_only),
    Finding("pp-stage-boundary-drops-fusion-mark",
            "F at the last layer of a pipeline stage (pp_size > 1): the output leaves in PPProxyTensors "
            "without its fusion mark (qwen2_moe.py:813-819) and the next stage's first norm sums nothing",
            stage_boundary_drops_mark,
            status="open in 0.5.11; 0.5.23 rewrote layer boundaries as declared stages "
            "(models/qwen3_moe.py:843-874), not re-checked"),
    Finding("fusion-flag-without-handoff",
            "the decoder passes F to the block, which skips, but never hands the output to the next "
            "layer's fused kernel (bailing_moe_linear): nothing sums", fusion_without_handoff),
    Finding("model-lacks-dp-attention-gather",
            "DP attention for a model whose decoder has no DP gather (exaone_moe, hunyuan_v3): "
            "server_args does not refuse it, and every cross-rank sum mixes tokens (or none runs)",
            model_lacks_dp_gather,
            status="open in 0.5.11 and in 0.5.23 (neither model file gathers: no LayerCommunicator, "
            "no dp_gather)"),
    Finding("reduce-scatterv-crashes-with-attention-tp",
            "V with attention TP > 1: reduce_scatterv asserts one size per TP rank and gets one per DP "
            "rank (parallel_state.py:783; communicator.py:1215-1220): the server crashes",
            reduce_scatterv_crash,
            status=FIXED_0523 + "V needs tp == attn_dp (layers/moe/utils.py:742-748)"),
    Finding("aiter-fusion-under-dp-attention",
            "F on AMD under DP attention (aiter's F term does not test DP attention, communicator.py:742-747): "
            "the block skips, postprocess_layer's scatter is skipped, and the next layer gets the gathered "
            "tokens beside its own residual (a shape mismatch; where it runs, the EP axis is never summed)",
            aiter_fusion_under_dp_attention),
    Finding("decoder-allreduce-ignores-v-and-q",
            "V or Q with a decoder-level all-reduce that has neither term (step3p5): it sums on top of "
            "the reduce-scatterv (V), or over ranks holding different tokens (Q)",
            decoder_allreduce_under_v_or_q),
    Finding("moe-cp-allgather-under-v",
            "V with the MoE-CP all-gather (attn_cp_size > 1, no NSA CP): the sites skip, and the MOE_FULL "
            "scatter only slices", moe_cp_under_v),
    Finding("fp4-allgather-ep-path",
            "Q with ep > 1 in a model with an EP all-reduce: after the FP4 combine each rank holds its own "
            "tokens, and the EP all-reduce (no Q term) sums different ranks' tokens, or hangs where their "
            "counts differ", fp4_allgather_ep_path,
            status=FIXED_0523 + "post_experts_output_is_complete is True under Q on both paths "
            "(layers/moe/utils.py:771-778)"),
    Finding("tp-guard-without-q",
            "Q with a TP guard that has no Q term (bailing_moe_linear, exaone_moe, llada2, llama4, "
            "hunyuan_v3 before #23748): the site all-reduces after the FP4 combine over ranks holding "
            "different tokens; #23748 fixed it", tp_site_runs_under_q,
            status="fixed by #23748 (85376a61, in 0.5.11)"),
)
