"""What an audit may remember across the releases one process audits (`--history`): only answers
that are pure functions of their question, so a later release asking the same question gets the
same answer, byte for byte, without asking again.

A model file's syntax tree, by its text: ast.parse is a pure function of the text, and the audit
never changes a tree (it only keeps a walk's node list on a node, itself a function of the tree).
Consecutive releases share most model files, so one worker auditing them in turn parses each
text once.

Not remembered, on purpose: z3's answers. The checks' verdicts would be exact, but the readable
witnesses' points are not a function of their question alone: a setting spec.readable does not
pin (the block's F and R, the counts read at the point) is whatever the world's incremental solver
finds, which depends on the questions asked before in that world. Answering some of them from
another release's world changes later witnesses (measured: bench/audit_same.py, 10 of 17 releases'
JSON differed in F, R or a sum count of a witness), so every release asks its own.

The memo is bounded: full, it is emptied (a text parsed again costs time only).
"""
from __future__ import annotations

import ast

_TREES: dict[str, ast.Module] = {}
_TREES_MAX = 2048


def parse(text: str) -> ast.Module:
    """ast.parse(text), remembered by the text (a SyntaxError or ValueError is not remembered)."""
    tree = _TREES.get(text)
    if tree is None:
        tree = ast.parse(text)
        if len(_TREES) >= _TREES_MAX:
            _TREES.clear()
        _TREES[text] = tree
    return tree


def forget() -> None:
    """Drop everything remembered (bench: each run as a fresh process)."""
    _TREES.clear()
