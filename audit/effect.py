"""What a differing guard does under exactly-once semantics: proto.semantics.sum_counts of the
model with the guards read from source (the decoder's real absorbers), at a witness where the
guard differs from the helper; and, at the same point, the counts with the helper-based guards.
"""
from __future__ import annotations

import z3

from sumonce.proto import semantics
from sumonce.proto.sites import Group, Level, Model, Path, Site, Version

from .witness import find, flags, state
from .world import FormulaGuard

GROUPS = {"tp": Group.TP, "ep": Group.EP, "moe_tp": Group.MOE_TP}


def build_model(w, name, architectures, decoder, verdicts, guard_of) -> Model:
    """A proto Model whose sites are the audited ones, each with guard_of(verdict) as its guard."""
    sites = []
    for v in verdicts:
        level = Level.DECODER if "DecoderLayer" in v.method else Level.BLOCK
        sites.append(Site(name, v.method, Path(v.path), GROUPS[v.group], True, True,
                          {Version.HELPER: FormulaGuard(w, guard_of(v))}, level=level))
    blocks = tuple(s for s in sites if s.level == Level.BLOCK)
    variants = tuple(dict.fromkeys(s.method for s in blocks))
    return Model(name, architectures or (name,), decoder, variants, (), blocks,
                 tuple(s for s in sites if s.level == Level.DECODER))


def _counts(w, m, variant):
    n = w.lift(semantics.sum_counts, w.c, w.s, m, variant, Version.HELPER)
    return n.ep, n.moe_tp


def _axes(w, model, ep, moe_tp) -> str:
    out = []
    for axis, count, size in (("EP", ep, w.c.ep_size), ("MoE-TP", moe_tp, w.lifter.attribute(w.c, "moe_tp_size"))):
        n, k = model.eval(count, model_completion=True).as_long(), model.eval(size, model_completion=True).as_long()
        if k > 1 and n != 1:
            out.append(f"{axis} axis (size {k}) summed {'twice' if n == 2 else 'not at all' if n == 0 else f'{n} times'}")
    return "; ".join(out)


def effect(w, v, real: Model, helper_model: Model, reach) -> tuple[str, str]:
    """(detail, witness flags) for a site whose guard differs from the helper."""
    base = w.valid() + list(reach)
    scope = [w.lift(semantics.in_scope, w.c, real)]
    differ = v.formula != v.expected
    level_dec = "DecoderLayer" in v.method
    fF = semantics.decoder_fusion if level_dec else semantics.block_fusion
    fR = semantics.decoder_reduce_scatter if level_dec else semantics.block_reduce_scatter
    scope += [w.F == w.lift(fF, w.c, w.s, real), w.R == w.lift(fR, w.c, w.s, real), w.state_valid]
    variant = v.method if any(s.method == v.method for s in real.sites) else real.variants[0] if real.variants else ""
    ep, tp = _counts(w, real, variant)
    bad = z3.Not(w.lift(semantics.exactly_once, w.c, w.s, real, variant, Version.HELPER))
    m = find(w, z3.And(differ, bad), base + scope)
    if m is not None:
        hep, htp = _counts(w, helper_model, variant)
        with_helper = _axes(w, m, hep, htp) or "exactly once"
        here = "runs" if z3.is_true(m.eval(v.formula, model_completion=True)) else "skips"
        return (f"{here} where the helper does not: {_axes(w, m, ep, tp)} at {flags(w, m)}"
                f"{_flags_state(w, m)}; with the helper: {with_helper}", flags(w, m))
    m = find(w, differ, base + scope) or find(w, differ, base)
    if m is None:
        return "differs only outside valid configurations", ""
    here = "runs" if z3.is_true(m.eval(v.formula, model_completion=True)) else "skips"
    return (f"{here} where the helper does not, at {flags(w, m)}{_flags_state(w, m)}; every axis is still "
            f"summed exactly once in this model (no reachable double or missing sum)", flags(w, m))


def _flags_state(w, m) -> str:
    _c, _s, F, R = w.concrete(m)
    st = state(w, m)
    return f" (block F={F}, R={R}{', ' + st if st else ''})"

