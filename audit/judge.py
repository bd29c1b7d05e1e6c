"""Read one post-experts all-reduce site's guard within one decoder's context and compare it with
the helper-based guard: textually (F and R free), then in effect (F and R as that decoder gives
them, in proto's scope). What a difference does to exactly-once is effect.py's part.

The guard is the conjunction of the site's group size > 1, the conditions that read proto's words
(sizes, F, R, Q, V, the helper) and the backend tests (checked against scope, never assumed).
Conditions that read nothing proto knows (`hidden_states.shape[0] == 0`, `self.reduce_results`)
are *reach* conditions: assumed for the site alone, kept as shared opaque atoms when the sites of
one forward are counted together.
"""
from __future__ import annotations

import ast
from dataclasses import dataclass, field

import z3
from sumonce.proto import semantics, sites
from sumonce.proto.config import MoeA2ABackend
from sumonce.proto.sites import Group, Path
from sumonce.spec.solve import Status
from sumonce.spec.symbolic import enum_value

from .atoms import NotUnderstood, Translator
from .context import Context
from .extract import Cond, RawSite
from .memo import check
from .verdict import SiteVerdict

GUARD_KINDS = {"size", "F", "R", "Q", "V", "helper", "config", "backend", "param"}
TIMEOUT_MS = 10_000


@dataclass
class Guard:
    """One site's guard as one decoder binds its flags."""
    formula: z3.BoolRef
    expected: z3.BoolRef
    conds: z3.BoolRef = None
    """The guard without its group-size test."""
    scoped: bool = False
    """Some condition tests a backend: whether it can hold in scope is worth asking."""
    reach: list[z3.BoolRef] = field(default_factory=list)
    reach_text: list[str] = field(default_factory=list)
    helper_calls: list[dict] = field(default_factory=list)


def group_size(w, group: Group):
    return w.lift(sites.group_size, w.c, group)


def scope(w, ctx: Context | None = None) -> list[z3.BoolRef]:
    """proto's scope: the standard dispatcher, no dwdp (proto.semantics' layer has neither the a2a
    combines nor dwdp: the era's helper terms for them are checked in the helper check), and,
    within a decoder, its architectures."""
    out = [w.c.moe_a2a_backend == enum_value(MoeA2ABackend.NONE), w.c.dwdp_size == 1]
    if ctx is not None:
        out.append(w.lift(semantics.in_scope, w.c, ctx.model()))
    return out


def expected_guard(w, site: RawSite, group: Group, ctx: Context):
    """The helper-based guard for this group and the flags the method receives from ctx (in an era
    whose helper reads the per-forward context, F and R are that context's)."""
    flags = ctx.flags_of(site)
    R = w.R if "R" in flags.values() or w.reads_context else z3.BoolVal(False)
    F = w.F if "F" in flags.values() or w.reads_context else z3.BoolVal(False)
    return z3.And(group_size(w, group) > 1, z3.Not(w.proto_helper(z3.BoolVal(group != Group.EP), R, F)))


def read_guard(w, rel, site: RawSite, group: Group, sizes: dict, ctx: Context) -> Guard:
    """The site's guard under ctx's binding of F and R; NotUnderstood where it cannot be read."""
    if site.problems:
        reason, line = site.problems[0]
        raise NotUnderstood(f"all-reduce {reason}", line)
    flags, defaults = ctx.flags_of(site), site.defaults
    g = Guard(z3.BoolVal(True), expected_guard(w, site, group, ctx))
    parts = [group_size(w, group) > 1]
    for cond in _conjuncts(site.conds):
        t = Translator(w, rel, sizes, flags, defaults, site.env, site.callables)
        f = t.boolean(cond.test)
        g.helper_calls += t.helper_calls
        f = f if cond.positive else z3.Not(f)
        g.scoped = g.scoped or "backend" in t.kinds
        text = ("" if cond.positive else "not ") + " ".join(ast.unparse(cond.test).split())
        if t.kinds & GUARD_KINDS and t.opaque and _constant(f) is not None:
            # NOTE: `defer_finalize and num_tokens == 0` with defer_finalize a False default: False whatever the atom
            f = _constant(f)
            t.kinds -= {"opaque"}
        if t.kinds & GUARD_KINDS:
            if "opaque" in t.kinds:
                why = t.uninlined.get(t.opaque[0])
                raise NotUnderstood(f"the guard reads `{t.opaque[0]}`, which proto has no word for"
                                    + (f" ({why})" if why else ""), cond.line)
            parts.append(f)
            if t.kinds <= {"backend"}:
                g.reach_text.append(text + " (checked against scope)")
        else:
            g.reach.append(f)
            if text not in g.reach_text:  # NOTE: grok.py:505/546 test `self.num_experts > 0` twice
                g.reach_text.append(text)
    g.conds, g.formula = z3.And(parts[1:]), z3.And(parts)
    return g


def _constant(f) -> z3.BoolRef | None:
    """f's truth value where its atoms do not matter (a term proto knows decides it), else None."""
    g = z3.simplify(f)
    return g if z3.is_true(g) or z3.is_false(g) else None


def _conjuncts(conds: list[Cond]) -> list[Cond]:
    """`if a and b` (or `else` of `if a or b`) as separate conditions, so that a conjunct proto
    has no word for (`hidden_states.shape[0] > 0`) is a reach condition beside a guard."""
    out = []
    for c in conds:
        t = c.test
        split = isinstance(t, ast.BoolOp) and isinstance(t.op, ast.And if c.positive else ast.Or)
        out += _conjuncts([Cond(v, c.positive, c.line) for v in t.values]) if split else [c]
    return out


def can_run(w, g: Guard, ctx: Context) -> bool:
    """Some valid configuration in scope reaches the site: its conditions can hold there. (Only
    asked where a condition tests a backend; any other contradiction shows in the forward's count.)"""
    if not g.scoped:
        return True
    v = check(w, z3.Not(z3.And(g.conds, *g.reach)), scope(w, ctx), TIMEOUT_MS)
    if v.status == Status.UNKNOWN:
        raise NotUnderstood(f"solver: {v.reason}", 0)
    return v.status != Status.PROVED


def textual(w, g: Guard) -> Status:
    """Is the guard the helper-based one for every F and R (in scope, reach assumed)?"""
    v = check(w, g.formula == g.expected, scope(w) + g.reach, TIMEOUT_MS)
    if v.status == Status.UNKNOWN:
        raise NotUnderstood(f"solver: {v.reason}", 0)
    return v.status


def in_effect(w, g: Guard, site: RawSite, ctx: Context) -> bool:
    """Equal to the helper-based guard with F and R as ctx's decoder gives them."""
    (F, fF), (R, fR) = flag_facts(w, ctx, site)
    v = check(w, g.formula == g.expected, scope(w, ctx) + [F == fF, R == fR] + g.reach, TIMEOUT_MS)
    if v.status == Status.UNKNOWN:
        raise NotUnderstood(f"solver: {v.reason}", 0)
    return v.status == Status.PROVED


def flag_facts(w, ctx: Context, site: RawSite):
    """(F, value), (R, value): what the block (or the decoder, for a decoder site) sees."""
    m = ctx.model()
    if ctx.decoder_level(site):
        fF, fR = semantics.decoder_fusion, semantics.decoder_reduce_scatter
    else:
        fF, fR = semantics.block_fusion, semantics.block_reduce_scatter
    return (w.F, _bool(w.lift(fF, w.c, w.s, m))), (w.R, _bool(w.lift(fR, w.c, w.s, m)))


def _bool(v):
    return z3.BoolVal(v) if isinstance(v, bool) else v


def helper_args(site: RawSite, group: Group, call: dict, ctx: Context, reads_context: bool = False) -> str:
    """Which of R and F the helper call passes, and what is off about its arguments."""
    notes = [] if call["is_tp_path"] == (group != Group.EP) else \
        [f"is_tp_path={call['is_tp_path']} on the {group.value} all-reduce"]
    if reads_context:
        return "; ".join(["F and R from the per-forward context"] + notes)
    by_flag = {flag: p for p, flag in ctx.flags_of(site).items()}
    passed = []
    for flag in ("R", "F"):
        given = call[flag]
        if given is not None:
            passed.append(flag)
        if flag in by_flag and given != by_flag[flag]:
            notes.append(f"{flag} is {'not passed' if given is None else 'passed as ' + given}")
    text = f"passes {' and '.join(passed)}" if passed else "passes neither F nor R"
    return "; ".join([text] + notes)


def site_path(group: Group) -> Path:
    return Path.EP if group == Group.EP else Path.TP


def wrapper_verdict(site: RawSite, rel, era) -> tuple[SiteVerdict, str]:
    """A call of reduce_moe_output / post_experts_all_reduce: as the release's wrapper (checked once
    against proto.boundary where the era has it), else its helper, judged against the era's."""
    name = site.call
    what = "reduce_moe_output (TP)" if site.group == Group.TP else "post_experts_all_reduce (EP and MoE-TP)"
    if site.problems:
        return SiteVerdict.NOT_UNDERSTOOD, f"all-reduce {site.problems[0][0]}"
    if site.dead_after:
        return SiteVerdict.CANNOT_RUN, f"after the return at line {site.dead_after}: never runs"
    checks = [c for c in rel.checks if c["name"].split(" ")[0] == name] or \
        [c for c in rel.checks if c["name"] == "should_skip_post_experts_all_reduce"]
    if not checks:
        return SiteVerdict.NOT_UNDERSTOOD, f"through {what}, which this release's layers/moe/utils.py does not define"
    bad = [c for c in checks if c["verdict"] != "equivalent"]
    checked = ", ".join(sorted({c["name"] for c in checks}))
    if not bad:
        return SiteVerdict.HELPER, f"through {what}; F and R from the per-forward context; {checked}: equivalent to era {era}'s"
    verdict = SiteVerdict.DIFFERS if bad[0]["verdict"] == "differs" else SiteVerdict.NOT_UNDERSTOOD
    return verdict, f"through {what}; {bad[0]['name']}: {bad[0]['verdict']} ({bad[0]['detail']})"
