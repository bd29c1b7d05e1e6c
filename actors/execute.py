"""One shard's run of one MoE layer, step by step as SGLang runs it, every decision from proto
(the 0.5.11 era here; the 0.5.23 era's run is execute_0523.py).
Shapes: T = tokens, D = hidden. Each reduction or scatter appends a trace entry
{step, src (row positions in the previous entry's buffer), ids (global token ids), values}
from which the driver measures what each real collective summed.
"""
from __future__ import annotations

import torch

from sumonce.proto import catalogue, semantics
from sumonce.proto.alignment import gathers_tokens, tokens_vary_at_sites
from sumonce.proto.communicator import scatters_hidden_states
from sumonce.proto.eras import Era
from sumonce.proto.layout import attn_dp_rank
from sumonce.proto.predicates import should_use_flashinfer_cutlass_moe_fp4_allgather
from sumonce.proto.sites import GROUP_AXES, Group
from sumonce.proto.semantics import After, after_experts, next_layer_group

from . import tokens as tk
from .fused import allreduce_residual_rmsnorm
from .layer import fake_fp4, make_tokens, rms_norm, shard_output


def entry(step, src, ids, values, group=None):
    """`group`: the group the shard used (only to name, among sums the numbers cannot tell apart,
    the one that ran: e.g. an EP and a MoE-TP sum of the same size over an already-full tensor)."""
    axes = tuple(a.value for a in GROUP_AXES[group]) if group else ()
    return {"step": step, "src": src, "ids": ids.cpu(), "values": values.detach().cpu(), "axes": axes}


def dp_gather(comm, x, c, s, dev):
    """DP attention's gather over the TP group: every rank gets every DP rank's tokens."""
    counts, blocks = tk.token_counts(c, s), tk.dp_block_len(c, s)
    L = max(max(counts), max(blocks))
    parts = comm.all_gather(tk.pad_rows(x, L), Group.TP, "dp gather")
    per_dp = parts[:: c.attn_tp_size]
    offs = tk.offsets(counts)
    gx = torch.cat([tk.pad_rows(p[:n], b) for p, n, b in zip(per_dp, counts, blocks)])
    gids = torch.cat([tk.pad_ids(torch.arange(o, o + n), b) for o, n, b in zip(offs, counts, blocks)])
    return gx, gids.to(dev), tk.offsets(blocks)


def fp4_dispatch(comm, c, s, x_d, dev):
    """Q: each rank quantises its attention-TP slice to FP4, then all-gathers over TP (padded)."""
    slices, rank = tk.fp4_slices(c, s), comm.rank
    d_start = tk.offsets(tk.token_counts(c, s))[attn_dp_rank(rank, c.attn_tp_size)]
    first, n = slices[rank]
    mine = fake_fp4(x_d[first - d_start: first - d_start + n])
    L = max(size for _, size in slices)
    parts = comm.all_gather(tk.pad_rows(mine, L), Group.TP, "fp4 dispatch")
    gx = torch.cat([p[:size] for p, (_, size) in zip(parts, slices)])
    gids = torch.cat([torch.arange(f, f + size) for f, size in slices]).to(dev)
    return gx, gids


def fp4_combine(comm, c, s, out):
    """The combine's reduce-scatterv over TP back to each rank's slice.
    NOTE: emulated as one reduce_scatter of per-rank chunks padded to the longest slice."""
    slices = tk.fp4_slices(c, s)
    L, starts = max(size for _, size in slices), tk.offsets([size for _, size in slices])
    chunks = [tk.pad_rows(out[st: st + size], L) for st, (_, size) in zip(starts, slices)]
    mine = comm.reduce_scatter(torch.cat(chunks), Group.TP, "fp4 combine")
    n = slices[comm.rank][1]
    return mine[:n], torch.arange(starts[comm.rank], starts[comm.rank] + n)


def padded_all_reduce(comm, x, kind, name, rows_differ):
    """All-reduce; where group members hold different row counts (the FP4 path) pad to the
    group's longest (members then sum rows by position, as the real collective would)."""
    n = x.shape[0]
    L = comm.max_len(n, kind, name) if rows_differ else n
    return comm.all_reduce(tk.pad_rows(x, L), kind, name)[:n]


def reduce_scatter_rows(comm, x, ids, rows_differ):
    """The communicator's reduce-scatter over TP: pad to a multiple of the world, keep chunk rank."""
    W, n = comm.world, x.shape[0]
    L = comm.max_len(n, Group.TP, "reduce-scatter") if rows_differ else n
    L = -(-L // W) * W
    out = comm.reduce_scatter(tk.pad_rows(x, L), Group.TP, "reduce-scatter")
    src = torch.arange(comm.rank * (L // W), (comm.rank + 1) * (L // W))
    return out, tk.pad_ids(ids, L)[src], src


def dp_reduce_scatterv(comm, x, c, s, dp_starts):
    """V: sum over TP, each rank keeps its DP rank's tokens.
    NOTE: emulated as one reduce_scatter whose chunk r is rank r's DP block padded to the longest."""
    counts, attn_tp = tk.token_counts(c, s), c.attn_tp_size
    L = max(counts)
    dps = [attn_dp_rank(r, attn_tp) for r in range(comm.world)]
    chunks = [tk.pad_rows(x[dp_starts[d]: dp_starts[d] + counts[d]], L) for d in dps]
    d = attn_dp_rank(comm.rank, attn_tp)
    out = comm.reduce_scatter(torch.cat(chunks), Group.TP, "reduce-scatterv")[: counts[d]]
    return out, torch.arange(dp_starts[d], dp_starts[d] + counts[d])


def own_tokens(comm, case, dev):
    """Set the groups' layout; this rank's DP rank's tokens: hidden states, residual, global ids."""
    c, s = case.config, case.state
    comm.set_layout(c.moe_tp_size, c.attn_tp_size)
    d, counts = attn_dp_rank(comm.rank, c.attn_tp_size), tk.token_counts(c, s)
    x_d, res_d = (t.to(dev) for t in make_tokens(case.seed, d, counts[d]))
    return x_d, res_d, torch.arange(tk.offsets(counts)[d], tk.offsets(counts)[d + 1], device=dev)


def run_experts(comm, case, weights, sw, dev, gather, with_shared, group=None):
    """Every era's opening: this rank's tokens, gathered by the FP4 all-gather (Q) or DP attention's
    gather (`gather`) or neither; the experts on `sw` (`group`: the experts entry's, see entry); Q's
    combine. Returns out, ids, trace, dp_starts (the gather's DP blocks, else None), res_d."""
    c, s = case.config, case.state
    x_d, res_d, ids_d = own_tokens(comm, case, dev)
    Q = should_use_flashinfer_cutlass_moe_fp4_allgather(c)
    dp_starts = None
    if Q:
        gx, gids = fp4_dispatch(comm, c, s, x_d, dev)
    elif gather:
        gx, gids, dp_starts = dp_gather(comm, x_d, c, s, dev)
    else:
        gx, gids = x_d, ids_d
    # NOTE: no shared expert on the FP4 all-gather path (it would run on the local slice).
    out = shard_output(gx, weights.router.to(dev), sw, with_shared and not Q)
    trace, ids = [entry("experts", None, gids, out, group)], gids
    if Q:
        out, src = fp4_combine(comm, c, s, out)
        ids = gids[src.to(dev)]
        trace.append(entry("FP4 combine reduce-scatterv", src, ids, out, Group.TP))
    return out, ids, trace, dp_starts, res_d


def own_dp_rows(comm, c, s, dp_starts):
    """The rows of this rank's DP rank in a DP-gathered buffer (the DP scatter takes them back, no sum)."""
    d, counts = attn_dp_rank(comm.rank, c.attn_tp_size), tk.token_counts(c, s)
    return torch.arange(dp_starts[d], dp_starts[d] + counts[d])


def run_layer(comm, case, weights, sw, dev) -> dict:
    if getattr(case, "replicated_shared_expert", False):  # issue 16: actors.replicated.SharedCase
        from .replicated import run_replicated
        return run_replicated(comm, case, weights, sw, dev)
    if case.era == Era.V0_5_23:
        from .execute_0523 import run_layer as run_0523  # NOTE: it reuses this file's collectives
        return run_0523(comm, case, weights, sw, dev)
    c, s, m = case.config, case.state, catalogue.model(case.model)
    # NOTE: a decoder without a DP gather (proto.alignment) runs the MoE on its own DP rank's tokens.
    gather = scatters_hidden_states(c) and gathers_tokens(c, m)
    out, ids, trace, dp_starts, res_d = run_experts(comm, case, weights, sw, dev, gather, m.shared_expert)
    rows_differ = tokens_vary_at_sites(c, m)
    out, ids = run_sites(comm, c, s, m, case, out, ids, trace, rows_differ=rows_differ)
    return run_after(comm, c, s, m, out, ids, trace, rows_differ, dp_starts, res_d, weights, dev)


def run_sites(comm, c, s, m, case, out, ids, trace, rows_differ):
    for site in m.sites_of(case.variant):
        if semantics.site_runs(c, s, m, site, case.version):
            out = padded_all_reduce(comm, out.clone(), site.group, site.name, rows_differ)
            trace.append(entry(f"site {site.name} ({site.group.value})",
                               torch.arange(out.shape[0]), ids, out, site.group))
    return out, ids


def run_after(comm, c, s, m, out, ids, trace, rows_differ, dp_starts, res_d, weights, dev):
    after, normed, impl = after_experts(c, s, m), None, "-"
    n = out.shape[0]
    if after in (After.NEXT_LAYER_FUSED, After.NEXT_LAYER_AITER, After.NEXT_LAYER_UNFUSED):
        kind = next_layer_group(c, after)
        res_out, normed, impl = allreduce_residual_rmsnorm(
            comm, out.clone(), res_d, weights.norm.to(dev), kind, after.value,
            fused=after != After.NEXT_LAYER_UNFUSED)
        trace.append(entry(f"{after.value} ({kind.value})", torch.arange(n), ids, res_out - res_d, kind))
    elif after in (After.NEXT_LAYER_DECLINED, After.STAGE_BOUNDARY):
        # The fused kernel declined, or the mark was lost at a stage boundary: residual add and
        # RMSNorm with no all-reduce (what SGLang 0.5.11 runs there).
        res_out = out + res_d
        normed, impl = rms_norm(res_out, weights.norm.to(dev)), "RMSNorm, no all-reduce"
        trace.append(entry(after.value, torch.arange(n), ids, res_out - res_d))
    elif after == After.REDUCE_SCATTER:
        out, ids2, src = reduce_scatter_rows(comm, out, ids, rows_differ)
        trace.append(entry(f"{after.value} (tp)", src, ids2, out, Group.TP))
    elif after == After.REDUCE_SCATTERV:
        out, src = dp_reduce_scatterv(comm, out, c, s, dp_starts)
        trace.append(entry(f"{after.value} (tp)", src, ids[src.to(dev)], out, Group.TP))
    elif dp_starts is not None:
        # NOTE: DP scatter, or a decoder with no communicator under DP attention: this rank's
        # tokens are taken back without any sum.
        src = own_dp_rows(comm, c, s, dp_starts)
        trace.append(entry(after.value if after != After.NONE else "own DP rows, no postprocess",
                           src, ids[src.to(dev)], out[src.to(dev)]))
    return {"trace": trace, "after": after.value, "impl": impl,
            "normed": None if normed is None else normed.detach().cpu(), "residual": res_d.cpu()}
