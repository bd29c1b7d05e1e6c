"""Symbolic stand-ins for proto's dataclasses: every field a z3 constant.

A SymRecord looks like a ServerConfig (or ForwardState) to proto's functions: `c.tp_size` is a z3
Int, `c.moe_a2a_backend` a constant of a z3 enumeration sort, `c.architecture` a z3 String.
Properties (`c.moe_tp_size`) are lifted from their Python getters by spec.lift.
"""
from __future__ import annotations

from dataclasses import fields, is_dataclass
from enum import Enum
from typing import Any

import z3

_ENUM_SORTS: dict[type, tuple[z3.SortRef, dict[Enum, z3.ExprRef]]] = {}


def enum_sort(enum: type[Enum]) -> tuple[z3.SortRef, dict[Enum, z3.ExprRef]]:
    """The z3 enumeration sort for a Python Enum, made once per class."""
    if enum not in _ENUM_SORTS:
        sort, consts = z3.EnumSort(enum.__name__, [m.name for m in enum])
        _ENUM_SORTS[enum] = (sort, dict(zip(enum, consts)))
    return _ENUM_SORTS[enum]


def enum_value(member: Enum) -> z3.ExprRef:
    return enum_sort(type(member))[1][member]


def to_z3(value: Any) -> Any:
    """A concrete bool/int/str/Enum as a z3 value; z3 values pass through."""
    if isinstance(value, z3.ExprRef):
        return value
    if isinstance(value, Enum):
        return enum_value(value)
    if isinstance(value, bool):
        return z3.BoolVal(value)
    if isinstance(value, int):
        return z3.IntVal(value)
    if isinstance(value, str):
        return z3.StringVal(value)
    raise TypeError(f"no z3 form for {value!r}")


def _const(name: str, default: Any) -> z3.ExprRef:
    if isinstance(default, Enum):
        return z3.Const(name, enum_sort(type(default))[0])
    if isinstance(default, bool):
        return z3.Bool(name)
    if isinstance(default, int):
        return z3.Int(name)
    if isinstance(default, str):
        return z3.String(name)
    raise TypeError(f"field {name}: no symbolic form for {type(default).__name__}")


class SymRecord:
    """A symbolic instance of a frozen dataclass `cls`, its fields named `prefix.field`."""

    def __init__(self, cls: type, prefix: str):
        assert is_dataclass(cls)
        object.__setattr__(self, "cls", cls)
        object.__setattr__(self, "prefix", prefix)
        defaults = cls()
        object.__setattr__(self, "vars", {
            f.name: _const(f"{prefix}.{f.name}", getattr(defaults, f.name)) for f in fields(cls)})

    def __getattr__(self, name):  # only dataclass fields; properties are lifted by spec.lift
        try:
            return self.vars[name]
        except KeyError:
            raise AttributeError(name) from None

    def __repr__(self):
        return f"<symbolic {self.cls.__name__} {self.prefix}>"

    def concrete(self, model: z3.ModelRef):
        """The concrete dataclass instance this record takes in `model`."""
        defaults = self.cls()
        return self.cls(**{n: from_z3(model.eval(v, model_completion=True), getattr(defaults, n))
                           for n, v in self.vars.items()})


def from_z3(value: z3.ExprRef, like: Any) -> Any:
    """A z3 model value back to the Python type of `like`."""
    if isinstance(like, Enum):
        return type(like)[value.decl().name()]  # NOTE: the constant's name, without z3's printer
    if isinstance(like, bool):
        return z3.is_true(value)
    if isinstance(like, int):
        return value.as_long()
    if isinstance(like, str):
        return value.as_string()
    raise TypeError(f"cannot read back {like!r}")
