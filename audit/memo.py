"""What an audit may remember, in a process: model files' syntax trees by text, and solver
answers by their question.

ast.parse is a pure function of the text, and the audit never changes a tree (it keeps only
functions of the tree on its nodes: a walk's node list, a module's MoE blocks). One audit asks for
some trees twice (the audit's own files, then coverage, moe_flow and the boundary rules for the
files they read); a `--history` worker auditing consecutive releases meets most texts again and
keeps them (keep()); otherwise they are dropped when the audit ends (done()).

A solver answer (asked()) is remembered by the question's terms: the kind of question, the world's
kind (class, era, whether the release has V), the ids of the formula, of the assumptions and of
the world's validity (proto's rules and every side condition lifted so far), the terms kept alive
with the answer (z3 reuses the id of a freed term). One z3 context holds every world's terms, and
a term is made once per structure, so consecutive releases' worlds ask many identical questions.
A check's status is a function of its terms; a readable witness is too (spec/readable pins every
setting, F, R, tp_rank and the opaque atoms; an atom the question does not read is free). An
answer the solver gave up on (unknown) is not remembered.

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


_ASKED: dict[tuple, tuple] = {}
_ASKED_MAX = 1 << 15


def asked(kind: str, w, formula, assumptions: list, ask, remember=lambda answer: True):
    """ask()'s answer to the question, remembered (where remember(answer)) by its terms."""
    valid = w.valid()
    # NOTE: ids are per z3 context; the context's own id is safe while its terms here keep it alive
    key = (kind, type(w).__name__, getattr(w, "era", None), getattr(w, "has_v", None), id(formula.ctx), formula.get_id(),
           tuple(a.get_id() for a in assumptions), tuple(v.get_id() for v in valid))
    hit = _ASKED.get(key)
    if hit is not None:
        return hit[1]
    answer = ask()
    if remember(answer):
        if len(_ASKED) >= _ASKED_MAX:
            _ASKED.clear()
        _ASKED[key] = (formula, list(assumptions), valid), answer
    return answer


def check(w, claim, assumptions: list, timeout_ms: int):
    """w.check(claim, assumptions, timeout_ms), remembered unless unknown (only its status and
    reason are read)."""
    from sumonce.spec.solve import Status
    return asked("check", w, claim, assumptions, lambda: w.check(claim, assumptions, timeout_ms),
                 lambda v: v.status != Status.UNKNOWN)


_KEEP = False


def keep() -> None:
    """Keep the trees and answers from one audit to the next (a `--history` worker)."""
    global _KEEP
    _KEEP = True


def done() -> None:
    """An audit has ended: its trees and answers are dropped unless kept. NOTE: trees a module still holds at
    exit cost the interpreter's teardown 1-2 s (`sumonce audit` of 0.5.23: 2.5 -> 4 s in all)."""
    if not _KEEP:
        forget()


def forget() -> None:
    """Drop every tree and answer (a test's fresh start)."""
    _TREES.clear()
    _ASKED.clear()
