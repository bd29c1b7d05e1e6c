"""GPU floors and the fused step: (a) flashinfer's fused all-reduce + residual + RMSNorm against
NCCL all-reduce, add and RMSNorm, (c) NCCL bus bandwidth and the bf16 matmul rate.

Shapes: T = tokens, D = hidden. Every timing is a CUDA graph of ITERS ops replayed REPEATS times,
timed with device events; the per-op median over repeats is reported. Needs CUDA, NCCL, and
flashinfer for the fused rows (they are reported as missing without it).

usage: python bench/gpu_comm.py --world 2 4 --out results.json
"""
from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import sys

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

sys.path.insert(0, ".")
from bench.tables import bus_bandwidth_GBps  # noqa: E402

TOKENS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)
HIDDEN = (2048, 4096, 7168)
ITERS, REPEATS, EPS = 20, 15, 1e-6


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def graph_time_us(fn, iters: int = ITERS, repeats: int = REPEATS, together: bool = True) -> float:
    """Median microseconds per call of fn, captured in a CUDA graph of `iters` calls; `together`:
    every rank times fn at once (a barrier before each replay), for collectives."""
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        for _ in range(3):
            fn()
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        for _ in range(iters):
            fn()
    times = []
    for _ in range(repeats):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        if together:
            dist.barrier()
        start.record()
        graph.replay()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end) * 1000 / iters)
    return statistics.median(times)


def unfused_step(x, residual, weight):
    """NCCL all-reduce, residual add, RMSNorm: what the fused kernel replaces."""
    def step():
        dist.all_reduce(x)
        h = x + residual
        torch.nn.functional.rms_norm(h, (h.shape[-1],), weight, EPS)
    return step


def fused_step(fi, workspace, x, residual, weight, out, res_out, use_oneshot=None):
    """use_oneshot: None lets flashinfer choose (its table, tuned on B200, picks oneshot at every
    size measured here); False forces the two-shot kernel (reduce-scatter + all-gather inside)."""
    pattern = fi.comm.AllReduceFusionPattern.kARResidualRMSNorm
    def step():
        fi.comm.allreduce_fusion(input=x, workspace=workspace, pattern=pattern, launch_with_pdl=True,
                                 residual_in=residual, residual_out=res_out, norm_out=out,
                                 rms_gamma=weight, rms_eps=EPS, use_oneshot=use_oneshot)
    return step


def check_fused(fi, workspace, rank, world):
    """The fused kernel's normed output against all-reduce + add + RMSNorm, before timing it."""
    torch.manual_seed(rank)
    x = torch.randn(64, HIDDEN[0], dtype=torch.bfloat16, device="cuda")
    residual = torch.ones_like(x)
    weight = torch.rand(HIDDEN[0], dtype=torch.bfloat16, device="cuda")
    ref = x.clone()
    dist.all_reduce(ref)
    ref = torch.nn.functional.rms_norm(ref + residual, (HIDDEN[0],), weight, EPS)
    out, res_out = torch.empty_like(x), torch.empty_like(x)
    fused_step(fi, workspace, x, residual, weight, out, res_out)()
    torch.cuda.synchronize()
    return float((out.float() - ref.float()).abs().max())


def say(rank, text):
    if rank == 0:
        print(text, flush=True)


def comm_rows(rank, world, fi):
    rows = []
    workspace = None
    if fi is not None:
        workspace = fi.comm.create_allreduce_fusion_workspace(
            backend="trtllm", world_size=world, rank=rank, max_token_num=max(TOKENS),
            hidden_dim=max(HIDDEN), dtype=torch.bfloat16)
        err = check_fused(fi, workspace, rank, world)
        rows.append({"kind": "fused-check", "world": world, "max_abs_err": err})
        say(rank, f"world {world}: fused kernel vs all-reduce + add + RMSNorm, max |diff| {err:.3g}")
    for hidden in HIDDEN:
        weight = torch.rand(hidden, dtype=torch.bfloat16, device="cuda")
        for tokens in TOKENS:
            x = torch.randn(tokens, hidden, dtype=torch.bfloat16, device="cuda")
            residual = torch.randn_like(x)
            row = {"kind": "fused-vs-unfused", "world": world, "hidden": hidden, "tokens": tokens,
                   "unfused_us": graph_time_us(unfused_step(x, residual, weight))}
            if workspace is not None:
                out, res_out = torch.empty_like(x), torch.empty_like(x)
                row["fused_us"] = graph_time_us(fused_step(fi, workspace, x, residual, weight, out, res_out))
                row["speedup"] = row["unfused_us"] / row["fused_us"]
                if tokens > world:  # flashinfer's two-shot kernel needs more tokens than ranks
                    row["fused_twoshot_us"] = graph_time_us(
                        fused_step(fi, workspace, x, residual, weight, out, res_out, use_oneshot=False))
                    row["speedup_twoshot"] = row["unfused_us"] / row["fused_twoshot_us"]
            say(rank, json.dumps(row))
            x2 = x.clone()
            row["allreduce_us"] = graph_time_us(lambda: dist.all_reduce(x2))
            row["busbw_GBps"] = bus_bandwidth_GBps(world, x.numel() * x.element_size(), row["allreduce_us"])
            rows.append(row)
    return rows


def matmul_row():
    n = 8192
    a = torch.randn(n, n, dtype=torch.bfloat16, device="cuda")
    b = torch.randn(n, n, dtype=torch.bfloat16, device="cuda")
    us = graph_time_us(lambda: a @ b, iters=10, repeats=10, together=False)
    return {"kind": "matmul", "n": n, "us": us, "TFLOPs": 2 * n ** 3 / (us * 1e-6) / 1e12}


def worker(rank, world, port, out_path, stall):
    import faulthandler
    faulthandler.dump_traceback_later(stall, exit=True)  # a hang says where it is
    torch.cuda.set_device(rank)
    # NOTE: flashinfer's workspace rendezvous needs a CPU-capable backend beside NCCL.
    dist.init_process_group("cuda:nccl,cpu:gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank,
                            world_size=world, device_id=torch.device("cuda", rank))
    try:
        import flashinfer as fi
        import flashinfer.comm  # noqa: F401
    except Exception as e:  # noqa: BLE001 - report why the fused rows are missing
        fi = None
        if rank == 0:
            print(f"flashinfer unavailable: {e}", file=sys.stderr)
    say(rank, f"world {world}: NCCL up, flashinfer {'importable' if fi else 'missing'}")
    rows = [matmul_row()] if rank == 0 and world == 2 else []
    if rows:
        say(rank, json.dumps(rows[0]))
    dist.barrier()
    rows += comm_rows(rank, world, fi)
    if rank == 0:
        with open(out_path, "w") as f:
            json.dump({"device": torch.cuda.get_device_name(0), "world": world, "rows": rows}, f, indent=1)
    dist.barrier()
    dist.destroy_process_group()


def spawn_worlds(prog: str, worker, worlds, out: str, *extra) -> list | None:
    """Run worker(rank, world, port, path, *extra) on `world` GPUs for each world in turn; each
    world's rank 0 writes `path`; return what they wrote, in order. None (after one line on
    stderr) when the GPUs are not there."""
    if not torch.cuda.is_available():
        print(f"{prog}: needs CUDA GPUs; none here", file=sys.stderr)
        return None
    results = []
    for world in worlds:
        if world > torch.cuda.device_count():
            print(f"{prog}: --world {world} needs {world} GPUs, have {torch.cuda.device_count()}", file=sys.stderr)
            return None
        path = f"{out}.{world}"
        mp.spawn(worker, args=(world, free_port(), path, *extra), nprocs=world, join=True)
        with open(path) as f:
            results.append(json.load(f))
        os.remove(path)
    return results


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--world", type=int, nargs="+", default=[2])
    p.add_argument("--out", default="gpu_comm.json")
    p.add_argument("--stall", type=float, default=300, help="seconds before a stuck world dumps its stacks and exits")
    args = p.parse_args(argv)
    results = spawn_worlds("bench/gpu_comm.py", worker, args.world, args.out, args.stall)
    if results is None:
        return 2
    with open(args.out, "w") as f:
        json.dump(results, f, indent=1)
    for res in results:
        for r in res["rows"]:
            if r["kind"] == "fused-vs-unfused":
                print(f"world {res['world']} D={r['hidden']:5d} T={r['tokens']:4d} unfused {r['unfused_us']:8.1f} us"
                      f" fused {r.get('fused_us', float('nan')):8.1f} us x{r.get('speedup', float('nan')):5.2f}"
                      f" two-shot {r.get('fused_twoshot_us', float('nan')):8.1f} us x{r.get('speedup_twoshot', float('nan')):5.2f}"
                      f" allreduce {r['allreduce_us']:7.1f} us busbw {r['busbw_GBps']:6.1f} GB/s")
            else:
                print(res["world"], r)
    return 0


if __name__ == "__main__":
    sys.exit(main())
