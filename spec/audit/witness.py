"""Witnesses a person can read: a point satisfying a formula, as close to SGLang's defaults as
the formula allows (every field that need not differ keeps its default value).
"""
from __future__ import annotations

from dataclasses import fields

import z3

from proto import ForwardState, ServerConfig
from proto.flags import to_flags
from spec.symbolic import to_z3

TIMEOUT_MS = 10_000


class Unknown(Exception):
    """The solver gave up: a failure, never a pass."""


def _defaults(w) -> dict:
    lits = {}
    for cls, rec in ((ServerConfig, w.c), (ForwardState, w.s)):
        d = cls()
        for f in fields(cls):
            lits[z3.Bool(f"default {rec.prefix}.{f.name}")] = getattr(rec, f.name) == to_z3(getattr(d, f.name))
        for f in fields(cls):
            if type(getattr(d, f.name)) is int and f.name != "num_tokens":
                lits[z3.Bool(f"small {rec.prefix}.{f.name}")] = getattr(rec, f.name) <= 8
    return lits


def find(w, formula, assumptions) -> z3.ModelRef | None:
    """A point where `formula` holds under `assumptions`, near the defaults; None if there is none."""
    s = z3.Solver()
    s.set("timeout", TIMEOUT_MS)
    s.add(*assumptions, formula)
    lits = _defaults(w)
    for name, eq in lits.items():
        s.add(z3.Implies(name, eq))
    active = list(lits)
    while True:
        r = s.check(*active)
        if r == z3.sat:
            return s.model()
        if r == z3.unknown:
            raise Unknown(s.reason_unknown())
        core = set(map(str, s.unsat_core()))
        if not core:
            return None
        active = [a for a in active if str(a) not in core]


def flags(w, model) -> str:
    c, _s, _F, _R = w.concrete(model)
    return " ".join(to_flags(c)) or "(all defaults)"


def state(w, model) -> str:
    _c, s, F, R = w.concrete(model)
    d, parts = ForwardState(), []
    for f in fields(ForwardState):
        if getattr(s, f.name) != getattr(d, f.name):
            parts.append(f"{f.name}={getattr(s, f.name)}")
    return ", ".join(parts)
