"""Statements of a function the audit lifts from source (a model's guard method, a utils.py
predicate) that do not change what it returns: a logging call (`logger.debug(...)`,
`logging.warning(...)`, `warnings.warn(...)`, `print(...)`) as a statement of its own. They are
left out before lifting, so a log line does not make a guard unreadable. Any other statement is
lifted as written (spec's Lifter says what it cannot lift)."""
from __future__ import annotations

import ast

LOGGERS = frozenset({"logger", "logging", "log", "warnings"})
"""Names whose method calls, as statements, only log (SGLang's module-level `logger`)."""


def is_logging(st: ast.stmt) -> bool:
    if not (isinstance(st, ast.Expr) and isinstance(st.value, ast.Call)):
        return False
    f = st.value.func
    if isinstance(f, ast.Name):
        return f.id == "print"
    return isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name) and f.value.id in LOGGERS


def without_logging(stmts: list[ast.stmt]) -> list[ast.stmt]:
    """stmts less their logging calls, at any depth of if statements (new If nodes where one
    changes: the tree read from source is never changed)."""
    out = []
    for st in stmts:
        if is_logging(st):
            continue
        if isinstance(st, ast.If):
            body, orelse = without_logging(st.body), without_logging(st.orelse)
            if len(body) != len(st.body) or len(orelse) != len(st.orelse):
                st = ast.copy_location(ast.If(test=st.test, body=body or [_pass(st)], orelse=orelse), st)
        out.append(st)
    return out


def _pass(at: ast.stmt) -> ast.Pass:
    return ast.copy_location(ast.Pass(), at)
