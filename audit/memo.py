"""Model files' syntax trees, parsed once per text in a process.

ast.parse is a pure function of the text, and the audit never changes a tree (it keeps only
functions of the tree on its nodes: a walk's node list, a module's MoE blocks). One audit asks for
some trees twice (the audit's own files, then coverage, moe_flow and the boundary rules for the
files they read); a `--history` worker auditing consecutive releases meets most texts again and
keeps them (keep()); otherwise they are dropped when the audit ends (done()).

Bounded: full, it is emptied (a text parsed again costs time only). SyntaxError, ValueError,
RecursionError and MemoryError propagate and are not remembered.
"""
from __future__ import annotations

import ast

_TREES: dict[str, ast.Module] = {}
_TREES_MAX = 2048


def parse(text: str) -> ast.Module:
    """ast.parse(text), remembered by the text."""
    tree = _TREES.get(text)
    if tree is None:
        tree = ast.parse(text)
        if len(_TREES) >= _TREES_MAX:
            _TREES.clear()
        _TREES[text] = tree
    return tree


_KEEP = False


def keep() -> None:
    """Keep the trees from one audit to the next (a `--history` worker)."""
    global _KEEP
    _KEEP = True


def done() -> None:
    """An audit has ended: its trees are dropped unless kept. NOTE: trees a module still holds at
    exit cost the interpreter's teardown 1-2 s (`sumonce audit` of 0.5.23: 2.5 -> 4 s in all)."""
    if not _KEEP:
        _TREES.clear()


def forget() -> None:
    """Drop every tree (a test's fresh start)."""
    _TREES.clear()
