"""GPU floors and the fused step: (a) flashinfer's one-shot and two-shot all-reduce + residual +
RMSNorm kernels, flashinfer's own pick between them (what SGLang runs), and the variant the actors'
table chooses (actors/fused_table.py), against NCCL all-reduce, add and RMSNorm; (c) NCCL bus
bandwidth (per size, and the peak that the bus-bandwidth floor divides by) and the bf16 matmul rate.

The table is calibrated at start-up exactly as the actors do it (actors/fused_calibrate.py: every
variant checked, then timed in short CUDA graphs) unless --table gives one; the full timings below
are a separate, longer measurement, so "chosen" is tested, not defined, by them.

Shapes: T = tokens, D = hidden. Every timing is a CUDA graph of ITERS ops replayed REPEATS times,
timed with device events; the per-op median over repeats is reported. Needs CUDA, NCCL, and
flashinfer for the fused rows (they are reported as missing without it).

usage: python bench/gpu_comm.py --world 2 4 --out results.json [--table FILE] [--table-out FILE]
"""
from __future__ import annotations

import argparse
import json
import os
import socket
import sys

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

sys.path.insert(0, ".")
from bench.tables import bus_bandwidth_GBps  # noqa: E402
from sumonce.actors.fused_calibrate import (EPS, check_variant, graph_time_us, group_barrier, group_times,  # noqa: E402
                                            machine_info, step)
from sumonce.actors.fused_table import (BUCKETS, Shape, Table, TableError, allowed, choose, from_json,  # noqa: E402
                                        load, save)

TOKENS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)
HIDDEN = (2048, 4096, 7168)
ITERS, REPEATS = 20, 15


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def unfused_us(x, residual, weight):
    """NCCL all-reduce, residual add, RMSNorm (three launches): what the fused kernel replaces."""
    return time_us(step("unfused", None, None, None, x, residual, weight, None, None))


def time_us(fn, iters: int = ITERS, repeats: int = REPEATS) -> float:
    return graph_time_us(fn, group_barrier(None), iters, repeats)


def fused_us(fc, ws, x, residual, weight, variant):
    """One fused kernel: "oneshot" or "twoshot" forced, "default" lets flashinfer choose (its
    table, tuned on B200: what SGLang runs)."""
    out, res_out = torch.empty_like(x), torch.empty_like(x)
    if variant != "default":
        return time_us(step(variant, fc, ws, None, x, residual, weight, out, res_out))
    pattern = fc.AllReduceFusionPattern.kARResidualRMSNorm
    return time_us(lambda: fc.allreduce_fusion(
        input=x, workspace=ws, pattern=pattern, launch_with_pdl=True, residual_in=residual,
        residual_out=res_out, norm_out=out, rms_gamma=weight, rms_eps=EPS))


def say(rank, text):
    if rank == 0:
        print(text, flush=True)


def start_table(table_path):
    """The table the choices come from: a given file, or an empty one calibrated below."""
    return load(table_path) if table_path else Table(machine_info())


def size_row(fc, ws, world, hidden, tokens, weight, times):
    x = torch.randn(tokens, hidden, dtype=torch.bfloat16, device="cuda")
    residual = torch.randn_like(x)
    row = {"kind": "fused-vs-unfused", "world": world, "hidden": hidden, "tokens": tokens,
           "unfused_us": unfused_us(x.clone(), residual, weight)}
    if fc is not None:
        for v in ("oneshot", "twoshot", "default"):
            if allowed(v, world, tokens):
                row[f"{v}_us"] = fused_us(fc, ws, x, residual, weight, v)
                row[f"speedup_{v}"] = row["unfused_us"] / row[f"{v}_us"]
        row["chosen"] = choose(times, world, tokens)[0]
        row["chosen_us"] = row[f"{row['chosen']}_us"]
        row["speedup_chosen"] = row["unfused_us"] / row["chosen_us"]
    x2 = x.clone()
    row["allreduce_us"] = time_us(lambda: dist.all_reduce(x2))
    row["busbw_GBps"] = bus_bandwidth_GBps(world, x.numel() * x.element_size(), row["allreduce_us"])
    return row


def comm_rows(rank, world, fc, table_path):
    """Per hidden size: the table's times (calibrated now, or from the given file), then every
    variant timed at every size with the chosen one named."""
    rows, table = [], start_table(table_path)
    ws = None
    if fc is not None:
        ws = fc.create_allreduce_fusion_workspace(
            backend="trtllm", world_size=world, rank=rank, max_token_num=BUCKETS[-1],
            hidden_dim=max(HIDDEN), dtype=torch.bfloat16)
    ranks = list(range(world))
    for hidden in HIDDEN:
        weight = torch.rand(hidden, dtype=torch.bfloat16, device="cuda") + 0.5
        times = {}
        if fc is not None:
            shape = Shape(world, world, hidden, "bfloat16")
            times, calibrated = group_times(table, None, fc, ws, None, ranks, rank, shape, BUCKETS)
            say(rank, f"world {world} hidden {hidden}: table {'calibrated' if calibrated else table_path}")
            rows += check_rows(fc, ws, world, hidden, weight)
        for tokens in TOKENS:
            row = size_row(fc, ws, world, hidden, tokens, weight, times)
            say(rank, json.dumps(row))
            rows.append(row)
    return rows, table


def check_rows(fc, ws, world, hidden, weight, tokens=64):
    """Each fused kernel against all-reduce + add + RMSNorm at one size, before timing it."""
    torch.manual_seed(dist.get_rank())
    x = torch.randn(tokens, hidden, dtype=torch.bfloat16, device="cuda")
    residual = torch.randn_like(x)
    rows = []
    for v in ("oneshot", "twoshot"):
        err, tol = check_variant(v, fc, ws, None, x, residual, weight)
        rows.append({"kind": "fused-check", "world": world, "hidden": hidden, "tokens": tokens, "variant": v,
                     "max_abs_err": err, "tolerance": tol, "ok": err <= tol})
        say(dist.get_rank(), json.dumps(rows[-1]))
    return rows


def peak_busbw_row(world):
    """NCCL all-reduce at 64 and 256 MiB: the best bus bandwidth, the floor's denominator."""
    best = None
    for mib in (64, 256):
        x = torch.zeros(mib * 2 ** 19, dtype=torch.bfloat16, device="cuda")
        us = graph_time_us(lambda: dist.all_reduce(x), group_barrier(None), iters=5, repeats=5)
        row = {"kind": "peak-busbw", "world": world, "bytes": x.numel() * 2, "us": us,
               "busbw_GBps": bus_bandwidth_GBps(world, x.numel() * 2, us)}
        best = row if best is None or row["busbw_GBps"] > best["busbw_GBps"] else best
    return best


def matmul_row():
    n = 8192
    a = torch.randn(n, n, dtype=torch.bfloat16, device="cuda")
    b = torch.randn(n, n, dtype=torch.bfloat16, device="cuda")
    us = graph_time_us(lambda: a @ b, None, iters=10, repeats=10)
    return {"kind": "matmul", "n": n, "us": us, "TFLOPs": 2 * n ** 3 / (us * 1e-6) / 1e12}


def worker(rank, world, port, out_path, stall, table_path):
    import faulthandler
    faulthandler.dump_traceback_later(stall, exit=True)  # a hang says where it is
    torch.cuda.set_device(rank)
    # NOTE: flashinfer's workspace rendezvous needs a CPU-capable backend beside NCCL.
    dist.init_process_group("cuda:nccl,cpu:gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank,
                            world_size=world, device_id=torch.device("cuda", rank))
    try:
        import flashinfer.comm as fc
    except Exception as e:  # noqa: BLE001 - report why the fused rows are missing
        fc = None
        if rank == 0:
            print(f"flashinfer unavailable: {e}", file=sys.stderr)
    say(rank, f"world {world}: NCCL up, flashinfer {'importable' if fc else 'missing'}")
    rows = [matmul_row()] if rank == 0 and world == 2 else []
    if rows:
        say(rank, json.dumps(rows[0]))
    dist.barrier()
    rows.append(peak_busbw_row(world))
    say(rank, json.dumps(rows[-1]))
    comm, table = comm_rows(rank, world, fc, table_path)
    rows += comm
    if rank == 0:
        with open(out_path, "w") as f:
            json.dump({"device": torch.cuda.get_device_name(0), "world": world, "rows": rows,
                       "table": table.to_json(), "table_source": table_path or "calibrated"}, f, indent=1)
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
    p.add_argument("--table", help="a fused-step table file to choose from (default: calibrate at start-up)")
    p.add_argument("--table-out", help="write the tables used (every world's, merged) to this file")
    args = p.parse_args(argv)
    if args.table:
        try:
            load(args.table)
        except TableError as e:
            print(f"bench/gpu_comm.py: {e}", file=sys.stderr)
            return 2
    results = spawn_worlds("bench/gpu_comm.py", worker, args.world, args.out, args.stall, args.table)
    if results is None:
        return 2
    with open(args.out, "w") as f:
        json.dump(results, f, indent=1)
    if args.table_out:
        save_merged([from_json(res["table"], args.out) for res in results], args.table_out)
    for res in results:
        for r in res["rows"]:
            print(res["world"], brief(r) if r["kind"] == "fused-vs-unfused" else r)
    return 0


def brief(r) -> str:
    cols = [f"D={r['hidden']:5d} T={r['tokens']:4d} unfused {r['unfused_us']:7.1f} us"]
    for v in ("oneshot", "twoshot", "default"):
        if f"{v}_us" in r:
            cols.append(f"{v} {r[f'{v}_us']:7.1f} us x{r[f'speedup_{v}']:4.2f}")
    if "chosen" in r:
        cols.append(f"chosen {r['chosen']} x{r['speedup_chosen']:4.2f}")
    return "  ".join(cols + [f"allreduce {r['allreduce_us']:6.1f} us busbw {r['busbw_GBps']:6.1f} GB/s"])


def save_merged(tables, path):
    merged = Table(tables[0].machine)
    for t in tables:
        for shape, times in t.entries.items():
            merged.merge(shape, times)
    save(merged, path)


if __name__ == "__main__":
    sys.exit(main())
