"""Witnesses a person can read (spec.readable: as close to SGLang's defaults as the formula
allows), and how to print them."""
from __future__ import annotations

from dataclasses import fields

import z3

from sumonce.proto import ForwardState
from sumonce.proto.flags import to_flags
from sumonce.spec.readable import near_defaults

TIMEOUT_MS = 10_000


def find(w, formula, assumptions) -> z3.ModelRef | None:
    """A point where `formula` holds under `assumptions`, near the defaults; None if there is none."""
    return near_defaults(w, formula, list(assumptions), TIMEOUT_MS)


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
