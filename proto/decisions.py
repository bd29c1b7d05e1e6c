"""Each era's should_skip_post_experts_all_reduce as one function of (c, is_tp_path, R, F).

R and F are what the release's helper reads for "a later reduce-scatter completes the sum" and
"the next layer fuses the sum": keyword arguments up to 0.5.15, the per-forward context
(get_forward()) from 0.5.16; 0.5.22 - 0.5.23 read R only. One signature for every era, so the
audit can compare a release's lifted helper with its era's, and the proofs can set eras side by
side. The terms are tested in SGLang's order; facts cite each era's first release (the wheel
named by the era), paths under sglang/srt/, `utils.py` = layers/moe/utils.py.

NOTE: written in the subset spec/ lifts (see proto.config).
"""
from __future__ import annotations

from . import boundary
from .config import MoeA2ABackend, ServerConfig
from .eras import Era
from .predicates import should_use_dp_reduce_scatterv as V_0511
from .predicates import should_skip_post_experts_all_reduce
from .predicates import should_use_flashinfer_cutlass_moe_fp4_allgather as Q


def skip_0_5_11(c: ServerConfig, is_tp_path: bool, R: bool, F: bool) -> bool:
    """0.5.11 utils.py:377-382: F or R, V, the TP path under Q: proto.predicates' helper itself."""
    return should_skip_post_experts_all_reduce(c, is_tp_path=is_tp_path, use_reduce_scatter=R,
                                               should_allreduce_fusion=F)


def skip_0_5_15(c: ServerConfig, is_tp_path: bool, R: bool, F: bool) -> bool:
    """0.5.15 utils.py:470-478: 0.5.11's tests, then the flashinfer a2a combine (:476)."""
    return skip_0_5_11(c, is_tp_path, R, F) or c.moe_a2a_backend == MoeA2ABackend.FLASHINFER


def skip_0_5_16(c: ServerConfig, is_tp_path: bool, R: bool, F: bool) -> bool:
    """0.5.16 utils.py:491-499: the same tests, F and R now read from the per-forward context
    (should_skip_mlp_all_reduce, :462: fuse_mlp_allreduce or mlp_reduce_scatter)."""
    return F or R or V_0511(c) or (is_tp_path and Q(c)) or c.moe_a2a_backend == MoeA2ABackend.FLASHINFER


def skip_0_5_17(c: ServerConfig, is_tp_path: bool, R: bool, F: bool) -> bool:
    """0.5.17 utils.py:507-521: ctx, dwdp > 1 (:509), V with attention TP 1 (:465), the TP path
    under Q, the flashinfer (:515) or pplx (:517) combine."""
    return (F or R or c.dwdp_size > 1 or boundary.should_use_dp_reduce_scatterv(c) or (is_tp_path and Q(c))
            or c.moe_a2a_backend == MoeA2ABackend.FLASHINFER or c.moe_a2a_backend == MoeA2ABackend.PPLX)


def skip_0_5_20(c: ServerConfig, is_tp_path: bool, R: bool, F: bool) -> bool:
    """0.5.20 utils.py:714-755: 0.5.17's tests, then the flashinfer_megamoe combine (:754)."""
    return skip_0_5_17(c, is_tp_path, R, F) or c.moe_a2a_backend == MoeA2ABackend.FLASHINFER_MEGAMOE


def complete_0_5_21(c: ServerConfig, is_tp_path: bool) -> bool:
    """0.5.21 post_experts_output_is_complete (utils.py:741-762): dwdp > 1, the TP path under Q
    (:751; 0.5.22 drops the path condition), a completing a2a combine. V is no term any more."""
    return (c.dwdp_size > 1 or (is_tp_path and Q(c))
            or c.moe_a2a_backend in boundary.COMPLETING_A2A)


def skip_0_5_21(c: ServerConfig, is_tp_path: bool, R: bool, F: bool) -> bool:
    """0.5.21 utils.py:767: the context's F or R (:738), or complete(is_tp_path)."""
    return F or R or complete_0_5_21(c, is_tp_path)


def skip_0_5_23(c: ServerConfig, is_tp_path: bool, R: bool, F: bool) -> bool:
    """0.5.23 utils.py:785-794: proto.boundary's helper itself (ctx.R or complete(is_tp_path)); F is
    not read (the context has no fusion flag since 0.5.22)."""
    return boundary.should_skip_post_experts_all_reduce(c, boundary.ForwardContext(R), is_tp_path=is_tp_path)


HELPERS = {
    Era.V0_5_11: skip_0_5_11,
    Era.V0_5_15: skip_0_5_15,
    Era.V0_5_16: skip_0_5_16,
    Era.V0_5_17: skip_0_5_17,
    Era.V0_5_20: skip_0_5_20,
    Era.V0_5_21: skip_0_5_21,
    Era.V0_5_23: skip_0_5_23,
}
"""Era -> its helper; 0.5.10.post1 has none (each model file guards its own all-reduce)."""

READS_CONTEXT = (Era.V0_5_16, Era.V0_5_17, Era.V0_5_20, Era.V0_5_21, Era.V0_5_23)
"""Eras whose helper reads F and R from get_forward() rather than from keyword arguments."""
