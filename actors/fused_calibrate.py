"""GPU side of the fused-step table (actors/fused_table.py): run one variant, check it against the
unfused reference, time it in CUDA graphs, and agree on one table per group.

Shapes: T = tokens, D = hidden. Used by actors/fused.py, bench/gpu_comm.py, bench/moe_step.py and
bench/fi_probe.py, so that the benchmarks measure the code the actors run.
"""
from __future__ import annotations

import math
import socket
import statistics

import torch
import torch.distributed as dist

from .fused_table import VARIANTS, Shape, Table, allowed, merge_into_cache

ITERS, REPEATS = 10, 5   # a calibration's graph: 10 steps, the median of 5 replays
EPS = 1e-6


def machine_info() -> dict:
    """What a cached table is keyed by: host, GPU model and count, flashinfer, NCCL and torch."""
    try:
        import flashinfer  # noqa: PLC0415
        fi = flashinfer.__version__
    except Exception:  # noqa: BLE001
        fi = None
    return {"host": socket.gethostname(), "gpu": torch.cuda.get_device_name(), "gpus": torch.cuda.device_count(),
            "flashinfer": fi, "nccl": ".".join(map(str, torch.cuda.nccl.version())), "torch": torch.__version__}


def graph_time_us(fn, barrier=None, iters: int = ITERS, repeats: int = REPEATS) -> float:
    """Median microseconds per call of fn, captured in a CUDA graph of `iters` calls and replayed
    `repeats` times; `barrier` (for collectives) runs before each replay so that ranks start together."""
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        for _ in range(3):
            fn()
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph, capture_error_mode="thread_local"):
        for _ in range(iters):
            fn()
    times = []
    for _ in range(repeats):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        if barrier is not None:
            barrier()
        start.record()
        graph.replay()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end) * 1000 / iters)
    return statistics.median(times)


def run_fused(fc, ws, variant: str, x, residual, weight, norm_out, res_out, eps: float = EPS) -> None:
    """flashinfer's kARResidualRMSNorm with the kernel forced: res_out = sum + residual, norm_out = its norm."""
    fc.allreduce_fusion(input=x, workspace=ws, pattern=fc.AllReduceFusionPattern.kARResidualRMSNorm,
                        launch_with_pdl=True, residual_in=residual, residual_out=res_out, norm_out=norm_out,
                        rms_gamma=weight, rms_eps=eps, use_oneshot=variant == "oneshot")


def run_unfused(pg, x, residual, weight, eps: float = EPS):
    """NCCL all-reduce (in place), residual add, RMSNorm: (res_out, norm_out)."""
    dist.all_reduce(x, group=pg)
    h = x + residual
    return h, torch.nn.functional.rms_norm(h, (h.shape[-1],), weight, eps)


def step(variant, fc, ws, pg, x, residual, weight, norm_out, res_out):
    """A closure running one variant once (for graph_time_us)."""
    if variant == "unfused":
        return lambda: run_unfused(pg, x, residual, weight)
    return lambda: run_fused(fc, ws, variant, x, residual, weight, norm_out, res_out)


def tolerance(dtype, ref) -> float:
    """A few units in the last place of the largest value (at least 1e-3 of it: fp32 norms over
    thousands of elements differ by more than a few ulp between reduction orders): other summation
    orders pass, a sum that misses or repeats a rank's part (an error of the order of the values) does not."""
    return max(8 * torch.finfo(dtype).eps, 1e-3) * max(1.0, float(ref.abs().max()))


def check_variant(variant, fc, ws, pg, x, residual, weight) -> tuple[float, float]:
    """(max |difference|, tolerance) of a fused variant's residual and normed outputs against the
    unfused reference on the same inputs (this rank's; every member must call it)."""
    ref_res, ref_norm = run_unfused(pg, x.clone(), residual, weight)
    norm_out, res_out = torch.empty_like(x), torch.empty_like(x)
    run_fused(fc, ws, variant, x.clone(), residual, weight, norm_out, res_out)
    torch.cuda.synchronize()
    err = max(float((res_out.float() - ref_res.float()).abs().max()),
              float((norm_out.float() - ref_norm.float()).abs().max()))
    return err, max(tolerance(x.dtype, ref_res), tolerance(x.dtype, ref_norm))


def inputs(tokens, hidden, dtype, seed):
    g = torch.Generator(device="cuda").manual_seed(seed)
    x = torch.randn(tokens, hidden, dtype=dtype, device="cuda", generator=g)
    return x, torch.randn(tokens, hidden, dtype=dtype, device="cuda", generator=g), \
        torch.rand(hidden, dtype=dtype, device="cuda", generator=g) + 0.5


def group_barrier(pg):
    """A stream-ordered barrier: an all-reduce of one number on the current device (the timing's
    start event fires once every member has arrived)."""
    flag = torch.zeros(1, device="cuda")
    return lambda: dist.all_reduce(flag, group=pg)


def measure(fc, ws, pg, shape: Shape, tokens, seed: int = 0) -> dict[int, dict[str, float | None]]:
    """Each allowed variant at each token count: the fused ones checked against the unfused
    reference, then every one timed. One rank's numbers; a variant that fails its check gets
    infinity (never chosen)."""
    out, barrier = {}, group_barrier(pg)
    for T in tokens:
        x, residual, weight = inputs(T, shape.hidden, getattr(torch, shape.dtype), seed + 7919 * dist.get_rank() + T)
        out[T] = {}
        for v in VARIANTS:
            if not allowed(v, shape.group, T):
                continue
            if v != "unfused":
                err, tol = check_variant(v, fc, ws, pg, x, residual, weight)
                if not err <= tol:
                    out[T][v] = math.inf
                    continue
            norm_out, res_out = torch.empty_like(x), torch.empty_like(x)
            out[T][v] = graph_time_us(step(v, fc, ws, pg, x.clone(), residual, weight, norm_out, res_out), barrier)
    return out


def agree(times: dict | None, tokens, pg, src: int, reduce: bool, device="cuda") -> dict[int, dict[str, float | None]]:
    """One table for the whole group: the maximum over ranks (reduce) or rank `src`'s numbers.
    Infinity (a failed check) and NaN (not measured) come back as None and absent."""
    grid = torch.full((len(tokens), len(VARIANTS)), math.nan, dtype=torch.float64)
    for i, T in enumerate(tokens):
        for j, v in enumerate(VARIANTS):
            if times and v in times.get(T, {}) and times[T][v] is not None:
                grid[i, j] = times[T][v]
            elif times and v in times.get(T, {}):
                grid[i, j] = math.inf
    dev = grid.to(device)
    if reduce:
        dist.all_reduce(dev, op=dist.ReduceOp.MAX, group=pg)  # NaN (not allowed) is the same on every rank
    else:
        dist.broadcast(dev, src=src, group=pg)
    grid = dev.cpu()
    return {T: {v: (None if math.isinf(float(grid[i, j])) else float(grid[i, j]))
                for j, v in enumerate(VARIANTS) if not math.isnan(float(grid[i, j]))}
            for i, T in enumerate(tokens)}


def group_times(table: Table, cache, fc, ws, pg, ranks, rank, shape: Shape, tokens, device="cuda",
                measure_fn=measure) -> tuple[dict, bool]:
    """(the group's agreed times for `shape` at `tokens`, whether they were calibrated now).

    The group's first rank decides: if its table lacks the shape, every member measures and the
    maximum over ranks goes into the table (and into `cache`, a file, when given). Then every
    member takes the first rank's numbers, so all members choose alike. (`device` and
    `measure_fn` let tests run this agreement over gloo on CPU.)"""
    lead = ranks[0]
    need = torch.tensor([0 if table.covers(shape, tokens) else 1], device=device)
    dist.broadcast(need, src=lead, group=pg)
    calibrated = bool(need.item())
    if calibrated:
        times = agree(measure_fn(fc, ws, pg, shape, tokens), tokens, pg, lead, True, device)
        table.merge(shape, times)
        if rank == lead and cache is not None:
            merge_into_cache(cache, table.machine, shape, times)
    mine = {T: table.times(shape)[T] for T in tokens} if rank == lead else None
    return agree(mine, tokens, pg, lead, False, device), calibrated
