"""The claims, as plain Python over (c, s, F, R) in the subset spec/ lifts.

Each claim is what a property states; spec lifts it for z3 and, at a counterexample, runs the
very same function in plain Python (which must then say False, or the lift is wrong).
c: ServerConfig, s: ForwardState, F/R: the flags a MoE block receives (free where a claim is
about guards, unused where it is about whole layers).
"""
from __future__ import annotations

from sumonce.proto import semantics
from sumonce.proto.communicator import should_allreduce_fusion
from sumonce.proto.config import GpuArch, MoeA2ABackend, Quantization, MoeRunnerBackend
from sumonce.proto.predicates import (
    should_skip_post_experts_all_reduce as skip,
    should_use_dp_reduce_scatterv as V,
    should_use_flashinfer_cutlass_moe_fp4_allgather as Q,
)
from sumonce.proto.sites import Path, Version, group_size

# --- lemmas ---------------------------------------------------------------------------------


def q_and_v_exclusive(c, s, F, R):
    return not (Q(c) and V(c))


def f_and_v_exclusive_on_cuda(c, s, F, R):
    return c.is_amd or not (should_allreduce_fusion(c, s) and V(c))


def f_requirements(c, s, F, R):
    flashinfer = (not c.enable_dp_attention and c.allreduce_fusion_enabled and c.flashinfer_available
                  and (c.gpu_arch == GpuArch.SM90 or c.gpu_arch == GpuArch.SM100)
                  and s.num_tokens <= 2048)
    aiter = c.is_amd and c.enable_aiter_allreduce_fusion and c.tp_size != 6
    return not should_allreduce_fusion(c, s) or (
        c.tp_size > 1 and not s.is_last_layer and s.num_tokens > 0 and (flashinfer or aiter))


def auto_fusion_excludes_h20(c, s, F, R):
    return not (c.h20_device and not c.enable_flashinfer_allreduce_fusion) or not c.allreduce_fusion_enabled


def v_requirements(c, s, F, R):
    return not V(c) or (c.enable_dp_attention and c.attn_dp_size > 1 and c.ep_size == c.attn_dp_size
                        and c.moe_a2a_backend == MoeA2ABackend.NONE)


def q_requirements(c, s, F, R):
    return not Q(c) or (c.quantization == Quantization.MODELOPT_FP4
                        and c.moe_runner_backend == MoeRunnerBackend.FLASHINFER_CUTLASS
                        and c.enable_dp_attention and c.ep_size == c.tp_size and c.moe_tp_size == 1)


def helper_skips_on_f_or_r(c, s, F, R):
    return not (F or R) or (skip(c, is_tp_path=True, use_reduce_scatter=R, should_allreduce_fusion=F)
                            and skip(c, is_tp_path=False, use_reduce_scatter=R, should_allreduce_fusion=F))


def sizes_factor(c, s, F, R):
    # NOTE: the attention-DP ranks are blocks of tp // attn_dp ranks (attn_cp * attn_tp of them: SGLang's
    # layout (dp, cp, tp)); that attn_cp divides the block is nonlinear and z3 answers unknown, so
    # the lemma is stated on the block.
    return c.ep_size * c.moe_tp_size == c.tp_size and c.attn_dp_size * (c.tp_size // c.attn_dp_size) == c.tp_size


# --- no drift -------------------------------------------------------------------------------


def paths_differ_only_by_q(c, s, F, R):
    tp = skip(c, is_tp_path=True, use_reduce_scatter=R, should_allreduce_fusion=F)
    ep = skip(c, is_tp_path=False, use_reduce_scatter=R, should_allreduce_fusion=F)
    return tp == (ep or Q(c))


def ep_skip_implies_tp_skip(c, s, F, R):
    return (not skip(c, is_tp_path=False, use_reduce_scatter=R, should_allreduce_fusion=F)
            or skip(c, is_tp_path=True, use_reduce_scatter=R, should_allreduce_fusion=F))


# --- refactor equivalence -------------------------------------------------------------------


def guards_equal(site):
    def claim(c, s, F, R):
        return site.guard(Version.HELPER)(c, F, R) == site.guard(Version.LEGACY)(c, F, R)
    return claim


def guards_equal_but_q(site):
    def claim(c, s, F, R):
        return site.guard(Version.HELPER)(c, F, R) == (site.guard(Version.LEGACY)(c, F, R) and not Q(c))
    return claim


def guards_differ(site):
    def claim(c, s, F, R):
        return site.guard(Version.HELPER)(c, F, R) != site.guard(Version.LEGACY)(c, F, R)
    return claim


def flags_from_decoder(model):
    """F and R are what this model's decoder really hands the block at (c, s)."""
    def scope(c, s, F, R):
        return (semantics.in_scope(c, model) and semantics.reaches_sites(c, model)
                and F == semantics.block_fusion(c, s, model) and R == semantics.block_reduce_scatter(c, s, model))
    return scope


def skip_union(sites, path):
    """The helper's skip set on `path` is the union of the legacy sites' skip sets."""
    def claim(c, s, F, R):
        legacy_union, any_size = False, False
        for site in sites:
            size_ok = group_size(c, site.group) > 1
            legacy_union = legacy_union or (size_ok and not site.guard(Version.LEGACY)(c, F, R))
            any_size = any_size or size_ok
        helper = skip(c, is_tp_path=path == Path.TP, use_reduce_scatter=R, should_allreduce_fusion=F)
        return legacy_union == (any_size and helper)
    return claim


# --- exactly once ---------------------------------------------------------------------------


def exactly_once(model, version):
    def claim(c, s, F, R):
        ok = True
        for variant in model.variants:
            ok = ok and semantics.exactly_once(c, s, model, variant, version)
        return ok
    return claim


def in_scope_outside(model, version, regions):
    """The model's scope, outside every region (known findings, or an issue's own class)."""
    def scope(c, s, F, R):
        inside = False
        for region in regions:
            inside = inside or region(c, s, model, version)
        return semantics.in_scope(c, model) and not inside
    return scope


def model_runs(model):
    """The model can run (c, s) and the run proceeds: a reachable witness."""
    def scope(c, s, F, R):
        return semantics.model_supports(c, model) and not semantics.crashes(c, s, model)
    return scope


def in_scope_inside(model, version, region, outside=()):
    def scope(c, s, F, R):
        excluded = False
        for other in outside:
            excluded = excluded or other(c, s, model, version)
        return semantics.in_scope(c, model) and region(c, s, model, version) and not excluded
    return scope
