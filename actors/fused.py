"""The next layer's all-reduce + residual + RMSNorm: flashinfer's fused kernel on GPU when it is
importable, a torch path (all-reduce, add, norm) everywhere else. Shapes: T = tokens, D = hidden.

The decision that this step runs, and over which group, is proto's (proto.semantics.after_experts); this file only
chooses the implementation from what is installed, and says which one ran.
"""
from __future__ import annotations

import faulthandler
import os

import torch

from sumonce.proto.config import FUSE_ALLREDUCE_MAX_BATCH_SIZE

from .layer import EPS, rms_norm


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


def flashinfer_path(fc, comm, x, residual, weight, kind, name):
    """flashinfer's kARResidualRMSNorm over the group's ranks (one IPC workspace per group).

    Run on 2 and 4 H200s (docs/PERF.md); any failure falls back to the torch path and says so.
    """
    ranks = comm.ranks(kind)
    key = (ranks, x.shape[-1], x.dtype)  # a workspace is sized for one hidden size and dtype
    ws = comm.fusion_workspaces.get(key)
    if ws is None:
        # NOTE: workspace creation is a rendezvous of the group outside the counted collectives;
        # if it stalls, the actor's stderr gets every thread's stack.
        faulthandler.dump_traceback_later(60)
        try:
            ws = fc.create_allreduce_fusion_workspace(
                backend="trtllm", world_size=len(ranks), rank=ranks.index(comm.rank),
                max_token_num=FUSE_ALLREDUCE_MAX_BATCH_SIZE, hidden_dim=x.shape[-1], dtype=x.dtype, group=comm.groups[ranks])
        finally:
            faulthandler.cancel_dump_traceback_later()
        comm.fusion_workspaces[key] = ws
    res_out, normed = torch.empty_like(x), torch.empty_like(x)
    comm._run(f"flashinfer allreduce_fusion {name} over {kind}", lambda: fc.allreduce_fusion(
        input=x.contiguous(), workspace=ws, pattern=fc.AllReduceFusionPattern.kARResidualRMSNorm,
        residual_in=residual, residual_out=res_out, norm_out=normed, rms_gamma=weight, rms_eps=EPS))
    return res_out, normed


def allreduce_residual_rmsnorm(comm, x, residual, weight, kind, name, fused: bool):
    """(residual_out = sum over the group + residual, normed, implementation name)."""
    if len(comm.ranks(kind)) > 1 and fused and x.is_cuda and x.shape[0] > 0:
        fc = flashinfer_comm()
        if fc is not None:
            try:
                return (*flashinfer_path(fc, comm, x, residual, weight, kind, name), "flashinfer")
            except Exception as e:  # noqa: BLE001
                out = torch_path(comm, x, residual, weight, kind, name)
                return (*out, f"torch (flashinfer failed: {type(e).__name__}: {str(e)[:80]})")
    impl = "torch fallback of the fused kernel" if fused else "torch (unfused fallback)"
    return (*torch_path(comm, x, residual, weight, kind, name), impl)
