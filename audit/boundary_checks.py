"""The 0.5.22 - 0.5.23 boundary, checked once per release against proto.boundary: what
reduce_moe_output and post_experts_all_reduce (the helper's wrappers) and sum_post_experts_output
(the stage boundary's sum) decide to all-reduce, and should_add_replicated_moe_output.

They return tensors: what is compared is the test guarding the all-reduce (reduce_moe_output) or
the reduce_ep / reduce_tp keywords they pass to the shared sum (0.5.23 utils.py:851-888), each
lifted with the statements before it (`parallel = get_parallel()`).
"""
from __future__ import annotations

import ast
import copy

from sumonce.proto import boundary
from sumonce.proto.eras import Era
from sumonce.spec.symbolic import to_z3

from .extract import ALL_REDUCES, call_name, walk

WRAPPERS = ("reduce_moe_output", "post_experts_all_reduce")


def _returning(fn: ast.FunctionDef, value: ast.expr) -> ast.FunctionDef:
    """fn's assignments before `value`'s statement, then `return value`."""
    out = copy.copy(fn)
    out.__dict__.pop("_sumonce_walk", None)  # the copy's body differs from fn's
    stmts = [s for s in fn.body if isinstance(s, ast.Assign) and s.lineno < value.lineno]
    out.body = [*stmts, ast.fix_missing_locations(ast.copy_location(ast.Return(value), value))]
    return out


def _reduce_test(fn: ast.FunctionDef) -> ast.expr | None:
    """The test of the `if` whose body all-reduces."""
    for st in fn.body:
        if isinstance(st, ast.If) and any(call_name(n) in ALL_REDUCES for b in st.body for n in walk(b)):
            return st.test
    return None


def _keywords(fn: ast.FunctionDef) -> dict[str, ast.expr]:
    """reduce_ep / reduce_tp as the returned call passes them."""
    ret = next((s for s in fn.body if isinstance(s, ast.Return) and isinstance(s.value, ast.Call)), None)
    return {} if ret is None else {k.arg: k.value for k in ret.value.keywords if k.arg in ("reduce_ep", "reduce_tp")}


def check_boundary(w, rel, defs, check) -> None:
    """One rel.checks entry per decision; only in the 0.5.23 era (proto.boundary's)."""
    if w.era != Era.V0_5_23:
        return
    c, ctx = w.c, boundary.ForwardContext(mlp_reduce_scatter=w.R)
    fn = defs.get("reduce_moe_output")
    if fn is not None:
        test = _reduce_test(fn)
        if test is None:
            rel.checks.append({"name": fn.name, "verdict": "not understood", "line": fn.lineno,
                               "detail": "no `if` around a TP all-reduce in its body"})
        else:
            check(w, rel, defs, fn.name, to_z3(w.lift(boundary.reduce_moe_output_runs, c, ctx)),
                  fn=_returning(fn, test), label=f"{fn.name} (all-reduces)")
    for name, proto_fn in (("post_experts_all_reduce", lambda: w.lift(boundary.post_experts_all_reduce, c, ctx)),
                           ("sum_post_experts_output", lambda: w.lift(boundary.sum_post_experts_output, c))):
        fn = defs.get(name)
        if fn is None:
            continue
        kws = _keywords(fn)
        if set(kws) != {"reduce_ep", "reduce_tp"}:
            rel.checks.append({"name": name, "verdict": "not understood", "line": fn.lineno,
                               "detail": "does not return a call passing reduce_ep= and reduce_tp="})
            continue
        counts = proto_fn()
        for kw, axis in (("reduce_ep", "ep"), ("reduce_tp", "moe_tp")):
            check(w, rel, defs, name, to_z3(getattr(counts, axis)) == 1, fn=_returning(fn, kws[kw]),
                  label=f"{name} ({kw})")
    if "should_add_replicated_moe_output" in defs:
        check(w, rel, defs, "should_add_replicated_moe_output",
              to_z3(w.lift(boundary.should_add_replicated_moe_output, c, ctx, w.tp_rank)))
