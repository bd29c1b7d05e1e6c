"""The MoE layer's math, shared by the shards and the single-process reference.

Shapes: T = tokens, E = experts, El = local experts, D = hidden, I = intermediate (per shard),
K = top-k. Weights come from a seed; nothing is downloaded.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from sumonce.proto.layout import coords

HIDDEN, EXPERTS, INTERMEDIATE, TOP_K, SHARED_INTERMEDIATE = 64, 8, 32, 2, 32
EPS = 1e-6
FP4_VALUES = (0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0)  # e2m1 magnitudes
FP4_BLOCK = 16


@dataclass
class Weights:
    router: torch.Tensor   # [D, E]
    w1: torch.Tensor       # [E, D, I] gate
    w3: torch.Tensor       # [E, D, I] up
    w2: torch.Tensor       # [E, I, D] down
    ws1: torch.Tensor      # [D, Is] shared gate
    ws3: torch.Tensor      # [D, Is] shared up
    ws2: torch.Tensor      # [Is, D] shared down
    norm: torch.Tensor     # [D] next layer's RMSNorm weight


def layer_dims(world: int) -> tuple[int, int, int]:
    """Experts, intermediate and shared intermediate sized for a TP group of `world` ranks: the
    least multiples of the defaults that every ep | world, moe_tp | world and world divide."""
    return (math.lcm(EXPERTS, world), math.lcm(INTERMEDIATE, world), math.lcm(SHARED_INTERMEDIATE, world))


def make_weights(seed: int, dtype=torch.float32, world: int = 1) -> Weights:
    g = torch.Generator().manual_seed(seed)
    r = lambda *shape, s=0.2: (torch.randn(*shape, generator=g) * s).to(dtype)
    D, (E, I, Is) = HIDDEN, layer_dims(world)
    return Weights(r(D, E, s=1.0), r(E, D, I), r(E, D, I), r(E, I, D), r(D, Is), r(D, Is), r(Is, D),
                   1.0 + r(D, s=0.1))


def make_tokens(seed: int, dp_rank: int, count: int, dtype=torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
    """Hidden states and residual [T, D] of one attention-DP rank."""
    g = torch.Generator().manual_seed(seed * 1000 + 17 + dp_rank)
    return (torch.randn(count, HIDDEN, generator=g).to(dtype),
            torch.randn(count, HIDDEN, generator=g).to(dtype))


def route(x: torch.Tensor, router: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Softmax router, top-k, renormalised: ids and weights [T, K]."""
    probs = torch.softmax((x @ router).float(), dim=-1)
    w, ids = torch.topk(probs, TOP_K, dim=-1)
    return ids, (w / w.sum(-1, keepdim=True)).to(x.dtype)


def grouped_mm(x: torch.Tensor, w: torch.Tensor, offs: torch.Tensor) -> torch.Tensor:
    """Rows of x, sorted by group, times w[g] [El, K, N]; offs = cumulative rows per group."""
    try:
        return torch._grouped_mm(x, w, offs=offs)
    except (RuntimeError, AttributeError):
        # NOTE: dtypes or devices _grouped_mm refuses (e.g. float64, CUDA < SM90): a loop over
        # experts (never over tokens).
        starts = torch.cat([offs.new_zeros(1), offs[:-1]]).tolist()
        return torch.cat([x[s:e] @ w[i] for i, (s, e) in enumerate(zip(starts, offs.tolist()))]
                         + [x.new_zeros(0, w.shape[-1])])


def routed_experts(x, ids, weights, w1, w3, w2, first_expert: int) -> torch.Tensor:
    """Sum over this shard's experts [first, first+El) of weight * SwiGLU expert slice: [T, D]."""
    El = w1.shape[0]
    local = ids - first_expert
    tok, slot = ((local >= 0) & (local < El)).nonzero(as_tuple=True)
    eid = local[tok, slot]
    order = torch.argsort(eid, stable=True)
    tok, slot, eid = tok[order], slot[order], eid[order]
    offs = torch.bincount(eid, minlength=El).cumsum(0).to(torch.int32)
    xs = x[tok]
    h = torch.nn.functional.silu(grouped_mm(xs, w1, offs)) * grouped_mm(xs, w3, offs)
    y = grouped_mm(h, w2, offs) * weights[tok, slot].unsqueeze(-1)
    return x.new_zeros(x.shape).index_add_(0, tok, y)


def shared_expert(x, ws1, ws3, ws2) -> torch.Tensor:
    return (torch.nn.functional.silu(x @ ws1) * (x @ ws3)) @ ws2


def shard_weights(w: Weights, ep: int, moe_tp: int, world: int, rank: int) -> dict:
    """This rank's slices: experts of EP rank a, intermediate slice b, shared slice `rank`."""
    a, b = coords(rank, moe_tp)["ep"], coords(rank, moe_tp)["moe_tp"]
    E, I, S = w.w1.shape[0], w.w1.shape[2], w.ws1.shape[1]
    assert E % ep == 0 and I % moe_tp == 0 and S % world == 0, "weights not sized by layer_dims(world)"
    El, Il, Is = E // ep, I // moe_tp, S // world
    e, i, s = slice(a * El, (a + 1) * El), slice(b * Il, (b + 1) * Il), slice(rank * Is, (rank + 1) * Is)
    return dict(first_expert=a * El, w1=w.w1[e, :, i].contiguous(), w3=w.w3[e, :, i].contiguous(),
                w2=w.w2[e, i, :].contiguous(), ws1=w.ws1[:, s].contiguous(),
                ws3=w.ws3[:, s].contiguous(), ws2=w.ws2[s, :].contiguous())


def shard_output(x: torch.Tensor, router: torch.Tensor, sw: dict, with_shared: bool) -> torch.Tensor:
    """One shard's partial MoE output [T, D] (partial over EP and MoE-TP)."""
    ids, weights = route(x, router)
    out = routed_experts(x, ids, weights, sw["w1"], sw["w3"], sw["w2"], sw["first_expert"])
    if with_shared:
        out = out + shared_expert(x, sw["ws1"], sw["ws3"], sw["ws2"])
    return out


def fake_fp4(x: torch.Tensor) -> torch.Tensor:
    """Quantise to e2m1 with a scale per block of 16 and dequantise (NVFP4 emulated, row-wise)."""
    T, D = x.shape
    blocks = x.reshape(T, D // FP4_BLOCK, FP4_BLOCK)
    scale = blocks.abs().amax(-1, keepdim=True).clamp_min(1e-12) / 6.0
    grid = torch.tensor(FP4_VALUES, dtype=x.dtype, device=x.device)
    mag = (blocks.abs() / scale).unsqueeze(-1)
    q = grid[(mag - grid).abs().argmin(-1)] * blocks.sign()
    return (q * scale).reshape(T, D)


def rms_norm(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    xf = x.float()
    return (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + EPS)).to(x.dtype) * weight
