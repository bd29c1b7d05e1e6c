"""Classify one post-experts all-reduce site: calls the helper, equivalent to the helper, differs
(with a witness and what it does to exactly-once), or not understood (reason and line).
"""
from __future__ import annotations

import ast
from dataclasses import dataclass, field

import z3

from sumonce.proto import sites
from sumonce.spec.solve import Status, check

from .atoms import NotUnderstood, Translator
from .extract import F_NAME, R_NAME, RawSite
from .helper import THREE
from sumonce.spec.readable import Unknown

HELPER, EQUIVALENT, DIFFERS, NOT_UNDERSTOOD = "calls the helper", "equivalent", "differs", "not understood"
GUARD_KINDS = {"size", "F", "R", "Q", "V", "helper", "config"}


@dataclass
class Verdict:
    model: str
    method: str
    line: int
    path: str
    group: str
    verdict: str
    detail: str
    file: str = ""
    witness: str = ""
    reach: list[str] = field(default_factory=list)
    formula: object = None
    expected: object = None


def group_size(w, group: str):
    """proto.sites.group_size for a group named as the extractor names it, lifted."""
    return w.lift(sites.group_size, w.c, sites.Group(group))


def expected_guard(w, site: RawSite):
    """The helper-based guard for this site's group and the flags its method receives."""
    is_tp = site.group != "ep"
    R = w.R if R_NAME in site.params else z3.BoolVal(False)
    F = w.F if F_NAME in site.params else z3.BoolVal(False)
    return z3.And(group_size(w, site.group) > 1, z3.Not(w.proto_helper(z3.BoolVal(is_tp), R, F)))


def read_guard(w, rel, site: RawSite, sizes: dict):
    """(guard formula, reach conditions as (formula, text), translator) or NotUnderstood."""
    if site.problems:
        reason, line = site.problems[0]
        raise NotUnderstood(f"all-reduce {reason}", line)
    guard, reach = [group_size(w, site.group) > 1], []
    tr = Translator(w, rel, sizes, site.params, site.env)
    for cond in site.conds:
        t = Translator(w, rel, sizes, site.params, site.env)
        f = t.boolean(cond.test)
        tr.helper_calls += t.helper_calls
        tr.kinds |= t.kinds
        f = f if cond.positive else z3.Not(f)
        text = ("" if cond.positive else "not ") + " ".join(ast.unparse(cond.test).split())
        if t.kinds & GUARD_KINDS:
            if t.opaque:
                raise NotUnderstood(f"the guard reads `{t.opaque[0]}`, which proto has no word for", cond.line)
            guard.append(f)
        else:
            reach.append((f, text))
    return z3.And(guard), reach, tr


def judge(w, rel, site: RawSite, sizes: dict, model: str) -> Verdict:
    path = "ep" if site.group == "ep" else "tp"
    v = Verdict(model, f"{site.cls}.{site.method}".strip("."), site.line, path, site.group, "", "")
    if site.group.startswith("wrap"):
        return _wrapper(w, rel, site, sizes, v)
    try:
        guard, reach, tr = read_guard(w, rel, site, sizes)
    except NotUnderstood as e:
        v.verdict, v.detail, v.line = NOT_UNDERSTOOD, e.reason, site.line
        return v
    v.reach = [t for _f, t in reach]
    v.formula, v.expected = guard, expected_guard(w, site)
    if tr.helper_calls and rel.form != THREE:
        v.verdict = HELPER
        v.detail = f"{rel.form} helper: what it skips is not comparable to proto's (see the helper check)"
        return v
    verdict = check(guard == v.expected, w.valid() + [f for f, _t in reach], 10_000)
    if verdict.status == Status.UNKNOWN:
        v.verdict, v.detail = NOT_UNDERSTOOD, f"solver: {verdict.reason}"
    elif tr.helper_calls:
        v.verdict = HELPER if verdict.status == Status.PROVED else DIFFERS
        v.detail = _helper_args(site, tr.helper_calls[0])
    else:
        v.verdict = EQUIVALENT if verdict.status == Status.PROVED else DIFFERS
        v.detail = "proved equal to the helper-based guard" if v.verdict == EQUIVALENT else ""
    if not w.has_v and v.verdict in (EQUIVALENT, HELPER, DIFFERS):
        v.detail += (", " if v.detail else "") + "judged with V = False (this release predates #22642)"
    return v


def _helper_args(site: RawSite, call: dict) -> str:
    want_tp = site.group != "ep"
    notes = [] if call["is_tp_path"] == want_tp else [f"is_tp_path={call['is_tp_path']} on the {site.group} all-reduce"]
    passed = []
    for flag, name in (("R", R_NAME), ("F", F_NAME)):
        given, has = call[flag], name in site.params
        if given is not None:
            passed.append(flag)
        if has and given != name:
            notes.append(f"{flag} is {'not passed' if given is None else 'passed as ' + given}")
    text = f"passes {' and '.join(passed)}" if passed else "passes neither F nor R"
    return "; ".join([text] + notes)


def _wrapper(w, rel, site, sizes, v: Verdict) -> Verdict:
    what = "reduce_moe_output (TP)" if site.group == "wrap_tp" else "post_experts_all_reduce (EP and MoE-TP)"
    v.group = "tp" if site.group == "wrap_tp" else "ep+moe_tp"
    if site.problems:
        v.verdict, v.detail = NOT_UNDERSTOOD, f"all-reduce {site.problems[0][0]}"
        return v
    conds = [("" if c.positive else "not ") + " ".join(ast.unparse(c.test).split()) for c in site.conds]
    v.verdict, v.reach = HELPER, conds
    v.detail = f"through {what}; {rel.form} helper, F and R from the per-forward context"
    return v


def unknown_verdict(v: Verdict, e: Unknown) -> Verdict:
    v.verdict, v.detail = NOT_UNDERSTOOD, f"solver: {e}"
    return v
