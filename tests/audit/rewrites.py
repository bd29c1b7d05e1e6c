"""Edits applied at test time to real SGLang model files (read from the cached wheel, never kept in
the repository): each finds the n-th `if` whose test calls the helper and rewrites it, its helper
call, the statement after it, or the block's parameters. An edit whose anchor is missing fails
the test (the release changed), never silently passes."""
from __future__ import annotations

import ast
import textwrap

HELPER = "should_skip_post_experts_all_reduce"
Q = "should_use_flashinfer_cutlass_moe_fp4_allgather()"
V = "should_use_dp_reduce_scatterv()"


class Anchor(Exception):
    """The real file no longer has what the edit rewrites."""


def _guard_ifs(tree):
    found = []
    for node in ast.walk(tree):
        for field in ("body", "orelse"):
            stmts = getattr(node, field, None)
            if isinstance(stmts, list):
                for i, st in enumerate(stmts):
                    if isinstance(st, ast.If) and HELPER in ast.unparse(st.test):
                        found.append((st, stmts[i + 1] if i + 1 < len(stmts) else None, node))
    return sorted(found, key=lambda x: x[0].lineno)


def _lines(text, node):
    lines = text.splitlines(keepends=True)
    return lines, node.lineno - 1, node.end_lineno


def guard(text: str, nth: int = 0):
    """(the If, the statement after it, the function it is in) of the n-th helper guard."""
    tree = ast.parse(text)
    found = _guard_ifs(tree)
    if len(found) <= nth:
        raise Anchor(f"no helper guard #{nth}")
    return found[nth]


def _src(text, node) -> str:
    return " ".join(ast.get_source_segment(text, node).split())


def replace_stmt(text: str, node, new: str) -> str:
    """Replace statement `node` (whole lines) with `new`, indented as node was."""
    lines, a, b = _lines(text, node)
    indent = " " * node.col_offset
    return "".join(lines[:a]) + textwrap.indent(textwrap.dedent(new).strip("\n") + "\n", indent) + "".join(lines[b:])


def parts(text: str, nth: int = 0):
    """(if, next, test source, helper-call source, body source, indent-free) of guard #nth."""
    node, nxt, _parent = guard(text, nth)
    call = next(n for n in ast.walk(node.test) if isinstance(n, ast.Call) and ast.unparse(n.func) == HELPER)
    body = "\n".join(ast.unparse(s) for s in node.body)
    return node, nxt, _src(text, node.test), _src(text, call), body


def with_test(new_test):
    """An edit: the guard's test becomes new_test(test, call)."""
    def edit(text, nth=0):
        node, _n, test, call, body = parts(text, nth)
        return replace_stmt(text, node, f"if {new_test(test, call)}:\n" + textwrap.indent(body, "    "))
    return edit


def with_block(new_block):
    """An edit: the whole guarded block becomes new_block(test, call, body, next statement)."""
    def edit(text, nth=0):
        node, nxt, test, call, body = parts(text, nth)
        return replace_stmt(text, node, new_block(test, call, body, nxt))
    return edit


def call_without(keyword: str):
    """An edit: the helper call drops one keyword argument."""
    def edit(text, nth=0):
        node, _n, test, call, body = parts(text, nth)
        if keyword + "=" not in call:
            raise Anchor(f"the helper call passes no {keyword}")
        tree = ast.parse(call)
        c = tree.body[0].value
        c.keywords = [k for k in c.keywords if k.arg != keyword]
        return replace_stmt(text, node, f"if {test.replace(call, ast.unparse(c))}:\n" + textwrap.indent(body, "    "))
    return edit


def ret(nxt) -> str:
    if not isinstance(nxt, ast.Return):
        raise Anchor("the guarded block is not followed by a return")
    return ast.unparse(nxt)


def rename_block_params(renames: dict[str, str], swap_order: bool = False):
    """An edit: the block class holding guard #0 renames its methods' parameters (callers pass
    them positionally, so their calls are unchanged); swap_order also swaps two parameters'
    positions, so each receives what the other did."""
    def edit(text, nth=0):
        node, _n, _p = guard(text, nth)
        tree = ast.parse(text)
        cls = next(c for c in ast.walk(tree) if isinstance(c, ast.ClassDef)
                   and c.lineno <= node.lineno <= c.end_lineno)
        for n in ast.walk(cls):
            if isinstance(n, ast.arg) and n.arg in renames:
                n.arg = renames[n.arg]
            elif isinstance(n, ast.Name) and n.id in renames:
                n.id = renames[n.id]
            elif isinstance(n, ast.keyword) and n.arg in renames and not _helper_call_keyword(cls, n):
                n.arg = renames[n.arg]
        if swap_order:
            for fn in (f for f in cls.body if isinstance(f, ast.FunctionDef) and f.name == "forward"):
                names = [a.arg for a in fn.args.args]
                i, j = (names.index(v) for v in renames.values())
                fn.args.args[i], fn.args.args[j] = fn.args.args[j], fn.args.args[i]
        return ast.unparse(tree)
    return edit


def _helper_call_keyword(cls, kw) -> bool:
    return any(isinstance(n, ast.Call) and ast.unparse(n.func) == HELPER and kw in n.keywords
               for n in ast.walk(cls))


def as_ifexp(body: str, test: str) -> str:
    """`x = all_reduce(x)` under `if test` written as `x = all_reduce(x) if test else x`."""
    stmt = ast.parse(body).body
    if len(stmt) != 1 or not isinstance(stmt[0], ast.Assign) or not isinstance(stmt[0].targets[0], ast.Name):
        raise Anchor("the guarded block is not one assignment")
    target = stmt[0].targets[0].id
    return f"{target} = {ast.unparse(stmt[0].value)} if {test} else {target}"


def nested(outer: str, test: str, body: str) -> str:
    """`if test: body` inside `if outer:`."""
    return f"if {outer}:\n    if {test}:\n" + textwrap.indent(body, " " * 8)


def _enclosing_function(tree, node):
    return next(f for f in ast.walk(tree) if isinstance(f, ast.FunctionDef) and f.lineno <= node.lineno <= f.end_lineno
                and not any(isinstance(g, ast.FunctionDef) and g is not f and f.lineno < g.lineno <= node.lineno
                            for g in ast.walk(f)))


def _add_method(text: str, fn, method: str) -> str:
    lines = text.splitlines(keepends=True)
    lines.insert(fn.end_lineno, "\n" + textwrap.indent(method, " " * fn.col_offset))
    return "".join(lines)


def guard_in_method(new_test=None):
    """An edit: the guard's test is computed by a new method of the block, called with F and R
    (new_test(test, call) replaces what the method returns)."""
    def edit(text, nth=0):
        node, _n, _p = guard(text, nth)
        fn = _enclosing_function(ast.parse(text), node)
        flags = [a.arg for a in fn.args.args if a.arg in ("use_reduce_scatter", "should_allreduce_fusion")]
        _node, _nx, test, call, body = parts(text, nth)
        returned = new_test(test, call) if new_test else test
        method = f"def _runs_reduce(self, {', '.join(flags)}):\n    return {returned}\n"
        text = _add_method(text, fn, method)
        return replace_stmt(text, node, f"if self._runs_reduce({', '.join(flags)}):\n" + textwrap.indent(body, "    "))
    return edit


def into_method(text: str, nth: int = 0, keep: bool = False) -> str:
    """An edit: the guarded reduce moves into a new method of the block, which the forward calls
    with its F and R positionally (keep: the forward also keeps its own guarded reduce)."""
    node, _n, parent = guard(text, nth)
    fn = _enclosing_function(ast.parse(text), node)
    flags = [a.arg for a in fn.args.args if a.arg in ("use_reduce_scatter", "should_allreduce_fusion")]
    _node, _nx, test, _call, body = parts(text, nth)
    target = ast.parse(body).body[0].targets[0].id
    args = ", ".join([target, *flags])
    method = (f"def _post_experts_reduce(self, {args}):\n    if {test}:\n" + textwrap.indent(body, " " * 8)
              + f"\n    return {target}\n")
    call = f"{target} = self._post_experts_reduce({args})"
    kept = f"if {test}:\n" + textwrap.indent(body, "    ") + "\n" if keep else ""
    return replace_stmt(_add_method(text, fn, method), node, kept + call)
