"""Known findings: regions of (configuration, forward state, model) where the exactly-once property
fails under the facts this spec is pinned to. CI records them so that the run stays green on what
is known and fails on anything new: every exactly-once property is proved OUTSIDE these regions,
and each region is checked to really contain a failure (a region that no longer fails is reported
as fixed, and the run fails until it is removed from here).

Each region is a predicate written in the subset spec/ lifts, over proto's own functions.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from sumonce.proto import semantics
from sumonce.proto.config import ForwardState, ServerConfig
from sumonce.proto.predicates import should_use_dp_reduce_scatterv, should_use_flashinfer_cutlass_moe_fp4_allgather
from sumonce.proto.sites import BlockFlag, Model, Path, Version


@dataclass(frozen=True)
class Finding:
    name: str
    meaning: str
    region: Callable[[ServerConfig, ForwardState, Model, Version], bool]
    upstream: str = ""


def has_ep_site(m: Model) -> bool:
    return any(site.path == Path.EP for site in m.sites)


def fused_sums_ep_only(c, s, m, version):
    return (semantics.decoder_fusion(c, s, m) and m.decoder.fuses_next_layer and s.next_norm_fused
            and c.ep_size > 1 and c.moe_tp_size > 1)


def fallback_sums_moe_tp_only(c, s, m, version):
    return (semantics.decoder_fusion(c, s, m) and m.decoder.fuses_next_layer and not s.next_norm_fused
            and c.ep_size > 1)


def fusion_without_handoff(c, s, m, version):
    return (semantics.decoder_fusion(c, s, m) and not m.decoder.fuses_next_layer
            and m.decoder.block_F != BlockFlag.ABSENT)


def no_communicator_under_v(c, s, m, version):
    return not m.decoder.communicator and should_use_dp_reduce_scatterv(c)


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


FINDINGS = (
    Finding("fused-allreduce-sums-ep-group-only",
            "F with ep > 1 and moe_tp > 1: the next layer's fused all-reduce sums the EP group only; "
            "the MoE-TP axis is never summed", fused_sums_ep_only),
    Finding("unfused-fallback-sums-moe-tp-only",
            "F with ep > 1 and the next norm unfused: the fallback all-reduces the MoE-TP group only; "
            "the EP axis is never summed", fallback_sums_moe_tp_only),
    Finding("fusion-flag-without-handoff",
            "the decoder passes F to the block, which skips, but never hands the output to the next "
            "layer's fused kernel (bailing_moe_linear): nothing sums", fusion_without_handoff),
    Finding("no-communicator-under-v",
            "V with a decoder that has no LayerCommunicator (exaone_moe, hunyuan_v3): the sites skip "
            "and no reduce-scatterv runs", no_communicator_under_v),
    Finding("decoder-allreduce-ignores-v-and-q",
            "V or Q with a decoder-level all-reduce that has neither term (step3p5): it sums on top of "
            "the reduce-scatterv (V) or of the FP4 combine (Q)", decoder_allreduce_under_v_or_q),
    Finding("moe-cp-allgather-under-v",
            "V with the MoE-CP all-gather (attn_cp_size > 1, no NSA CP): the sites skip, and the MOE_FULL "
            "scatter only slices", moe_cp_under_v),
    Finding("fp4-allgather-ep-path",
            "Q with ep > 1 in a model with an EP all-reduce: the FP4 combine already summed, and the "
            "helper's EP path has no Q term", fp4_allgather_ep_path),
    Finding("tp-guard-without-q",
            "Q with a TP guard that has no Q term (bailing_moe_linear, exaone_moe, llada2, llama4, "
            "hunyuan_v3 before #23748): the site sums after the FP4 combine; #23748 fixed it",
            tp_site_runs_under_q),
)
