"""GPU smoke test of flashinfer's fused all-reduce + residual + RMSNorm: workspace over the world
and over sub-groups, the fused output against all-reduce + add + RMSNorm. A stuck step dumps every
thread's stack after --stall seconds and exits (faulthandler), so a hang says where it is.

usage: python bench/fi_probe.py --world 4 [--dtype bfloat16 float32] [--stall 60]
"""
from __future__ import annotations

import argparse
import faulthandler
import sys
import time

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

sys.path.insert(0, ".")
from bench.gpu_comm import free_port  # noqa: E402


def log(rank, text):
    print(f"[rank {rank} {time.strftime('%X')}] {text}", flush=True)


def fused_vs_reference(fc, rank, ranks, group, dtype, tag):
    start = time.perf_counter()
    ws = fc.create_allreduce_fusion_workspace(backend="trtllm", world_size=len(ranks), rank=ranks.index(rank),
                                              max_token_num=128, hidden_dim=256, dtype=dtype, group=group)
    log(rank, f"{tag}: workspace in {time.perf_counter() - start:.1f} s")
    x = torch.randn(16, 256, dtype=dtype, device="cuda")
    residual, weight = torch.randn_like(x), torch.rand(256, dtype=dtype, device="cuda")
    ref = x.clone()
    dist.all_reduce(ref, group=group)
    ref = torch.nn.functional.rms_norm(ref + residual, (256,), weight, 1e-6)
    out, res_out = torch.empty_like(x), torch.empty_like(x)
    fc.allreduce_fusion(input=x, workspace=ws, pattern=fc.AllReduceFusionPattern.kARResidualRMSNorm,
                        residual_in=residual, residual_out=res_out, norm_out=out, rms_gamma=weight, rms_eps=1e-6)
    torch.cuda.synchronize()
    log(rank, f"{tag}: max |fused - reference| = {float((out.float() - ref.float()).abs().max()):.3g}")


def worker(rank, world, port, dtype_names, stall):
    faulthandler.dump_traceback_later(stall, exit=True)
    torch.cuda.set_device(rank)
    dist.init_process_group("cuda:nccl,cpu:gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank,
                            world_size=world)
    log(rank, "process group up; importing flashinfer.comm")
    import flashinfer.comm as fc
    log(rank, "imported")
    subgroups = [dist.new_group([0, 2]), dist.new_group([1, 3])] if world == 4 else []
    ranks = [0, 2] if rank % 2 == 0 else [1, 3]
    for name in dtype_names:
        dtype = getattr(torch, name)
        fused_vs_reference(fc, rank, list(range(world)), None, dtype, f"world, {name}")
        if subgroups:
            fused_vs_reference(fc, rank, ranks, subgroups[rank % 2], dtype, f"sub-group {ranks}, {name}")
    faulthandler.cancel_dump_traceback_later()
    dist.destroy_process_group()


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--world", type=int, default=2)
    p.add_argument("--dtype", nargs="+", default=["bfloat16"], help="one or more of bfloat16, float16, float32")
    p.add_argument("--stall", type=float, default=60)
    args = p.parse_args(argv)
    mp.spawn(worker, args=(args.world, free_port(), args.dtype, args.stall), nprocs=args.world, join=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
