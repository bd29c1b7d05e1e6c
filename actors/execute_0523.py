"""One shard's run of one MoE layer in the 0.5.23 era (SGLang 0.5.22 - 0.5.23), every decision
from proto.boundary and proto.models_0523: the boundary's prepare gathers DP attention's tokens,
the experts run, and the FFN exit (proto.boundary.ffn_exit) completes the sum: nothing (the
output is complete), the DP reduce-scatterv, the fixed-size DP reduce-scatter, the next input's
fused all-reduce + RMSNorm over post_experts_reduction_group (or, the kernel declining, that
group's all-reduce then the norm), or sum_post_experts_output now (one TP all-reduce when
mergeable). hunyuan_v3 still sums in its MoE block (post_experts_all_reduce). Shapes: T = tokens,
D = hidden. Trace entries as in execute.py.
"""
from __future__ import annotations

import torch

from sumonce.proto import boundary, models_0523
from sumonce.proto.boundary import Exit
from sumonce.proto.models_0523 import SumsAt
from sumonce.proto.sites import Group

from .execute import dp_reduce_scatterv, entry, own_dp_rows, padded_all_reduce, reduce_scatter_rows, run_experts
from .fused import allreduce_residual_rmsnorm
from .layer import rms_norm, shard_weights

_FULL: dict = {}


def layout_weights(c, weights, sw, dev) -> dict:
    """The weights a rank computes with. Under dwdp every rank runs every expert on its own rows
    (0.5.23 layers/moe/utils.py:769; the prefetch, layers/moe/dwdp/, copies the other ranks'
    experts over CUDA VMM before the experts run, so this holds every expert from the start);
    otherwise its EP x MoE-TP shard."""
    if c.dwdp_size == 1:
        return sw
    key = id(weights)
    if key not in _FULL:
        _FULL.clear()
        full = shard_weights(weights, 1, 1, 1, 0)
        _FULL[key] = {k: (v.to(dev) if torch.is_tensor(v) else v) for k, v in full.items()}
    return _FULL[key]


def run_layer(comm, case, weights, sw, dev) -> dict:
    c, s, m = case.config, case.state, models_0523.era_model(case.model)
    out, ids, trace, dp_starts, res_d = run_experts(
        comm, case, weights, layout_weights(c, weights, sw, dev), dev, models_0523.gathers_tokens(c, m),
        catalogue_shared(case.model), Group.TP if c.dwdp_size > 1 else None)
    # NOTE: rows differ between ranks where no gather aligned them (own rows under DP attention).
    rows_differ = c.attn_dp_size > 1 and dp_starts is None
    if m.sums_at == SumsAt.BLOCK:
        out = all_reduces(comm, out, ids, models_0523.block_groups(c), "block post_experts_all_reduce",
                          trace, rows_differ)
        return done(trace, "MoE block post_experts_all_reduce", "-", None, res_d)
    return run_exit(comm, c, s, out, ids, trace, dp_starts, res_d, weights, dev)


def catalogue_shared(name: str) -> bool:
    from sumonce.proto import catalogue
    return catalogue.model(name).shared_expert


def all_reduces(comm, out, ids, groups, name, trace, rows_differ):
    for g in groups:
        out = padded_all_reduce(comm, out.clone(), g, name, rows_differ)
        trace.append(entry(f"{name} ({g.value})", torch.arange(out.shape[0]), ids, out, g))
    return out


def own_rows(comm, c, s, out, ids, dp_starts, trace, name):
    """The DP scatter back to this rank's tokens (no sum), where the prepare step gathered."""
    if dp_starts is None:
        return out, ids
    src = own_dp_rows(comm, c, s, dp_starts)
    out, ids = out[src.to(out.device)], ids[src.to(ids.device)]
    trace.append(entry(name, src, ids, out))
    return out, ids


def run_exit(comm, c, s, out, ids, trace, dp_starts, res_d, weights, dev):
    step, normed, impl = boundary.ffn_exit(c, s), None, "-"
    if step == Exit.REDUCE_SCATTERV:
        out, src = dp_reduce_scatterv(comm, out, c, s, dp_starts)
        trace.append(entry(f"{step.value} (tp)", src, ids[src.to(dev)], out, Group.TP))
    elif step == Exit.DP_REDUCE_SCATTER:
        out, ids2, src = reduce_scatter_rows(comm, out, ids, False)
        trace.append(entry(f"{step.value} (tp)", src, ids2, out, Group.TP))
    elif step in (Exit.DEFERRED_FUSED, Exit.DEFERRED_ALL_REDUCE):
        normed, impl = deferred(comm, c, s, step, out, ids, trace, dp_starts, res_d, weights, dev)
    elif step == Exit.SUM_NOW:
        out = all_reduces(comm, out, ids, models_0523.sum_now_groups(c), "sum_post_experts_output", trace, False)
        own_rows(comm, c, s, out, ids, dp_starts, trace, "DP scatter (no sum)")
    else:
        own_rows(comm, c, s, out, ids, dp_starts, trace, "DP scatter (no sum)")
    return done(trace, step.value, impl, normed, res_d)


def deferred(comm, c, s, step, out, ids, trace, dp_starts, res_d, weights, dev):
    """The next input completes the owed sum over post_experts_reduction_group: the fused kernel
    (DEFERRED_FUSED) or, declined, the group's all-reduce (layernorm.py:261-265); then residual add
    and RMSNorm. Under DP attention the owed output was gathered: the sum runs on the gathered rows,
    then the scatter back to this rank's tokens (exit.py:126-129, prepare.py:372-373)."""
    group, norm_w = boundary.post_experts_reduction_group(c), weights.norm.to(dev)
    name = f"{step.value} ({group.value})"
    if dp_starts is None:
        res_out, normed, impl = allreduce_residual_rmsnorm(comm, out.clone(), res_d, norm_w, group, step.value,
                                                           fused=step == Exit.DEFERRED_FUSED)
        trace.append(entry(name, torch.arange(out.shape[0]), ids, res_out - res_d, group))
        return normed, impl
    out = comm.all_reduce(out.clone(), group, step.value)
    trace.append(entry(name, torch.arange(out.shape[0]), ids, out, group))
    out, ids = own_rows(comm, c, s, out, ids, dp_starts, trace, "DP scatter (no sum)")
    return rms_norm(out + res_d, norm_w), "torch: all-reduce of the gathered rows, scatter, add, RMSNorm"


def done(trace, after: str, impl: str, normed, res_d) -> dict:
    return {"trace": trace, "after": after, "impl": impl,
            "normed": None if normed is None else normed.detach().cpu(), "residual": res_d.cpu()}
