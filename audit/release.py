"""The release's own Q, V and helper, read from layers/moe/utils.py, lifted and checked against proto.

Forms of the helper: none (before #23748), three-argument (#23748: is_tp_path, use_reduce_scatter,
should_allreduce_fusion), one-argument context form (later releases: F and R read from a
per-forward context). Functions of the same file called with no positional arguments are inlined,
so what a predicate reads through them is lifted too; what proto has no word for stays opaque.
"""
from __future__ import annotations

import ast
from dataclasses import dataclass, field
from enum import StrEnum

import z3

from sumonce.spec.lift import LiftError
from sumonce.spec.readable import Unknown

from .atoms import BACKEND_GETTERS, GETTERS, Q_NAME, V_NAME, NotUnderstood, Translator
from .boundary_checks import check_boundary
from .era import parse_utils

from .extract import F_NAME, HELPER_NAME, R_NAME, call_name
from .inert import without_logging
from .witness import find, flags

COMPLETE_NAME = "post_experts_output_is_complete"
SKIP_MLP_NAME = "should_skip_mlp_all_reduce"


class HelperForm(StrEnum):
    """How a release writes should_skip_post_experts_all_reduce."""
    THREE = "three-argument (#23748)"
    ONE = "one-argument context form"
    NONE = "none"
    OTHER = "unrecognised"


@dataclass
class Release:
    """What a release's utils define, as formulas over the audit world."""
    Q: z3.BoolRef | None = None
    V: z3.BoolRef | None = None
    helper: object = None
    """(is_tp_path, R, F) -> skip formula, or None."""
    helper_params: tuple[str, ...] = ()
    """The helper's parameters in order: how a positional call binds."""
    form: HelperForm = HelperForm.NONE
    complete: object = None
    """is_tp_path -> post_experts_output_is_complete's formula (0.5.21+), or None."""
    skip_mlp: z3.BoolRef | None = None
    """should_skip_mlp_all_reduce()'s formula (0.5.16+: the per-forward flags it reads), or None."""
    checks: list[dict] = field(default_factory=list)
    """One per predicate: name, verdict (equivalent / differs / not understood / absent), detail."""

    @property
    def has_v(self) -> bool:
        return self.V is not None


class _Inliner(Translator):
    """Atoms of the utils file, whose own functions called with keywords only are inlined (lifted
    through the same Lifter, their parameters bound to the keywords' values)."""

    def __init__(self, w, release, defs):
        super().__init__(w, release)
        self.defs = defs

    def call(self, e: ast.Call, env, fr):
        name = call_name(e)
        fn = self.defs.get(name) if isinstance(e.func, ast.Name) else None
        if fn is None or e.args or name in (Q_NAME, V_NAME, HELPER_NAME) and self._known(name) \
                or name in BACKEND_GETTERS or name in GETTERS:
            return super().call(e, env, fr)
        return self.body(fn, {k.arg: self.w.lifter.eval(k.value, env, fr) for k in e.keywords if k.arg})

    def body(self, fn: ast.FunctionDef, scope: dict):
        try:
            v = self.w.lifter.run_source(without_logging(fn.body), scope, self, f"layers/moe/utils.py:{fn.name}")
        except LiftError as err:
            raise NotUnderstood(str(err), fn.lineno) from None
        return z3.BoolVal(v) if isinstance(v, bool) else v

    def _known(self, name):
        return {Q_NAME: self.release.Q, V_NAME: self.release.V, HELPER_NAME: self.release.helper}[name] is not None


def helper_form(fn: ast.FunctionDef | None) -> HelperForm:
    if fn is None:
        return HelperForm.NONE
    names = [a.arg for a in (*fn.args.args, *fn.args.kwonlyargs)]
    if set(names) == {"is_tp_path", R_NAME, F_NAME}:
        return HelperForm.THREE
    return HelperForm.ONE if names == ["is_tp_path"] else HelperForm.OTHER


def read_release(w, text: str | None) -> Release:
    """Lift the release's Q, V and helper and check each against proto's."""
    rel = Release()
    if text is None:
        rel.checks.append({"name": "utils", "verdict": "absent", "detail": "no layers/moe/utils.py"})
        return rel
    tree = parse_utils(text)
    defs = {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)}
    rel.form = helper_form(defs.get(HELPER_NAME))
    if HELPER_NAME in defs:
        a = defs[HELPER_NAME].args
        rel.helper_params = tuple(x.arg for x in (*a.posonlyargs, *a.args))
    for name, attr, proto_value in ((Q_NAME, "Q", w.proto_Q), (V_NAME, "V", w.proto_V)):
        if name not in defs:
            rel.checks.append({"name": name, "verdict": "absent", "detail": "not defined in this release"})
            continue
        formula = _check_one(w, rel, defs, name, proto_value())
        setattr(rel, attr, formula)
    if rel.form != HelperForm.NONE:
        _read_helper(w, rel, defs)
    else:
        rel.checks.append({"name": HELPER_NAME, "verdict": "absent", "detail": "no helper (before #23748)"})
    if COMPLETE_NAME in defs and w.proto_complete(z3.BoolVal(True)) is not None:
        P = w.atom("is_tp_path")
        formula = _check_one(w, rel, defs, COMPLETE_NAME, w.proto_complete(P), {"is_tp_path": P})
        if formula is not None:
            rel.complete = lambda p: z3.substitute(formula, (P, p))
    rel.skip_mlp = _read_skip_mlp(w, rel, defs)
    check_boundary(w, rel, defs, _check_one)
    return rel


def _read_skip_mlp(w, rel, defs):
    """should_skip_mlp_all_reduce() as the release defines it (a model's guard may call it: the
    helper's first term), or None. Its flags are checked with the helper's, whose term it is."""
    if SKIP_MLP_NAME not in defs:
        return None
    try:
        return _Inliner(w, rel, defs).body(defs[SKIP_MLP_NAME], {})
    except NotUnderstood:
        return None


def _read_helper(w, rel, defs):
    P = w.atom("is_tp_path")
    bound = {"is_tp_path": P, R_NAME: w.R, F_NAME: w.F}
    formula = _check_one(w, rel, defs, HELPER_NAME, w.proto_helper(P, w.R, w.F), bound)
    if formula is not None:
        rel.helper = lambda p, r, f: z3.substitute(formula, (P, p), (w.R, r), (w.F, f))


def _check_one(w, rel, defs, name, proto_formula, bound=None, fn=None, label=None):
    """Lift `name` (or the FunctionDef `fn` standing for it) and compare it with proto_formula;
    one entry in rel.checks, named `label` or `name`."""
    fn = fn or defs[name]
    try:
        tr = _Inliner(w, rel, defs)
        formula = tr.body(fn, dict(bound or {}))
    except NotUnderstood as e:
        rel.checks.append({"name": label or name, "verdict": "not understood", "detail": str(e),
                           "line": defs[name].lineno})
        return None
    entry = {"name": label or name, "line": defs[name].lineno, "opaque": sorted(set(tr.opaque))}
    try:
        m = find(w, formula != proto_formula, w.valid())
    except Unknown as e:
        m, entry["verdict"], entry["detail"] = None, "not understood", f"solver: {e}"
    if m is None and "verdict" not in entry:
        entry.update(verdict="equivalent", detail=f"equivalent to era {w.era}'s" if w.era else "equivalent to proto's")
    elif m is not None:
        here = z3.is_true(m.eval(formula, model_completion=True))
        _c, _s, F, R = w.concrete(m)
        entry.update(verdict="differs", witness=flags(w, m),
                     detail=f"differs from proto's at {flags(w, m)} (F={F}, R={R}): "
                            f"release says {here}, era {w.era}'s {not here}")
        if tr.opaque:
            entry["detail"] += f"; reads what proto has no word for: {', '.join(sorted(set(tr.opaque)))}"
    rel.checks.append(entry)
    return formula
