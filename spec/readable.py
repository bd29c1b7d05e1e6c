"""Counterexamples a person can read: a point that satisfies a formula while keeping as many
settings as possible at SGLang's defaults and sizes small.

Each preference is a soft literal (`default c.ep_size`, `c.tp_size <= 2`, ...); the solver is asked
with all of them assumed, and the ones in an unsat core are dropped until it answers. A handful of
checks, whatever the number of settings. Shared by `sumonce prove` and `sumonce audit`.
"""
from __future__ import annotations

import z3

from .symbolic import to_z3

SIZE_STEPS = (2, 4, 8)


class Unknown(Exception):
    """The solver gave up: a failure, never a pass."""


def preferences(w) -> dict:
    """Soft literal -> the constraint it stands for, most wanted first."""
    prefs = {}
    for record in (w.c, w.s):
        defaults = record.cls()
        for name, var in record.vars.items():
            value = getattr(defaults, name)
            prefs[z3.Bool(f"default {record.prefix}.{name}")] = var == to_z3(value)
            if type(value) is int:
                cap = 4096 if name == "num_tokens" else None
                for k in ((cap,) if cap else SIZE_STEPS):
                    prefs[z3.Bool(f"{record.prefix}.{name} <= {k}")] = var <= k
    return prefs


def _preferences(w) -> dict:
    """preferences(w), made once per world."""
    if getattr(w, "_preferences", None) is None:
        w._preferences = preferences(w)
    return w._preferences


def near_defaults(w, formula: z3.BoolRef, assumptions: list, timeout_ms: int = 10_000) -> z3.ModelRef | None:
    """A point where `formula` holds under validity and `assumptions`, near the defaults; None if
    there is none. Raises Unknown if the solver gives up. Runs in a push/pop scope of the world's
    session, which already holds validity."""
    session = w.session()
    session.set_timeout(timeout_ms)
    solver = session.solver
    solver.push()
    try:
        solver.add(*assumptions, formula)
        prefs = _preferences(w)
        for literal, constraint in prefs.items():
            solver.add(z3.Implies(literal, constraint))
        active = list(prefs)
        while True:
            result = solver.check(*active)
            if result == z3.sat:
                return solver.model()
            if result == z3.unknown:
                raise Unknown(solver.reason_unknown())
            core = {c.get_id() for c in solver.unsat_core()}
            if not core:
                return None
            active = [a for a in active if a.get_id() not in core]
    finally:
        solver.pop()
