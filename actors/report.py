"""Printing results: the progress bar, the per-row table, the summary table."""
from __future__ import annotations

from collections import Counter

from rich.console import Console
from rich.table import Table

from sumonce.proto import boundary, catalogue
from sumonce.proto.eras import Era
from sumonce.proto.semantics import decoder_fusion
from sumonce.proto.predicates import should_use_dp_reduce_scatterv as V
from sumonce.proto.predicates import should_use_flashinfer_cutlass_moe_fp4_allgather as Q

console = Console(width=200)


def fmt(n) -> str:
    return "-" if n is None else str(n)


def layout(c) -> str:
    dp = f" dpa{c.attn_dp_size}" if c.enable_dp_attention else ""
    pp = f" pp{c.pp_size}" if c.pp_size > 1 else ""
    nn = f" nnodes{c.nnodes}" if c.nnodes > 1 else ""
    return f"tp{c.tp_size} ep{c.ep_size} moetp{c.moe_tp_size}{dp}{pp}{nn} {c.gpu_arch.value}"


def world_text(world: int, spans: int) -> str:
    """The world, and how many nodes it spans where more than one (proto.nodes)."""
    return f"{world}" if spans == 1 else f"{world} on {spans} nodes"


def state_text(s) -> str:
    bits = [f"T={s.num_tokens}", s.dp_padding_mode.value]
    bits += [b for b, on in (("scattered", s.attn_tp_input_scattered), ("last", s.is_last_layer),
                             ("stage-last", s.is_stage_last_layer),
                             ("norm-not-fused", not s.next_norm_fused)) if on]
    return " ".join(bits)


def qvf(case) -> str:
    """Q, V and F as the case's era defines them (0.5.23: V needs attention TP 1; no F, the
    boundary defers instead)."""
    c, s = case.config, case.state
    if case.era == Era.V0_5_23:
        return "".join(x if v else "." for x, v in (("Q", Q(c)), ("V", boundary.should_use_dp_reduce_scatterv(c)))) + "-"
    F = decoder_fusion(c, s, catalogue.model(case.model))
    return "".join(x if v else "." for x, v in (("Q", Q(c)), ("V", V(c)), ("F", F)))


def row_table(rows, title: str) -> Table:
    t = Table(title=title)
    for col in ("model", "guards / era", "layout", "QVF", "state", "after the experts", "predicted ep,moe_tp",
                "measured ep,moe_tp", "mixes (pred/meas)", "max err", "impl", "ok"):
        t.add_column(col)
    for r in rows:
        c, s = r.case.config, r.case.state
        t.add_row(r.case.model, r.case.label, layout(c), qvf(r.case), state_text(s), r.after,
                  f"{r.predicted.ep},{r.predicted.moe_tp}", f"{fmt(r.measured.ep)},{fmt(r.measured.moe_tp)}",
                  f"{'Y' if r.predicted_mixes else '.'}/{'Y' if r.measured.mixes else '.'}",
                  f"{r.measured.max_err:.2g}", r.impl, "yes" if r.ok else f"NO {r.problem or 'count mismatch'}")
    return t


def summary_table(rows) -> Table:
    t = Table(title="conformance: measured sum counts vs proto's (0.5.11: proto.semantics; 0.5.23: proto.models_0523)")
    for col in ("world", "model", "guards / era", "rows", "exactly once", "double", "missing", "mixes tokens",
                "mismatches"):
        t.add_column(col, justify="right" if col not in ("model", "guards / era") else "left")
    groups = Counter()
    stats = {}
    for r in rows:
        key = (r.case.world, len(set(r.case.layout)), r.case.model, r.case.label)
        groups[key] += 1
        st = stats.setdefault(key, Counter())
        counts = [n for n in (r.measured.ep, r.measured.moe_tp) if n is not None]
        st["once"] += all(n == 1 for n in counts) and not r.measured.mixes
        st["mixes"] += r.measured.mixes
        st["double"] += any(n > 1 for n in counts)
        st["missing"] += any(n == 0 for n in counts)
        st["bad"] += not r.ok
    for key in sorted(groups):
        st = stats[key]
        t.add_row(world_text(*key[:2]), key[2], key[3], str(groups[key]), str(st["once"]), str(st["double"]),
                  str(st["missing"]), str(st["mixes"]), str(st["bad"]))
    return t
