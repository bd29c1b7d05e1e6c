"""(b) One MoE layer step with Qwen3-30B-A3B-like shapes on 2 and 4 GPUs: exactly once (the
helper) against the double sum of issue #23729 (the qwen3_moe guards before #23731), and the
step's communication against a raw NCCL all-reduce of the same message, in the same run.

Configuration: tp = dp = ep = world, DP attention, no a2a backend (issue #23729's). Which
collectives run is proto's decision (the site guards at each version, `after_experts`), never
hand-written here. T tokens in the DP group (T / world per DP rank), D = 2048, E = 128 experts,
top-8, I = 768 per expert, bf16. Experts run as torch._grouped_mm.

Timings are CUDA graphs of the step, replayed REPEATS times, device events, medians. The routing
of the captured batch is fixed at capture (as a CUDA graph of a serving batch is).

usage: python bench/moe_step.py --world 2 4 --tokens 64 8192 --out moe_step.json
"""
from __future__ import annotations

import argparse
import json
import sys

import torch
import torch.distributed as dist

sys.path.insert(0, ".")
from bench.gpu_comm import graph_time_us, spawn_worlds  # noqa: E402
from sumonce.proto import ForwardState, ServerConfig, catalogue  # noqa: E402
from sumonce.proto.semantics import After, after_experts, site_runs  # noqa: E402
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


def worker(rank, world, port, out_path, tokens):
    torch.cuda.set_device(rank)
    dist.init_process_group("nccl", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world,
                            device_id=torch.device("cuda", rank))
    gen = torch.Generator(device="cuda").manual_seed(1234 + rank)
    rows = []
    for T in tokens:
        x, run = experts(world, rank, T, gen)
        raw = torch.randn(T, D, dtype=torch.bfloat16, device="cuda")
        allreduce = graph_time_us(lambda: dist.all_reduce(raw))
        for name, version in VERSIONS.items():
            p = plan(world, version)
            row = {"world": world, "tokens": T, "config": name, "sites": [g.value for g in p["sites"]],
                   "after": p["after"].value,
                   "step_us": graph_time_us(step(world, rank, T, p, True, x, run), iters=5),
                   "comm_us": graph_time_us(step(world, rank, T, p, False, x, run), iters=5),
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
    p.add_argument("--out", default="moe_step.json")
    args = p.parse_args(argv)
    per_world = spawn_worlds("bench/moe_step.py", worker, args.world, args.out, args.tokens)
    if per_world is None:
        return 2
    rows = [row for world_rows in per_world for row in world_rows]
    with open(args.out, "w") as f:
        json.dump(rows, f, indent=1)
    for r in rows:
        print(f"world {r['world']} T={r['tokens']:5d} {r['config']:<28} step {r['step_us']:9.1f} us  "
              f"comm {r['comm_us']:8.1f} us  raw all-reduce {r['raw_allreduce_us']:8.1f} us  "
              f"x{r['comm_vs_allreduce']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
