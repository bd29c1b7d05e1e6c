"""Conformance: run cases on shard sets, measure each axis's sum count, and whether a sum mixed
tokens, from the real output, and compare them with proto's prediction in the case's era
(actors.eras.predicted: proto.semantics for 0.5.11, proto.models_0523 for 0.5.23)."""
from __future__ import annotations

from dataclasses import dataclass
from itertools import groupby

import torch

from sumonce.proto.semantics import SumCounts

from .driver import ShardSet
from .eras import predicted
from .layer import make_weights
from .measure import Measured, measure
from .reference import reference


@dataclass
class Row:
    case: object
    predicted: SumCounts
    measured: Measured
    predicted_mixes: bool
    after: str
    impl: str
    ok: bool
    problem: str | None


def tolerance(ref) -> float:
    return 1e-3 * max(1.0, ref.full.abs().max().item() if ref.full.numel() else 1.0)


def check(case, results: list[dict], weights) -> Row:
    c = case.config
    pred, pred_mixes = predicted(case)
    ref = reference(case, weights)
    got = measure(case, [r["trace"] for r in results], ref)
    problem = got.problem
    sizes = {"ep": c.ep_size, "moe_tp": c.moe_tp_size}
    once = all(getattr(got, a) == 1 for a, n in sizes.items() if n > 1) and not got.mixes
    close = got.max_err <= tolerance(ref)
    # NOTE: a sum the numbers could not see (e.g. an idle DP rank adding only padding) leaves the
    # output right although it ran; only a tie-broken step may explain "not once, yet close".
    if problem is None and (once and not close or not once and close and not got.tie_broken):
        problem = f"counts say exactly-once={once} but the output error is {got.max_err:.3g}"
    if problem is None and once:
        problem = normed_problem(results, ref)
    agree = all(getattr(got, a) == getattr(pred, a) for a, n in sizes.items() if n > 1)
    agree = agree and got.mixes == pred_mixes
    return Row(case, pred, got, pred_mixes, results[0]["after"], results[0]["impl"],
               problem is None and agree, problem)


def normed_problem(results, ref) -> str | None:
    for r, res in enumerate(results):
        if res["normed"] is None:
            continue
        ids = res["trace"][-1]["ids"]
        if not torch.allclose(res["normed"], ref.normed[ids], atol=1e-3, rtol=1e-3):
            return f"rank {r}: next layer's RMSNorm output differs from the reference"
    return None


def run_cases(cases, batch: int = 24, deadline_s: float = 120, use_gpu: bool = False,
              fault: tuple | None = None, on_rows=None, rows: list | None = None, on_placed=None) -> list[Row]:
    """Every case, grouped by world size and node layout (proto.nodes): one shard set (and its
    process groups) per world and layout. `rows`: a list the rows are appended to as they finish
    (kept when the run is interrupted)."""
    # NOTE: the driver's reference is tiny; torch's thread pool on a few shared cores makes it ~100x slower.
    torch.set_num_threads(1)
    rows, weights = ([] if rows is None else rows), {}
    cases = sorted(cases, key=lambda k: (k.world, k.layout))
    for (world, layout), group in groupby(cases, key=lambda k: (k.world, k.layout)):
        group = list(group)
        shards = ShardSet(world, use_gpu=use_gpu, timeout_s=deadline_s, layout=layout)
        if on_placed:
            on_placed(shards.placement)
        try:
            for i in range(0, len(group), batch):
                chunk = group[i: i + batch]
                per_rank = shards.call("run", chunk, fault, deadline_s=deadline_s)
                for j, case in enumerate(chunk):
                    key = (case.seed, world)
                    if key not in weights:
                        weights[key] = make_weights(case.seed, world=world)
                    rows.append(check(case, [per_rank[r][j] for r in range(world)], weights[key]))
                if on_rows:
                    on_rows(len(chunk))
        finally:
            shards.stop()
    return rows
