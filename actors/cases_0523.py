"""The 0.5.23 era's conformance cases: the 0.5.11 sweep's grid (cases.configs) at every
--boundary-reduction, plus dwdp, kept where 0.5.23 accepts them and proto.models_0523 covers them.

Out of the actors' scope, and so out of these cases:
- AMD servers (proto.models_0523.in_scope leaves them out: how a deferred output meets aiter's
  kernel was not re-read).
- the a2a backends (flashinfer, pplx, flashinfer_megamoe, and the others): their dispatch and
  combine are GPU kernels (flashinfer's MNNVL all-to-all, pplx-kernels over NVSHMEM, the MegaMoE
  kernel) with no gloo counterpart; an all_to_all standing in for them would only restate
  proto's "the combine completes the output" rather than test it.
- input-scattered batches (proto.models_0523.state_in_scope).
dwdp is run as SGLang resolves it (arg_groups/parallel_hook.py:441, 466-490: dwdp == tp, attention
DP of dwdp ranks, ep = dwdp, pp 1): every rank runs every expert on its own rows (execute_0523).
"""
from __future__ import annotations

from dataclasses import replace

from sumonce.proto import boundary, models_0523
from sumonce.proto.config import BoundaryReduction, GpuArch, ServerConfig
from sumonce.proto.eras import Era, accepts
from sumonce.proto.models_0523 import SumsAt
from sumonce.proto.predicates import should_use_flashinfer_cutlass_moe_fp4_allgather as Q
from sumonce.proto.validation import violations

from .cases import Case, actors_scope, configs, points

ERA = Era.V0_5_23


def configs_0523(world: int, architecture: str, nnodes: int = 1):
    """cases.configs at every boundary_reduction, and the dwdp layouts (SM90, CPU; one node only)."""
    for c in configs(world, architecture, nnodes):
        for br in BoundaryReduction:
            yield replace(c, boundary_reduction=br)
    if nnodes > 1:
        return
    for arch in (GpuArch.SM90, GpuArch.CPU):
        yield ServerConfig(tp_size=world, ep_size=world, dp_size=world, enable_dp_attention=True,
                           dwdp_size=world, gpu_arch=arch, architecture=architecture,
                           flashinfer_available=arch == GpuArch.SM90, disable_piecewise_cuda_graph=True)


def runnable(c: ServerConfig, m) -> bool:
    """0.5.23 accepts it (proto.validation, proto.eras.accepts), proto.models_0523 covers it, and
    the actors can run one TP group of it."""
    return (not violations(c) and accepts(ERA, c) and models_0523.in_scope(c, m)
            and actors_scope(c) is None)


def decision_key(case: Case) -> tuple:
    """What the layer's execution depends on in this era: cases equal here run the same collectives."""
    c, s, m = case.config, case.state, models_0523.era_model(case.model)
    if m.sums_at == SumsAt.BLOCK:
        step = ("block", models_0523.block_groups(c))
    else:
        step = (boundary.ffn_exit(c, s), boundary.post_experts_reduction_group(c),
                models_0523.sum_now_groups(c))
    return (case.model, c.tp_size, c.ep_size, c.attn_dp_size, Q(c), c.dwdp_size,
            models_0523.gathers_tokens(c, m), step, s.dp_padding_mode, s.num_tokens == 0,
            models_0523.sum_counts(c, s, m), models_0523.mixes_tokens(c, m), case.layout)


def sweep_0523(name: str, worlds, models, nnodes: int = 1) -> list[Case]:
    out, seen = [], set()
    for mname, m, c, s in points(name, worlds, models, nnodes, models_0523.era_model, configs_0523, runnable,
                                 models_0523.state_in_scope):
        case = Case(mname, m.sums_at.value, None, c, s, era=ERA)
        key = decision_key(case)
        # NOTE: also the first case of each --boundary-reduction value per exit step,
        # though it decides as another value does (auto is rs+rsv or rsv)
        value = (c.boundary_reduction, key[7][0])
        if name == "small" and key in seen and value in seen:
            continue
        seen.update((key, value))
        out.append(case)
    return out
