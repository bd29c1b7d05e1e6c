"""An all-reduce patched into a module at run time, read for the reason of an unaccounted row.

The pattern (transformers, every release 0.5.10.post1+; 0.5.23 lines 383-387, 1248-1253, 1297-1300):
a method of the MoE wrapper all-reduces under its own test; the only caller is the forward of a
class made inside a function (`class MLPWithAllReduce(mlp.__class__)`), which that function puts
on a live module (`mlp.__class__ = MLPWithAllReduce`), and the function is called under a test
of its own. Whether the experts' output is summed once then depends on the two tests together and
on what the patched module's original forward returns (a checkpoint's classes, read at run time),
so the audit does not judge it: it names the lines and both tests, for a reader to compare.
"""
from __future__ import annotations

import ast

from .extract import call_name, walk


def _parents(tree: ast.Module) -> dict[int, ast.AST]:
    """id of each node -> the node it is a child of (ast.iter_child_nodes' relation)."""
    out, AST = {}, ast.AST
    for node in walk(tree):
        for name in node._fields:
            v = getattr(node, name, None)
            if type(v) is list:
                for child in v:
                    if isinstance(child, AST):
                        out[id(child)] = node
            elif isinstance(v, AST):
                out[id(v)] = node
    return out


def _up(node, parents, kind):
    """The nearest enclosing node of kind (and the If tests on the way, with their polarity)."""
    tests, child = [], node
    node = parents.get(id(node))
    while node is not None and not isinstance(node, kind):
        if isinstance(node, ast.If):
            inside = any(child is x for x in node.body)
            tests.append(("" if inside else "not ") + " ".join(ast.unparse(node.test).split()))
        child, node = node, parents.get(id(node))
    return node, tests


def patched_reduce(tree: ast.Module, cls: str, line: int) -> str:
    """Why the all-reduce at line (in a method of cls) is not judged, where it runs only from a class
    patched into a module at run time; "" where that is not the pattern."""
    parents = _parents(tree)
    call = next((n for n in walk(tree) if isinstance(n, ast.Call) and n.lineno == line), None)
    method, guard = _up(call, parents, ast.FunctionDef) if call is not None else (None, [])
    owner = parents.get(id(method)) if method is not None else None
    if not (isinstance(owner, ast.ClassDef) and owner.name == cls.rsplit(".", 1)[-1]):
        return ""
    for user in (n for n in walk(tree) if isinstance(n, ast.Call) and call_name(n) == method.name and n is not call):
        fn, _t = _up(user, parents, ast.FunctionDef)
        made = parents.get(id(fn)) if fn is not None else None
        maker, _t = _up(made, parents, ast.FunctionDef) if isinstance(made, ast.ClassDef) else (None, [])
        put = _class_swap(maker, made.name) if maker is not None else None
        if put is None:
            continue
        applied = [(n.lineno, _up(n, parents, ast.FunctionDef)[1]) for n in walk(tree)
                   if isinstance(n, ast.Call) and call_name(n) == maker.name]
        where = "; ".join(f"line {ln}" + (f" under `{' and '.join(t)}`" if t else "") for ln, t in applied)
        return (f"{cls}.{method.name} calls {call_name(call)} at line {line}"
                + (f" under `{' and '.join(guard)}`" if guard else "") + _properties(owner, guard)
                + f"; it runs only from {made.name}.{fn.name} (line {user.lineno}), a class made at run time and "
                f"patched into a module (`{put[1]}`, line {put[0]}) by {maker.name}, called at {where or 'no line'}: "
                "the audit does not judge a sum patched in at run time; compare the two tests (where the patch "
                "applies and the sum's own test is false, nothing here sums the experts' output)")
    return ""


def _properties(cls: ast.ClassDef, tests: list[str]) -> str:
    """What the `self.<name>` properties of cls read in tests return (`tp_size` is the experts' MoE-TP size)."""
    out = []
    for f in cls.body:
        if isinstance(f, ast.FunctionDef) and any(ast.unparse(d) == "property" for d in f.decorator_list) and \
                any(f"self.{f.name}" in t for t in tests) and isinstance(f.body[-1], ast.Return) and f.body[-1].value:
            out.append(f"`self.{f.name}` is `{ast.unparse(f.body[-1].value)}` (line {f.body[-1].lineno})")
    return f" ({'; '.join(out)})" if out else ""


def _class_swap(fn: ast.FunctionDef, name: str) -> tuple[int, str] | None:
    """(line, text) of `<x>.__class__ = name` in fn."""
    for n in walk(fn):
        if isinstance(n, ast.Assign) and isinstance(n.value, ast.Name) and n.value.id == name and \
                any(isinstance(t, ast.Attribute) and t.attr == "__class__" for t in n.targets):
            return n.lineno, ast.unparse(n)
    return None
