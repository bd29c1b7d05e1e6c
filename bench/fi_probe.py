"""GPU check of every variant the actors' fused-step table may choose: flashinfer's one-shot and
two-shot all-reduce + residual + RMSNorm kernels against NCCL all-reduce + add + RMSNorm (the
unfused variant, the reference), over the world and over sub-groups, for each dtype, at a token
count each kernel accepts. A stuck step dumps every thread's stack after --stall seconds and exits
(faulthandler), so a hang says where it is. Exit 0 when every check passes, 1 when one fails.

--calibrate then measures the world's table as the actors do at start-up (cached in
SUMONCE_CACHE_DIR, or read from there when it is already cached) and prints the choices.

usage: python bench/fi_probe.py --world 4 [--dtype bfloat16 float32] [--stall 60] [--calibrate]
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
from sumonce.actors.fused_calibrate import check_variant, group_times, inputs, machine_info  # noqa: E402
from sumonce.actors.fused_table import Shape, allowed, choose, startup_table  # noqa: E402

HIDDEN, TOKENS, CAL_TOKENS = 256, (1, 16), (1, 2, 4, 8, 16, 32, 64, 128)


def log(rank, text):
    print(f"[rank {rank} {time.strftime('%X')}] {text}", flush=True)


def workspace(fc, rank, ranks, group, dtype, tag):
    start = time.perf_counter()
    ws = fc.create_allreduce_fusion_workspace(backend="trtllm", world_size=len(ranks), rank=ranks.index(rank),
                                              max_token_num=128, hidden_dim=HIDDEN, dtype=dtype, group=group)
    log(rank, f"{tag}: workspace in {time.perf_counter() - start:.1f} s")
    return ws


def check_group(fc, rank, ranks, group, dtype, tag) -> int:
    """Both kernels at each token count they accept: the number of failed checks."""
    ws, failed = workspace(fc, rank, ranks, group, dtype, tag), 0
    for tokens in TOKENS:
        x, residual, weight = inputs(tokens, HIDDEN, dtype, seed=100 * rank + tokens)
        for variant in ("oneshot", "twoshot"):
            if not allowed(variant, len(ranks), tokens):
                continue
            err, tol = check_variant(variant, fc, ws, group, x, residual, weight)
            failed += not err <= tol
            log(rank, f"{tag}, {variant}, {tokens} tokens: max |fused - reference| = {err:.3g} "
                      f"(tolerance {tol:.3g}) {'ok' if err <= tol else 'FAILED'}")
    return failed


def calibrate(fc, rank, world, dtype_name):
    """The world's table for one dtype, as the actors make it at start-up: from the cache, or
    measured now and cached; rank 0 prints where it came from and what it chooses."""
    dtype, ranks = getattr(torch, dtype_name), list(range(world))
    ws = workspace(fc, rank, ranks, None, dtype, f"calibration, {dtype_name}")
    table, source, cache = startup_table(machine_info())
    shape = Shape(world, world, HIDDEN, dtype_name)
    times, calibrated = group_times(table, cache, fc, ws, None, ranks, rank, shape, CAL_TOKENS)
    if rank == 0:
        picks = ", ".join(f"{t}: {choose(times, world, t)[0]}" for t in CAL_TOKENS)
        print(f"table {dtype_name} hidden {HIDDEN}: {'calibrated' if calibrated else source}; chooses {picks}",
              flush=True)


def worker(rank, world, port, dtype_names, stall, cal):
    faulthandler.dump_traceback_later(stall, exit=True)
    torch.cuda.set_device(rank)
    dist.init_process_group("cuda:nccl,cpu:gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank,
                            world_size=world, device_id=torch.device("cuda", rank))
    log(rank, "process group up; importing flashinfer.comm")
    import flashinfer.comm as fc
    log(rank, "imported")
    subgroups = [dist.new_group([0, 2]), dist.new_group([1, 3])] if world == 4 else []
    ranks = [0, 2] if rank % 2 == 0 else [1, 3]
    failed = 0
    for name in dtype_names:
        dtype = getattr(torch, name)
        failed += check_group(fc, rank, list(range(world)), None, dtype, f"world, {name}")
        if subgroups:
            failed += check_group(fc, rank, ranks, subgroups[rank % 2], dtype, f"sub-group {ranks}, {name}")
        if cal:
            calibrate(fc, rank, world, name)
    total = torch.tensor([failed], device="cuda")
    dist.all_reduce(total)
    faulthandler.cancel_dump_traceback_later()
    dist.destroy_process_group()
    if rank == 0:
        print(f"probe: {int(total.item())} failed check(s) over {world} ranks", flush=True)
    if total.item():
        sys.exit(1)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--world", type=int, default=2)
    p.add_argument("--dtype", nargs="+", default=["bfloat16"], help="one or more of bfloat16, float16, float32")
    p.add_argument("--stall", type=float, default=60)
    p.add_argument("--calibrate", action="store_true", help="also make (or read) the cached table of the world")
    args = p.parse_args(argv)
    try:
        mp.spawn(worker, args=(args.world, free_port(), args.dtype, args.stall, args.calibrate),
                 nprocs=args.world, join=True)
    except mp.ProcessExitedException as e:
        print(f"bench/fi_probe.py: a rank exited with {e.exit_code}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
