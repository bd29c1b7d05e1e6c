"""A site's verdict: judged within every decoder that builds its block (judge.py), then settled
with the other sites of the same forward (effect.py): a guard that differs only where no decoder
can reach is "equivalent in effect here"; a forward whose counts differ from the helper's names
the site to blame (a guard that differs in effect, a reduce that cannot run, a second reduce).
"""
from __future__ import annotations

import ast
from collections import defaultdict

import z3

from sumonce.proto.sites import GROUP_AXES, Axis, Group
from sumonce.spec.readable import Unknown
from sumonce.spec.solve import Status

from .atoms import NotUnderstood
from .context import Context
from .effect import Entry, forward, premises, witness
from .extract import WRAPPERS, RawSite, read_through
from .judge import (can_run, helper_args, in_effect, read_guard, scope, site_path, textual,
                    wrapper_verdict)
from .verdict import AuditedSite, SiteVerdict as SV
from .witness import find, flags

PROVED_VERDICTS = {SV.HELPER, SV.EQUIVALENT}


def judge_site(w, rel, raw: RawSite, sizes: dict, stem: str, contexts: list[Context], root: str = ""):
    """(AuditedSite, [(context, outcome)]) where outcome = [status, text, Entry, context]."""
    group = raw.group
    site = AuditedSite(stem, f"{raw.cls}.{raw.method}".strip("."), raw.line,
                       site_path(group) if group else site_path(Group.TP), group,
                       callers=sorted({c.stem for c in contexts}))
    site.tests = [("" if c.positive else "not ") + read_through(c.test, raw.env) for c in raw.conds]
    if raw.call in WRAPPERS:
        site.verdict, site.detail = wrapper_verdict(raw, rel, w.era)
        site.wrapper, site.flow = raw.call, raw.flow
        site.reach = [("" if c.positive else "not ") + " ".join(ast.unparse(c.test).split()) for c in raw.conds]
        return site, []
    key = f"{raw.cls}.{root or raw.method}" if not Context.decoder_level(raw) else ""
    site.forward = key
    out = []
    try:
        for ctx in contexts:
            g = read_guard(w, rel, raw, group, sizes, ctx)
            site.reach = g.reach_text
            out.append((ctx, [*_status(w, rel, raw, g, ctx), Entry(key, site, raw, g, not raw.dead_after, True), ctx]))
    except (NotUnderstood, Unknown) as e:
        site.verdict, site.detail = SV.NOT_UNDERSTOOD, getattr(e, "reason", None) or f"solver: {e}"
        return site, []
    return site, out


def _status(w, rel, raw: RawSite, g, ctx: Context) -> tuple[SV, str]:
    if raw.dead_after:
        return SV.CANNOT_RUN, f"after the return at line {raw.dead_after}: never runs"
    if not can_run(w, g, ctx):
        return SV.CANNOT_RUN, "its conditions never hold in scope (the standard dispatcher)"
    if textual(w, g) == Status.PROVED:
        if g.helper_calls:
            return SV.HELPER, helper_args(raw, raw.group, g.helper_calls[0], ctx, w.reads_context)
        return SV.EQUIVALENT, "proved equal to the helper-based guard"
    args = helper_args(raw, raw.group, g.helper_calls[0], ctx, w.reads_context) if g.helper_calls else ""
    if in_effect(w, g, raw, ctx):
        return SV.EQUIVALENT_HERE, args
    return SV.DIFFERS, args


def _textual_note(w, entry: Entry, ctx: Context) -> str:
    """Where the text and the helper-based guard part, at a point the decoder's model can run
    with F and R as its decoder gives them (effect.premises: a witness is a configuration SGLang
    runs for this model)."""
    g = entry.guard
    m = find(w, g.formula != g.expected, w.valid() + premises(w, ctx, entry.raw) + g.reach)
    if m is None:
        return (f"the text and the helper-based guard agree wherever {ctx.stem} runs (F and R as its decoder "
                "gives them)")
    _c, _s, F, R = w.concrete(m)
    here = "runs" if z3.is_true(m.eval(g.formula, model_completion=True)) else "skips"
    return f"the text {here} where the helper-based guard does not at {flags(w, m)} (F={F}, R={R})"


def settle(w, judged: list) -> None:
    """Count each decoder's forwards together; then each site's verdict from its outcomes."""
    by_ctx = defaultdict(list)
    for site, outcomes in judged:
        for ctx, outcome in outcomes:
            by_ctx[(ctx.caller, ctx.decoder)].append(outcome)
    unread = {(site.file, site.forward) for site, _o in judged if site.verdict is SV.NOT_UNDERSTOOD}
    for outcomes in by_ctx.values():
        _settle_decoder(w, outcomes, unread)
    for site, outcomes in judged:
        if outcomes:
            _combine(w, site, outcomes)
    wrapped_again([site for site, _o in judged])


def wrapped_again(sites: list) -> None:
    """A wrapper's call (reduce_moe_output, post_experts_all_reduce: each sums every axis its group
    owes, unless the helper skips) that runs wherever an earlier call of a wrapper in the same method
    ran (every condition of the earlier one is one of its own: the same path, or a path inside it)
    and reduces that one's output (the name it was assigned to, or the call itself inside this one)
    sums it again: it differs. Each wrapper is judged alone, as the release's wrapper, before this."""
    runs = [s for s in sites if s.wrapper and s.verdict not in (SV.CANNOT_RUN, SV.NOT_UNDERSTOOD)]
    for i, later in enumerate(runs):
        first = next((s for s in runs[:i] if s.file == later.file and s.method == later.method
                      and set(s.reach) <= set(later.reach) and _reduces_output_of(later, s)), None)
        if first is not None:
            later.verdict, later.detail = SV.DIFFERS, (
                f"summed twice: {later.wrapper} runs wherever {first.wrapper} at line {first.line} ran "
                "(its conditions are among this one's), and each sums every axis the MoE output owes over TP "
                f"[judged alone: {later.detail}]")


def _reduces_output_of(later, first) -> bool:
    """Does `later` reduce `first`'s output: the name first's result was assigned to, or one call
    inside the other's argument (`post_experts_all_reduce(post_experts_all_reduce(x))`)?"""
    (target, arg, call), (_t, later_arg, later_call) = first.flow, later.flow
    return bool(target) and later_arg == target or call in later_arg or later_call in arg


def _settle_decoder(w, outcomes: list, unread: set = frozenset()) -> None:
    """Each forward's counts; a forward holding a site not understood (`unread`: file, forward) is
    not counted: what that site sums is unknown, so the others keep their own verdicts."""
    keys = sorted({o[2].key for o in outcomes if o[2].key}) or [""]
    for key in keys:
        group = [o for o in outcomes if o[2].key in (key, "")]
        if not all(o[2].comparable for o in group) or _same_as_reference(group) or \
                any((o[2].site.file, k) in unread for o in group for k in {key, ""}):
            continue
        try:
            fw = forward(w, group[0][3], [o[2] for o in group], key)
            if not _settle_differing(w, fw, group):
                _blame_forward(w, fw, group[0][3], group)
        except (Unknown, NotUnderstood) as e:  # z3 unknown is a failure, never a pass
            for o in group:
                o[0], o[1] = SV.NOT_UNDERSTOOD, f"solver: {e}"


def _settle_differing(w, fw, group) -> bool:
    """Each site whose guard differs in effect: to blame where the forward's counts differ with
    it, else equivalent in effect. True if one is to blame."""
    blamed = False
    for o in (o for o in group if o[0] == SV.DIFFERS):
        e = o[2]
        m = witness(fw, [z3.Not(e.guard.formula == e.guard.expected)], premises(w, fw.ctx, e.raw) + e.guard.reach)
        if m is None:
            o[0], o[1] = SV.EQUIVALENT_HERE, "; ".join(x for x in (o[1], "every axis is still summed exactly once") if x)
            continue
        here = "runs" if z3.is_true(m.eval(e.guard.formula, model_completion=True)) else "skips"
        o[1] = "; ".join(x for x in (o[1], f"{here} where the helper does not: {fw.explain(m)}") if x)
        e.witness, blamed = flags(w, m), True
    return blamed


def _same_as_reference(group) -> bool:
    """Each axis summed by one site whose guard is proved equal to the helper-based one within
    this decoder: the forward's counts are the reference's, no need to count."""
    axes = [a for o in group for a in GROUP_AXES[o[2].site.group]]
    proved = all(o[0] in PROVED_VERDICTS or o[0] == SV.EQUIVALENT_HERE for o in group)
    return proved and len(axes) == len(set(axes)) and set(axes) == set(Axis)


def _blame_forward(w, fw, ctx, group) -> None:
    m = witness(fw, [], premises(w, ctx, group[0][2].raw))
    if m is None:
        return
    text = fw.explain(m)
    for o in group:
        o[2].witness = flags(w, m)
    dead = [o for o in group if o[0] == SV.CANNOT_RUN]
    if dead:
        for o in dead:
            o[0], o[1] = SV.DIFFERS, f"{o[1]}, and nothing else sums in its place: {text}"
        return
    if not fw.summed_twice(m):
        for o in group:
            o[0], o[1] = SV.DIFFERS, f"no all-reduce of this forward sums an axis the helper would: {text}"
        return
    covered, blamed = set(), []
    for o in sorted(group, key=lambda o: o[2].raw.line):
        axes = set(GROUP_AXES[o[2].site.group])
        if axes & covered:
            blamed.append(o)
        covered |= axes
    for o in blamed or group:
        first = min(group, key=lambda x: x[2].raw.line)[2].raw.line
        o[0], o[1] = SV.DIFFERS, f"another all-reduce of the same forward (line {first}) already sums here: {text}"


def _combine(w, site: AuditedSite, outcomes: list) -> None:
    statuses = [o[0] for _c, o in outcomes]
    if SV.NOT_UNDERSTOOD in statuses:
        site.verdict, site.detail = SV.NOT_UNDERSTOOD, next(o[1] for _c, o in outcomes if o[0] == SV.NOT_UNDERSTOOD)
        return
    if SV.DIFFERS in statuses:
        bad = [(c, o) for c, o in outcomes if o[0] == SV.DIFFERS]
        site.verdict = SV.DIFFERS
        site.witness = bad[0][1][2].witness
        if len(outcomes) == 1:
            site.detail = bad[0][1][1]
        else:
            site.detail = "; ".join(f"within {c.stem}'s decoder: {o[1]}" for c, o in bad)
            fine = _stems(outcomes, set(SV) - {SV.DIFFERS})
            if fine:
                site.detail += f"; harmless within {fine}'s decoder"
    elif all(s == statuses[0] for s in statuses) and statuses[0] in PROVED_VERDICTS | {SV.CANNOT_RUN}:
        site.verdict, site.detail = statuses[0], outcomes[0][1][1]
        if len(outcomes) > 1:
            site.detail += f"; within each decoder that builds it ({_stems(outcomes, set(SV))})"
    else:
        site.verdict = SV.EQUIVALENT_HERE
        first = next(((c, o) for c, o in outcomes if o[0] == SV.EQUIVALENT_HERE), None)
        notes = [_textual_note(w, first[1][2], first[0])] if first else []
        here = [o for _c, o in outcomes if o[0] == SV.EQUIVALENT_HERE]
        site.note = "; ".join(x for x in notes + [o[1] for o in here] if x)
        site.detail = f"equivalent in effect within {_stems(outcomes, {SV.EQUIVALENT_HERE, *PROVED_VERDICTS})}'s decoder"
    if not w.has_v and site.verdict in (SV.EQUIVALENT, SV.HELPER, SV.DIFFERS, SV.EQUIVALENT_HERE):
        site.detail += (", " if site.detail else "") + "judged with V = False (this release predates #22642)"


def _stems(outcomes, verdicts) -> str:
    return ", ".join(sorted({c.stem for c, o in outcomes if o[0] in verdicts}))
