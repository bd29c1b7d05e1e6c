"""Local names that stand for a layer's own tests, so that `if` tests written through them read as
the attribute they alias (audit/moe_flow.py compares the tests a block's assignment sits under
with those an all-reduce sits under, by their text).

In one method, a local assigned exactly once:
- from a name, an attribute chain or `not` of one (`sparse = self.is_layer_sparse`,
  `dense = not self.is_layer_sparse`) stands for that expression;
- otherwise, when the method stores it in an attribute of self (`is_sparse = ...;
  self.is_layer_sparse = is_sparse`), it stands for that attribute (a test on the local in
  `__init__` is then the test `forward` reads as `self.is_layer_sparse`).
A local assigned more than once, or bound by a loop, `with`, `:=` or an augmented assignment,
stands for nothing.
"""
from __future__ import annotations

import ast
import copy

from .extract import self_attr


def method_aliases(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> dict[str, ast.expr]:
    """Local name -> the expression it stands for, in fn (kept on the node, as extract.walk keeps
    its nodes: moe_flow asks for each method's twice)."""
    found = fn.__dict__.get("_sumonce_aliases")
    if found is None:
        found = fn._sumonce_aliases = _aliases(fn)
    return found


def _aliases(fn) -> dict[str, ast.expr]:
    bound: dict[str, list] = {}
    stored: dict[str, ast.expr] = {}
    for node in ast.walk(fn):
        if isinstance(node, ast.Assign):
            for t in node.targets:
                if isinstance(t, ast.Name):
                    bound.setdefault(t.id, []).append(node.value)
                elif self_attr(t) is not None and isinstance(node.value, ast.Name):
                    stored.setdefault(node.value.id, t)
                else:
                    for n in ast.walk(t):
                        if isinstance(n, ast.Name):
                            bound.setdefault(n.id, []).extend((None, None))
        elif isinstance(node, (ast.AugAssign, ast.AnnAssign, ast.NamedExpr, ast.For, ast.AsyncFor,
                               ast.comprehension, ast.withitem)):
            target = getattr(node, "target", None) or getattr(node, "optional_vars", None)
            for n in ast.walk(target) if target is not None else ():
                if isinstance(n, ast.Name):
                    bound.setdefault(n.id, []).extend((None, None))
    args = {a.arg for a in (*fn.args.posonlyargs, *fn.args.args, *fn.args.kwonlyargs)}
    out = {}
    for name, values in bound.items():
        if len(values) != 1 or name in args:
            continue
        if _pure(values[0]):
            out[name] = values[0]
        elif name in stored:
            out[name] = stored[name]
    return {name: _resolved(e, out, set()) for name, e in out.items()}


def substituted(test: ast.expr, aliases: dict[str, ast.expr]) -> ast.expr:
    """`test` with each name that is an alias replaced by what it stands for."""
    if not aliases or not any(isinstance(n, ast.Name) and n.id in aliases for n in ast.walk(test)):
        return test
    return _Replace(aliases).visit(copy.deepcopy(test))


def _pure(e: ast.expr) -> bool:
    if isinstance(e, ast.UnaryOp) and isinstance(e.op, ast.Not):
        return _pure(e.operand)
    while isinstance(e, ast.Attribute):
        e = e.value
    return isinstance(e, ast.Name)


def _resolved(e: ast.expr, aliases: dict, seen: set) -> ast.expr:
    """An alias of an alias, followed (a cycle stops where it closes)."""
    names = {n.id for n in ast.walk(e) if isinstance(n, ast.Name)} & (set(aliases) - seen)
    if not names:
        return e
    return _Replace({k: _resolved(aliases[k], aliases, seen | {k}) for k in names}).visit(copy.deepcopy(e))


class _Replace(ast.NodeTransformer):
    def __init__(self, aliases: dict[str, ast.expr]):
        self.aliases = aliases

    def visit_Name(self, node: ast.Name):
        if isinstance(node.ctx, ast.Load) and node.id in self.aliases:
            return copy.deepcopy(self.aliases[node.id])
        return node
