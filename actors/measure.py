"""Sum counts measured from the shards' real outputs, never from proto.

For every step of the trace, which partial axes did that collective sum? Candidates are the sets
of axes of size > 1; for a candidate, rank r's expected output is the sum, over the ranks that
share r's index on every other axis, of their previous buffers at the step's source rows. The
candidate that explains every rank's numbers is what the step summed; an axis's count is the
number of steps that summed it. A sum whose members held different real tokens at the rows it
added (their previous entries' ids differ) *mixes tokens*: neither a double nor a missing sum, and
counted apart. The experts call's own output is compared with the reference's shard partials,
and with their sums over each candidate: a rank that computed more than its shard (dwdp: every
expert on its own rows) holds a complete output, counted as that sum. Shapes: T = tokens, D = hidden.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from itertools import combinations

import torch

from sumonce.proto.layout import summing_group

ATOL, RTOL = 1e-4, 1e-4


@dataclass
class Measured:
    ep: int | None            # None: the axis has size 1 (a sum over it is the identity)
    moe_tp: int | None
    steps: list = field(default_factory=list)   # (step name, axes it summed)
    max_err: float = 0.0      # final output vs the reference's exactly-once output
    problem: str | None = None
    tie_broken: int = 0       # steps the numbers alone could not attribute to one axis
    mixes: bool = False       # some sum added rows of different tokens
    mixed_steps: list = field(default_factory=list)


def group_of(r: int, axes: tuple, world: int, moe_tp: int) -> list[int]:
    return summing_group(r, axes, world, moe_tp)


def pad_to(x: torch.Tensor, n: int) -> torch.Tensor:
    return torch.cat([x, x.new_zeros(max(n - x.shape[0], 0), x.shape[1])])


def explains(prev, cur, axes, world, moe_tp) -> bool:
    n = max([p.shape[0] for p in prev] + [int(e["src"].max()) + 1 for e in cur if len(e["src"])] + [0])
    padded = [pad_to(p, n) for p in prev]
    for r, e in enumerate(cur):
        expect = sum(padded[q] for q in group_of(r, axes, world, moe_tp))[e["src"]]
        if not torch.allclose(e["values"], expect, atol=ATOL, rtol=RTOL):
            return False
    return True


def pad_ids(ids: torch.Tensor, n: int) -> torch.Tensor:
    return torch.cat([ids, ids.new_full((max(n - ids.shape[0], 0),), -1)])


def mixes_tokens(prev_ids, cur, axes, world, moe_tp) -> bool:
    """Did the sum over `axes` add, at some row, two members' rows holding different real tokens?
    (-1 marks padding, whose partial is zero.)"""
    if not axes:
        return False
    n = max([len(p) for p in prev_ids] + [int(e["src"].max()) + 1 for e in cur if len(e["src"])] + [0])
    padded = [pad_ids(p, n) for p in prev_ids]
    for r, e in enumerate(cur):
        rows = torch.stack([padded[q][e["src"]] for q in group_of(r, axes, world, moe_tp)])
        real = rows >= 0
        hi = rows.max(0).values  # padding (-1) never wins over a real id
        lo = torch.where(real, rows, torch.full_like(rows, 2 ** 62)).min(0).values
        if bool(((real.sum(0) > 1) & (hi != lo)).any()):
            return True
    return False


def matches(e: dict, full: torch.Tensor) -> bool:
    """A trace entry's real rows equal `full` [T_global, D] at their token ids."""
    keep = e["ids"] >= 0
    return torch.allclose(e["values"][keep], full[e["ids"][keep]], atol=ATOL, rtol=RTOL)


def experts_axes(traces, ref, cands, world, moe_tp) -> list[tuple]:
    """Which sums of the reference's shard partials the experts call's outputs are: () for each
    rank's own partial (the usual EP x MoE-TP shard); a sum over axes where every rank computed
    more than its shard (every expert on its own rows: the output is complete already)."""
    hits = []
    for ax in cands:
        if all(matches(t[0], sum(ref.partials[q] for q in group_of(r, ax, world, moe_tp)))
               for r, t in enumerate(traces)):
            hits.append(ax)
            if ax == ():
                break  # NOTE: the usual case; a sum is only tried when the shard's partial fails
    return hits


def first_step(out: Measured, traces, ref, cands, world, moe_tp) -> None:
    """The experts call: its output is the shard's partial, or a complete sum (counted)."""
    hits = experts_axes(traces, ref, cands, world, moe_tp)
    used = tuple(traces[0][0].get("axes", ()))
    if len(hits) > 1:
        hits = [used] if used in hits else [()] if () in hits else hits
    if len(hits) != 1:
        bad = [r for r, t in enumerate(traces)
               if not any(matches(t[0], sum(ref.partials[q] for q in group_of(r, ax, world, moe_tp))) for ax in cands)]
        out.problem = out.problem or (f"rank {bad[0]}: experts output differs from the reference shard" if bad else
                                      "the ranks' experts outputs are different sums of the reference shards")
        return
    if hits[0]:
        out.steps.append(("experts", hits[0]))
        for axis in hits[0]:
            setattr(out, axis, getattr(out, axis) + 1)


def measure(case, traces: list[list[dict]], ref) -> Measured:
    """traces[r] is rank r's trace; ref the single-process Reference."""
    c = case.config
    world, moe_tp = c.tp_size, c.moe_tp_size
    live = [a for a, size in (("ep", c.ep_size), ("moe_tp", moe_tp)) if size > 1]
    cands = [ax for k in range(len(live) + 1) for ax in combinations(live, k)]
    out = Measured(0 if c.ep_size > 1 else None, 0 if moe_tp > 1 else None)
    first_step(out, traces, ref, cands, world, moe_tp)
    names = [[e["step"] for e in t] for t in traces]
    if any(n != names[0] for n in names):
        out.problem = out.problem or "ranks ran different steps"
    for k in range(1, len(traces[0])):
        prev, cur = [t[k - 1]["values"] for t in traces], [t[k] for t in traces]
        hits = [ax for ax in cands if explains(prev, cur, ax, world, moe_tp)]
        used = tuple(a for a in cur[0].get("axes", ()) if a in live)
        if len(hits) > 1 and used in hits:
            # NOTE: the numbers cannot tell these sums apart (a tensor already summed over both
            # axes, groups of one size); the shard's own group names which ran.
            hits, out.tie_broken = [used], out.tie_broken + 1
        if len(hits) != 1:
            what = "no" if not hits else "several"
            out.problem = out.problem or f"step {names[0][k]!r}: {what} candidate sums explain the output"
            continue
        out.steps.append((names[0][k], hits[0]))
        prev_ids = [t[k - 1]["ids"] for t in traces]
        if mixes_tokens(prev_ids, cur, hits[0], world, moe_tp):
            out.mixes = True
            out.mixed_steps.append(names[0][k])
        for axis in hits[0]:
            setattr(out, axis, getattr(out, axis) + 1)
    out.max_err = final_error(traces, ref)
    return out


def final_error(traces, ref) -> float:
    err = 0.0
    for t in traces:
        e = t[-1]
        keep = e["ids"] >= 0
        if keep.any():
            diff = (e["values"][keep] - ref.full[e["ids"][keep]]).abs().max().item()
            err = max(err, diff)
    return err
