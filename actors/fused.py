"""The next layer's all-reduce + residual + RMSNorm. On GPU with flashinfer importable, the fastest
of flashinfer's one-shot kernel, its two-shot kernel and the unfused NCCL all-reduce + add + RMSNorm
for this (world, group size, hidden, dtype, tokens), read from a table measured at start-up (a short
calibration, cached per machine and flashinfer version: actors/fused_table.py) or given as a file
(SUMONCE_FUSED_TABLE); a torch path (all-reduce, add, norm) everywhere else. Shapes: T = tokens,
D = hidden.

The decision that this step runs, and over which group, is proto's (proto.semantics.after_experts);
this file only chooses the implementation, and says which one ran.
"""
from __future__ import annotations

import faulthandler
import os

import torch

from sumonce.proto.config import FUSE_ALLREDUCE_MAX_BATCH_SIZE

from .fused_table import BUCKETS, LABELS, Shape, startup_table
from .layer import EPS, rms_norm

_TABLE: list = []   # this process's (table, where it came from, cache file), read once


def flashinfer_comm():
    """flashinfer.comm when importable (GPU machines) and not switched off by
    SUMONCE_FLASHINFER=0, else None."""
    if os.environ.get("SUMONCE_FLASHINFER", "1") == "0":
        return None
    try:
        import flashinfer.comm as fc  # noqa: PLC0415
        return fc
    except Exception:  # noqa: BLE001  (ImportError, or a CUDA init failure inside the import)
        return None


def torch_path(comm, x, residual, weight, kind, name):
    """Unfused: all-reduce over the group, then residual add and RMSNorm."""
    summed = comm.all_reduce(x.clone(), kind, name)
    res_out = summed + residual
    return res_out, rms_norm(res_out, weight)


def process_table():
    if not _TABLE:
        from .fused_calibrate import machine_info  # noqa: PLC0415
        _TABLE.extend(startup_table(machine_info()))
    return _TABLE


def fusion_state(fc, comm, ranks, x):
    """(workspace, shape, the group's agreed times, where they came from) for this group, hidden
    size and dtype: made once, on the first fused step (a rendezvous of the group)."""
    key = (ranks, x.shape[-1], x.dtype)
    state = comm.fusion_workspaces.get(key)
    if state is not None:
        return state
    table, source, cache = process_table()
    shape = Shape(comm.world, len(ranks), x.shape[-1], str(x.dtype).removeprefix("torch."))
    pg, made = comm.groups[ranks], []

    def make():
        from .fused_calibrate import group_times  # noqa: PLC0415
        ws = fc.create_allreduce_fusion_workspace(
            backend="trtllm", world_size=len(ranks), rank=ranks.index(comm.rank),
            max_token_num=FUSE_ALLREDUCE_MAX_BATCH_SIZE, hidden_dim=x.shape[-1], dtype=x.dtype, group=pg)
        times, calibrated = group_times(table, cache, fc, ws, pg, ranks, comm.rank, shape, BUCKETS)
        made.append((ws, shape, times, "calibrated" if calibrated else source.split()[0]))
    # NOTE: workspace creation and calibration are a rendezvous of the group outside the counted
    # collectives; if they stall, the actor's stderr gets every thread's stack.
    faulthandler.dump_traceback_later(120)
    try:
        comm._run(f"fused-step workspace and table over {ranks}", make)
    finally:
        faulthandler.cancel_dump_traceback_later()
    comm.fusion_workspaces[key] = made[0]
    return made[0]


def chosen_path(fc, comm, x, residual, weight, kind, name):
    """The table's fastest variant for this group and token count: (res_out, normed, impl)."""
    from .fused_calibrate import run_fused  # noqa: PLC0415
    from .fused_table import choose  # noqa: PLC0415
    ws, shape, times, source = fusion_state(fc, comm, comm.ranks(kind), x)
    variant, _ = choose(times, shape.group, x.shape[0])
    impl = f"{LABELS[variant]} (fastest in the {source} table)"
    if variant == "unfused":
        return (*torch_path(comm, x, residual, weight, kind, name), impl)
    res_out, normed, x = torch.empty_like(x), torch.empty_like(x), x.contiguous()
    comm._run(f"flashinfer {variant} {name} over {kind}",
              lambda: run_fused(fc, ws, variant, x, residual, weight, normed, res_out, EPS))
    return res_out, normed, impl


def allreduce_residual_rmsnorm(comm, x, residual, weight, kind, name, fused: bool):
    """(residual_out = sum over the group + residual, normed, implementation name)."""
    if len(comm.ranks(kind)) > 1 and fused and x.is_cuda and x.shape[0] > 0:
        fc = flashinfer_comm()
        if fc is not None:
            try:
                return chosen_path(fc, comm, x, residual, weight, kind, name)
            except Exception as e:  # noqa: BLE001
                out = torch_path(comm, x, residual, weight, kind, name)
                return (*out, f"torch (flashinfer failed: {type(e).__name__}: {str(e)[:80]})")
    impl = "torch fallback of the fused kernel" if fused else "torch (unfused fallback)"
    return (*torch_path(comm, x, residual, weight, kind, name), impl)
