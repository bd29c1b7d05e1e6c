"""(b) One MoE layer step with Qwen3-30B-A3B-like shapes on 2 and 4 GPUs: exactly once (the
helper) against the double sum of issue #23729 (the qwen3_moe guards before #23731), and the
step's communication against a raw NCCL all-reduce of the same message, in the same run.

Configuration: tp = dp = ep = world, DP attention, no a2a backend (issue #23729's). Which
collectives run is proto's decision (the site guards at each version, `after_experts`), never
hand-written here. T tokens in the DP group (T / world per DP rank), D = 2048, E = 128 experts,
top-8, I = 768 per expert, bf16. Experts run as torch._grouped_mm.

Timings are CUDA graphs of the step, replayed REPEATS times, device events, medians. The routing
of the captured batch is fixed at capture (as a CUDA graph of a serving batch is).

The fused next layer (--fused-tokens): tp = ep = world, TP attention, flashinfer's all-reduce
fusion on (sm90); where proto says the post-experts all-reduce moves into the next layer's fused
all-reduce + residual + RMSNorm over the EP group (T <= 2048), the step ends with that fused step:
the variant the actors' table chooses (calibrated at start-up, or --table), beside the unfused NCCL
all-reduce + add + RMSNorm, each fused kernel forced, and flashinfer's own pick (what SGLang runs).

usage: python bench/moe_step.py --world 2 4 --tokens 64 8192 --fused-tokens 64 512 2048 --out moe_step.json
"""
from __future__ import annotations

import argparse
import json
import sys

import torch
import torch.distributed as dist

sys.path.insert(0, ".")
from bench.gpu_comm import spawn_worlds, time_us  # noqa: E402
from sumonce.actors.fused_calibrate import EPS, group_times, machine_info, run_fused, run_unfused  # noqa: E402
from sumonce.actors.fused_table import BUCKETS, Shape, Table, allowed, choose, load  # noqa: E402
from sumonce.proto import ForwardState, ServerConfig, catalogue  # noqa: E402
from sumonce.proto.config import GpuArch  # noqa: E402
from sumonce.proto.semantics import (After, after_experts, next_layer_group, site_runs)
from sumonce.proto.communicator import scatters_hidden_states  # noqa: E402
from sumonce.proto.sites import Group, Version  # noqa: E402

D, E, K, I = 2048, 128, 8, 768
VERSIONS = {"exactly once (helper)": Version.HELPER, "double sum (before #23731)": Version.PRE_23731}


def plan(world: int, version: Version) -> dict:
    """What proto says runs, for issue #23729's configuration."""
    c = ServerConfig(tp_size=world, dp_size=world, ep_size=world, enable_dp_attention=True)
    s, m = ForwardState(num_tokens=1), catalogue.model("qwen3_moe")
    sites = [site.group for site in m.sites_of(m.variants[0]) if site_runs(c, s, m, site, version)]
    return {"gather": scatters_hidden_states(c), "sites": sites, "after": after_experts(c, s, m)}


def fused_plan(world: int, tokens: int) -> dict:
    """What proto says runs with tp = ep = world, TP attention and the fusion on (helper guards)."""
    m = catalogue.model("qwen3_moe")
    c = ServerConfig(tp_size=world, ep_size=world, gpu_arch=GpuArch.SM90, flashinfer_available=True,
                     enable_flashinfer_allreduce_fusion=True, architecture=m.architectures[0])
    s = ForwardState(num_tokens=tokens)
    after = after_experts(c, s, m)
    sites = [site.group for site in m.sites_of(m.variants[0]) if site_runs(c, s, m, site, Version.HELPER)]
    return {"sites": sites, "after": after, "group": next_layer_group(c, after)}


def gmm_layout(w: torch.Tensor) -> torch.Tensor:
    """torch._grouped_mm wants the second operand of each group column-major on some builds:
    probe once and hand back the layout it takes."""
    x = torch.zeros(16, w.shape[1], dtype=w.dtype, device=w.device)
    offs = torch.full((w.shape[0],), 16, dtype=torch.int32, device=w.device)  # all rows in group 0
    try:
        torch._grouped_mm(x, w, offs=offs)
        return w
    except RuntimeError:
        return w.transpose(-2, -1).contiguous().transpose(-2, -1)


def experts(world, rank, T, gen):
    """Local experts' weights and a fixed routing of the gathered batch: a step closure."""
    El = E // world
    w13 = torch.randn(El, D, 2 * I, dtype=torch.bfloat16, device="cuda", generator=gen) * 0.02
    w2 = torch.randn(El, I, D, dtype=torch.bfloat16, device="cuda", generator=gen) * 0.02
    w13, w2 = gmm_layout(w13), gmm_layout(w2)
    router = torch.randn(D, E, dtype=torch.bfloat16, device="cuda", generator=gen) * 0.02
    x = torch.randn(T, D, dtype=torch.bfloat16, device="cuda", generator=gen)
    ids = torch.topk((x @ router).float(), K, dim=-1).indices
    local = ids - rank * El
    tok, slot = ((local >= 0) & (local < El)).nonzero(as_tuple=True)
    order = torch.argsort(local[tok, slot], stable=True)
    tok, eid = tok[order], local[tok, slot][order]
    offs = torch.bincount(eid, minlength=El).cumsum(0).to(torch.int32)
    out = torch.zeros(T, D, dtype=torch.bfloat16, device="cuda")

    def run(xin):
        torch.topk((xin @ router).float(), K, dim=-1)  # the router's cost; the routing is fixed
        h = torch._grouped_mm(xin.index_select(0, tok), w13, offs=offs)
        h = torch.nn.functional.silu(h[:, :I]) * h[:, I:]
        out.zero_().index_add_(0, tok, torch._grouped_mm(h, w2, offs=offs))
        return out
    return x, run


def step(world, rank, T, p, with_experts, x, run):
    local = torch.empty(T // world, D, dtype=torch.bfloat16, device="cuda")
    full = torch.empty(T, D, dtype=torch.bfloat16, device="cuda")

    def go():
        if p["gather"]:
            dist.all_gather_into_tensor(full, local)
        y = run(full if p["gather"] else x) if with_experts else full
        for group in p["sites"]:
            assert group in (Group.EP, Group.TP)  # ep == tp == world here: one group
            dist.all_reduce(y)
        if p["after"] in (After.REDUCE_SCATTERV, After.REDUCE_SCATTER):
            dist.reduce_scatter_tensor(local, y)
    return go


def fused_step(fc, ws, variant, p, with_experts, x, run, residual, weight):
    """Experts (or not), the sites proto runs, then the next layer's all-reduce + residual + RMSNorm."""
    y0 = torch.randn_like(x)
    norm_out, res_out = torch.empty_like(x), torch.empty_like(x)
    pattern = fc.AllReduceFusionPattern.kARResidualRMSNorm

    def go():
        y = run(x) if with_experts else y0
        for _ in p["sites"]:
            dist.all_reduce(y)
        if variant == "unfused":
            run_unfused(None, y, residual, weight)
        elif variant == "default":
            fc.allreduce_fusion(input=y, workspace=ws, pattern=pattern, launch_with_pdl=True, residual_in=residual,
                                residual_out=res_out, norm_out=norm_out, rms_gamma=weight, rms_eps=EPS)
        else:
            run_fused(fc, ws, variant, y, residual, weight, norm_out, res_out)
    return go


def fused_rows(rank, world, tokens, gen, table_path) -> list[dict]:
    """The fused next layer: per T, every variant's step and communication, the chosen one named."""
    import flashinfer.comm as fc
    ws = fc.create_allreduce_fusion_workspace(backend="trtllm", world_size=world, rank=rank,
                                              max_token_num=BUCKETS[-1], hidden_dim=D, dtype=torch.bfloat16)
    table = load(table_path) if table_path else Table(machine_info())
    times, calibrated = group_times(table, None, fc, ws, None, list(range(world)), rank,
                                    Shape(world, world, D, "bfloat16"), BUCKETS)
    weight = torch.rand(D, dtype=torch.bfloat16, device="cuda", generator=gen) + 0.5
    rows = []
    for T in tokens:
        p = fused_plan(world, T)
        if p["after"] != After.NEXT_LAYER_FUSED:
            if rank == 0:
                print(f"world {world} T={T}: proto does not fuse the next layer here ({p['after'].value}); skipped")
            continue
        x, run = experts(world, rank, T, gen)
        residual = torch.randn_like(x)
        chosen = choose(times, world, T)[0]
        for v in ("oneshot", "twoshot", "unfused", "default"):
            if not allowed(v, world, T):
                continue
            row = {"world": world, "tokens": T, "config": "tp=ep=world, fused next layer", "variant": v,
                   "chosen": chosen, "table": "calibrated" if calibrated else table_path,
                   "group": p["group"].value, "sites": [g.value for g in p["sites"]],
                   "step_us": time_us(fused_step(fc, ws, v, p, True, x, run, residual, weight), iters=5),
                   "comm_us": time_us(fused_step(fc, ws, v, p, False, x, run, residual, weight), iters=5)}
            rows.append(row)
            if rank == 0:
                print(json.dumps(row), flush=True)
    return rows


def worker(rank, world, port, out_path, tokens, fused_tokens, table_path):
    torch.cuda.set_device(rank)
    # NOTE: flashinfer's workspace rendezvous needs a CPU-capable backend beside NCCL.
    dist.init_process_group("cuda:nccl,cpu:gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank,
                            world_size=world, device_id=torch.device("cuda", rank))
    gen = torch.Generator(device="cuda").manual_seed(1234 + rank)
    rows = fused_rows(rank, world, fused_tokens, gen, table_path) if fused_tokens else []
    for T in tokens:
        x, run = experts(world, rank, T, gen)
        raw = torch.randn(T, D, dtype=torch.bfloat16, device="cuda")
        allreduce = time_us(lambda: dist.all_reduce(raw))
        for name, version in VERSIONS.items():
            p = plan(world, version)
            row = {"world": world, "tokens": T, "config": name, "sites": [g.value for g in p["sites"]],
                   "after": p["after"].value,
                   "step_us": time_us(step(world, rank, T, p, True, x, run), iters=5),
                   "comm_us": time_us(step(world, rank, T, p, False, x, run), iters=5),
                   "raw_allreduce_us": allreduce}
            row["comm_vs_allreduce"] = row["comm_us"] / allreduce
            rows.append(row)
            if rank == 0:
                print(json.dumps(row), flush=True)
    if rank == 0:
        with open(out_path, "w") as f:
            json.dump(rows, f, indent=1)
    dist.barrier()
    dist.destroy_process_group()


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--world", type=int, nargs="+", default=[2, 4])
    p.add_argument("--tokens", type=int, nargs="+", default=[64, 8192])
    p.add_argument("--fused-tokens", type=int, nargs="*", default=[64, 512, 2048],
                   help="T of the fused-next-layer configuration (none: skip it)")
    p.add_argument("--table", help="a fused-step table file (default: calibrate at start-up)")
    p.add_argument("--out", default="moe_step.json")
    args = p.parse_args(argv)
    per_world = spawn_worlds("bench/moe_step.py", worker, args.world, args.out, args.tokens, args.fused_tokens,
                             args.table)
    if per_world is None:
        return 2
    rows = [row for world_rows in per_world for row in world_rows]
    with open(args.out, "w") as f:
        json.dump(rows, f, indent=1)
    for r in rows:
        tail = (f"{r['variant']}{' (chosen)' if r['variant'] == r['chosen'] else ''}" if "variant" in r else
                f"raw all-reduce {r['raw_allreduce_us']:8.1f} us  x{r['comm_vs_allreduce']:.2f}")
        print(f"world {r['world']} T={r['tokens']:5d} {r['config']:<30} step {r['step_us']:9.1f} us  "
              f"comm {r['comm_us']:8.1f} us  {tail}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
