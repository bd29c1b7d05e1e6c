"""Every post-experts all-reduce guard, as a plain function `guard(c, F, R) -> runs`.

A guard returns True when its site RUNS the all-reduce. F and R are what the decoder hands the MoE
block (False where the method has no such argument). Each guard names, in its docstring, the
SGLang commit at which it is true; proto.sites says which site uses which guard at which version.
"""
from __future__ import annotations

from .config import ServerConfig
from .predicates import (
    should_skip_post_experts_all_reduce,
    should_use_dp_reduce_scatterv,
    should_use_flashinfer_cutlass_moe_fp4_allgather,
)

# --- after PR #23748 (85376a61): every site calls the helper -------------------------------


def helper_ep_fr(c: ServerConfig, F: bool, R: bool) -> bool:
    """85376a61, qwen3_moe EP all-reduce: the helper's EP path, given R and F."""
    return c.ep_size > 1 and not should_skip_post_experts_all_reduce(
        c, is_tp_path=False, use_reduce_scatter=R, should_allreduce_fusion=F)


def helper_ep(c: ServerConfig, F: bool, R: bool) -> bool:
    """85376a61, hunyuan_v3 EP all-reduce: the helper's EP path, no F or R argument."""
    return c.ep_size > 1 and not should_skip_post_experts_all_reduce(c, is_tp_path=False)


def helper_moe_tp_fr(c: ServerConfig, F: bool, R: bool) -> bool:
    """85376a61, qwen3_moe MoE-TP all-reduce: the helper's TP path, given R and F."""
    return c.moe_tp_size > 1 and not should_skip_post_experts_all_reduce(
        c, is_tp_path=True, use_reduce_scatter=R, should_allreduce_fusion=F)


def helper_moe_tp(c: ServerConfig, F: bool, R: bool) -> bool:
    """85376a61, hunyuan_v3 MoE-TP all-reduce: the helper's TP path, no F or R argument."""
    return c.moe_tp_size > 1 and not should_skip_post_experts_all_reduce(c, is_tp_path=True)


def helper_tp_fr(c: ServerConfig, F: bool, R: bool) -> bool:
    """85376a61, the full-TP all-reduce of the TP-only models that receive F and R."""
    return c.tp_size > 1 and not should_skip_post_experts_all_reduce(
        c, is_tp_path=True, use_reduce_scatter=R, should_allreduce_fusion=F)


def helper_tp_r(c: ServerConfig, F: bool, R: bool) -> bool:
    """85376a61, exaone_moe, llada2, llama4: the helper's TP path, given R only."""
    return c.tp_size > 1 and not should_skip_post_experts_all_reduce(
        c, is_tp_path=True, use_reduce_scatter=R)


# --- the legacy guards at da175b96 (the parent of #23748) -----------------------------------


def legacy_qwen3_ep(c: ServerConfig, F: bool, R: bool) -> bool:
    """da175b96, qwen3_moe EP all-reduce."""
    return c.ep_size > 1 and not F and not R and not should_use_dp_reduce_scatterv(c)


def legacy_full_moe_tp(c: ServerConfig, F: bool, R: bool) -> bool:
    """da175b96, qwen3_moe MoE-TP all-reduce: FULL(moe_tp)."""
    return (c.moe_tp_size > 1 and not F and not R
            and not should_use_flashinfer_cutlass_moe_fp4_allgather(c)
            and not should_use_dp_reduce_scatterv(c))


def legacy_full_tp(c: ServerConfig, F: bool, R: bool) -> bool:
    """da175b96, the full-TP all-reduce of most TP-only models: FULL(tp)."""
    return (c.tp_size > 1 and not F and not R
            and not should_use_flashinfer_cutlass_moe_fp4_allgather(c)
            and not should_use_dp_reduce_scatterv(c))


def legacy_tp_rfv(c: ServerConfig, F: bool, R: bool) -> bool:
    """da175b96, bailing_moe_linear: no Q term."""
    return c.tp_size > 1 and not R and not F and not should_use_dp_reduce_scatterv(c)


def legacy_tp_rv(c: ServerConfig, F: bool, R: bool) -> bool:
    """da175b96, exaone_moe, llada2, llama4: no F argument, no Q term."""
    return c.tp_size > 1 and not R and not should_use_dp_reduce_scatterv(c)


def legacy_hunyuan_ep(c: ServerConfig, F: bool, R: bool) -> bool:
    """da175b96, hunyuan_v3 EP all-reduce: no F or R argument."""
    return c.ep_size > 1 and not should_use_dp_reduce_scatterv(c)


def legacy_hunyuan_moe_tp(c: ServerConfig, F: bool, R: bool) -> bool:
    """da175b96, hunyuan_v3 MoE-TP all-reduce: no F or R argument, no Q term."""
    return c.moe_tp_size > 1 and not should_use_dp_reduce_scatterv(c)


# --- history: the guards before the V fixes -------------------------------------------------


def pre23731_qwen3_ep(c: ServerConfig, F: bool, R: bool) -> bool:
    """Parent of 99b59b27 (#23731), qwen3_moe EP all-reduce: no R, no V term (issue #23729)."""
    return c.ep_size > 1 and not F


def pre23731_qwen3_moe_tp(c: ServerConfig, F: bool, R: bool) -> bool:
    """Parent of 99b59b27 (#23731), qwen3_moe MoE-TP all-reduce: no V term."""
    return (c.moe_tp_size > 1 and not F and not R
            and not should_use_flashinfer_cutlass_moe_fp4_allgather(c))


def pre23734_qwen3_ep(c: ServerConfig, F: bool, R: bool) -> bool:
    """Parent of 71029abd (#23734), qwen3_moe EP all-reduce: V term, but no R term."""
    return c.ep_size > 1 and not F and not should_use_dp_reduce_scatterv(c)


def pre23732_full_tp(c: ServerConfig, F: bool, R: bool) -> bool:
    """Parent of ba4e9d2a (#23732), most TP-only models: FULL(tp) without the V term."""
    return (c.tp_size > 1 and not F and not R
            and not should_use_flashinfer_cutlass_moe_fp4_allgather(c))


def pre23732_tp_rf(c: ServerConfig, F: bool, R: bool) -> bool:
    """Parent of ba4e9d2a (#23732), bailing_moe_linear: no Q, no V term."""
    return c.tp_size > 1 and not R and not F


def pre23732_tp_r(c: ServerConfig, F: bool, R: bool) -> bool:
    """Parent of ba4e9d2a (#23732), exaone_moe, llada2, llama4: R only."""
    return c.tp_size > 1 and not R


def pre23732_hunyuan_ep(c: ServerConfig, F: bool, R: bool) -> bool:
    """Parent of ba4e9d2a (#23732), hunyuan_v3 EP all-reduce: unconditional past the size."""
    return c.ep_size > 1


def pre23732_hunyuan_moe_tp(c: ServerConfig, F: bool, R: bool) -> bool:
    """Parent of ba4e9d2a (#23732), hunyuan_v3 MoE-TP all-reduce: unconditional past the size."""
    return c.moe_tp_size > 1


# --- decoder-level all-reduce that #23748 left alone ----------------------------------------


def step3p5_decoder_combined(c: ServerConfig, F: bool, R: bool) -> bool:
    """da175b96 and after, Step3p5DecoderLayer.forward: one all-reduce of MoE + shared expert,
    given the decoder's own F and R (its MoE block is always called with F=True)."""
    return c.tp_size > 1 and not F and not R
