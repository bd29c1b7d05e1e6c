"""Witnesses a person can read (spec.readable: as close to SGLang's defaults as the formula
allows), and how to print them."""
from __future__ import annotations

from dataclasses import fields

import z3
from sumonce.proto import ForwardState
from sumonce.proto.flags import to_flags
from sumonce.spec.readable import near_defaults

from .memo import asked

TIMEOUT_MS = 10_000


def find(w, formula, assumptions) -> z3.ModelRef | None:
    """A point where `formula` holds under `assumptions`, near the defaults; None if there is none.
    Remembered per world: sites with the same guard text (`if self.tp_size > 1`) ask the same;
    and by the question's terms, validity included, across worlds (audit/memo.py)."""
    assumptions = list(assumptions)
    key = (z3.BoolVal(True) if formula is True else formula).get_id(), tuple(a.get_id() for a in assumptions)
    memo = w.__dict__.setdefault("_witness_memo", {})
    if key not in memo:
        # NOTE: the terms are kept with the answer: z3 reuses the id of a term that was freed, so a
        # key whose terms died could name a later, different question (a difference then read
        # as "equivalent": tests/audit/test_witness_memo.py)
        f = z3.BoolVal(True) if formula is True else formula
        found = asked("witness", w, f, assumptions, lambda: near_defaults(w, formula, assumptions, TIMEOUT_MS))
        memo[key] = (formula, assumptions, found)
    return memo[key][2]


def concrete(w, model):
    """w.concrete(model), remembered for the last model asked about (a witness is printed
    several ways)."""
    global _LAST
    if _LAST is None or _LAST[0] is not model:
        _LAST = (model, w.concrete(model))
    return _LAST[1]


_LAST = None


def flags(w, model) -> str:
    c, _s, _F, _R = concrete(w, model)
    return " ".join(to_flags(c)) or "(all defaults)"


def state(w, model) -> str:
    _c, s, F, R = concrete(w, model)
    d, parts = ForwardState(), []
    for f in fields(ForwardState):
        if getattr(s, f.name) != getattr(d, f.name):
            parts.append(f"{f.name}={getattr(s, f.name)}")
    return ", ".join(parts)
