"""What the guards of one forward do together, within one decoder's facts: proto.semantics.sum_counts
of the forward with the guards read from source, against the same forward with one helper-based
guard per group (a duplicated reduce, a dead one, one that cannot run in scope, or a guard that
differs in effect shows up as a count that differs on an axis of size > 1).
"""
from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace

import z3
from sumonce.proto import semantics
from sumonce.proto.sites import GROUP_AXES, Axis, Group, Level, Model, Site, Version
from sumonce.spec.solve import Status

from .context import Context
from .judge import TIMEOUT_MS, Guard, expected_guard, flag_facts, scope, site_path
from .memo import check
from .release_world import FormulaGuard
from .witness import concrete, find, flags, state


@dataclass
class Entry:
    """One site of a forward, as judged within one decoder."""
    key: str
    """The forward variant it belongs to (file:Class.method) or "" for a decoder-level site."""
    site: object
    """The AuditedSite."""
    raw: object
    guard: Guard
    runs: bool = True
    """False: dead code (the count takes it as never running)."""
    witness: str = ""
    """SGLang flags where the forward's counts differ (set when it is to blame)."""
    comparable: bool = True
    """False: a helper form whose skips proto cannot compare (the 0.5.23 context form)."""


def premises(w, ctx: Context, raw) -> list:
    """Validity, scope and F, R as ctx's decoder gives them; and, so that every witness is a
    configuration the model can run, proto's own reachability: the model supports it
    (semantics.model_supports) and SGLang does not crash there (semantics.crashes)."""
    (F, fF), (R, fR) = flag_facts(w, ctx, raw)
    m = ctx.model()
    runs = [w.lift(semantics.model_supports, w.c, m), z3.Not(w.lift(semantics.crashes, w.c, w.s, m))]
    return scope(w, ctx) + runs + [F == fF, R == fR]


def _model(w, ctx: Context, entries: list[Entry], guard_of) -> Model:
    sites = []
    for e in entries:
        level = Level.DECODER if not e.key else Level.BLOCK
        sites.append(Site(ctx.stem, e.key, e.site.path, e.site.group, True, True,
                          {Version.HELPER: FormulaGuard(w, guard_of(e))}, level=level))
    blocks = tuple(s for s in sites if s.level == Level.BLOCK)
    variants = tuple(dict.fromkeys(s.method for s in blocks)) or ("",)
    d = ctx.model()
    return Model(d.name, d.architectures, d.decoder, variants, (), blocks,
                 tuple(s for s in sites if s.level == Level.DECODER))


def _real(e: Entry):
    return z3.And(e.guard.formula, *e.guard.reach) if e.runs else z3.BoolVal(False)


def _reference(entries: list[Entry]):
    """The helper-based forward: one helper-guarded site per axis (the first, by line, of the
    sites that sum it; a later site summing an axis already summed is left out), reached wherever
    any of the sites of its group is reached. The block's sites and the decoder's (a parallel
    block's all-reduce of the block's output) are one forward: an axis both sum is summed twice."""
    covered, kept = set(), {}
    for e in sorted(entries, key=lambda e: (e.key, e.raw.line)):
        axes = set(GROUP_AXES[e.site.group])
        if not axes & covered:
            kept[id(e)] = [x for x in entries if x.site.group == e.site.group]
        covered |= axes

    def guard_of(e: Entry):
        same = kept.get(id(e))
        if same is None:
            return z3.BoolVal(False)
        return z3.And(e.guard.expected, z3.Or(*[z3.And(*x.guard.reach) for x in same]))
    return guard_of


@dataclass
class Forward:
    """One forward variant of one decoder: its counts with the real and the reference guards."""
    w: object
    ctx: Context
    variant: str
    real: tuple
    ref: tuple

    def differ(self):
        """The real forward does not sum exactly once, and the helper-based one sums otherwise."""
        w, c = self.w, self.w.c
        moe_tp = w.lifter.attribute(c, "moe_tp_size")
        changed = z3.Or(z3.And(c.ep_size > 1, self.real[0] != self.ref[0]),
                        z3.And(moe_tp > 1, self.real[1] != self.ref[1]))
        bad = z3.Or(z3.And(c.ep_size > 1, self.real[0] != 1), z3.And(moe_tp > 1, self.real[1] != 1))
        return z3.And(changed, bad)

    def summed_twice(self, m) -> bool:
        """At m, some axis of size > 1 is summed more than once by the source's forward."""
        w, c = self.w, self.w.c
        sizes = (c.ep_size, w.lifter.attribute(c, "moe_tp_size"))
        return any(m.eval(n, model_completion=True).as_long() > 1 and m.eval(k, model_completion=True).as_long() > 1
                   for n, k in zip(self.real, sizes))

    def explain(self, m) -> str:
        """The counts at m, e.g. "EP axis (size 2) summed twice at FLAGS (block F=.., R=..);
        with the helper: exactly once"."""
        w = self.w
        real, ref = _axes(w, m, *self.real), _axes(w, m, *self.ref)
        return f"{real or 'exactly once'} at {flags(w, m)}{_flags_state(w, m)}; with the helper: {ref or 'exactly once'}"


def _missing_axes(w, ctx: Context, entries: list[Entry]) -> list[Entry]:
    """An axis no site of a forward sums: the reference sums it with a helper-guarded all-reduce
    over that axis's own group, reached where the forward's first site is; the source never does."""
    out = []
    for key in dict.fromkeys(e.key for e in entries if e.key):
        first = min((e for e in entries if e.key == key), key=lambda e: e.raw.line)
        covered = {a for e in entries if e.key in (key, "") for a in GROUP_AXES[e.site.group]}
        for axis in (a for a in Axis if a not in covered):
            group = Group(axis.value)
            site = SimpleNamespace(path=site_path(group), group=group)
            guard = Guard(z3.BoolVal(False), expected_guard(w, first.raw, group, ctx), reach=list(first.guard.reach))
            out.append(Entry(key, site, first.raw, guard, runs=False))
    return out


def forward(w, ctx: Context, entries: list[Entry], variant: str) -> Forward:
    entries = entries + _missing_axes(w, ctx, entries)
    real, ref = _model(w, ctx, entries, _real), _model(w, ctx, entries, _reference(entries))
    counts = []
    for m in (real, ref):
        n = w.lift(semantics.sum_counts, w.c, w.s, m, variant, Version.HELPER)
        counts.append((n.ep, n.moe_tp))
    return Forward(w, ctx, variant, counts[0], counts[1])


def witness(fw: Forward, extra, premise) -> z3.ModelRef | None:
    """A readable point where the counts differ (and `extra` holds); None where there is none."""
    claim = z3.And(fw.differ(), *extra)
    if check(fw.w, z3.Not(claim), premise, TIMEOUT_MS).status == Status.PROVED:
        return None
    return find(fw.w, claim, premise)


def _axes(w, model, ep, moe_tp) -> str:
    out = []
    for axis, count, size in (("EP", ep, w.c.ep_size), ("MoE-TP", moe_tp, w.lifter.attribute(w.c, "moe_tp_size"))):
        n, k = model.eval(count, model_completion=True).as_long(), model.eval(size, model_completion=True).as_long()
        if k > 1 and n != 1:
            out.append(f"{axis} axis (size {k}) summed {'twice' if n == 2 else 'not at all' if n == 0 else f'{n} times'}")
    return "; ".join(out)


def _flags_state(w, m) -> str:
    _c, _s, F, R = concrete(w, m)
    st = state(w, m)
    return f" (block F={F}, R={R}{', ' + st if st else ''})"
