"""The single-process reference: the same layer from the same weights on one device, unsharded,
plus each shard's partial (to check the shards' experts output). Shapes: T = tokens, D = hidden.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from sumonce.proto import catalogue
from sumonce.proto.predicates import should_use_flashinfer_cutlass_moe_fp4_allgather

from . import tokens as tk
from .layer import (Weights, fake_fp4, make_tokens, rms_norm,
                    routed_experts, route, shard_output, shard_weights, shared_expert)


@dataclass
class Reference:
    full: torch.Tensor       # [T, D] the MoE output summed exactly once, every global token
    partials: list           # per rank [T, D]: that shard's partial
    residual: torch.Tensor   # [T, D]
    normed: torch.Tensor     # [T, D] RMSNorm(full + residual), the next layer's input


_CACHE: dict = {}


def reference(case, w: Weights) -> Reference:
    """Cached on what it depends on: many cases of a sweep share one layer."""
    c, s = case.config, case.state
    Q = should_use_flashinfer_cutlass_moe_fp4_allgather(c)
    key = (case.seed, id(w), tuple(tk.token_counts(c, s)), Q, catalogue.model(case.model).shared_expert,
           c.tp_size, c.ep_size)
    if key not in _CACHE:
        if len(_CACHE) > 256:
            _CACHE.clear()
        _CACHE[key] = compute(case, w, Q)
    return _CACHE[key]


def compute(case, w: Weights, Q: bool) -> Reference:
    c, s = case.config, case.state
    xs, rs = zip(*(make_tokens(case.seed, d, n) for d, n in enumerate(tk.token_counts(c, s))))
    x, res = torch.cat(xs), torch.cat(rs)
    if Q:
        x = fake_fp4(x)
    with_shared = catalogue.model(case.model).shared_expert and not Q
    ids, weights = route(x, w.router)
    full = routed_experts(x, ids, weights, w.w1, w.w3, w.w2, 0)
    if with_shared:
        full = full + shared_expert(x, w.ws1, w.ws3, w.ws2)
    W = c.tp_size
    partials = [shard_output(x, w.router, shard_weights(w, c.ep_size, c.moe_tp_size, W, r), with_shared)
                for r in range(W)]
    return Reference(full, partials, res, rms_norm(full + res, w.norm))
