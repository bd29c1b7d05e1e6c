"""Plain-JSON forms of ServerConfig and ForwardState, shared by spec's counterexamples and
actors' repro (`sumonce repro COUNTEREXAMPLE.json`).

A counterexample file is one JSON object:
    {"model": "qwen3_moe", "variant": "<method>", "version": "helper"|"legacy"|"pre-23731"|...,
     "config": {ServerConfig field: value}, "state": {ForwardState field: value}, ...}
Other keys (verdict details) may be present and are ignored by readers.
"""
from __future__ import annotations

from dataclasses import fields
from enum import Enum
from typing import Any

from .config import ForwardState, ServerConfig


def to_dict(obj) -> dict[str, Any]:
    """A ServerConfig or ForwardState as a JSON-ready dict (enums as their values)."""
    out = {}
    for f in fields(obj):
        value = getattr(obj, f.name)
        out[f.name] = value.value if isinstance(value, Enum) else value
    return out


def from_dict(cls, data: dict[str, Any]):
    """Rebuild `cls` (ServerConfig or ForwardState); unknown keys raise ValueError naming them."""
    known = {f.name: f for f in fields(cls)}
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise ValueError(f"unknown {cls.__name__} field(s) {', '.join(unknown)}; known: {', '.join(known)}")
    defaults = cls()
    kwargs = {}
    for name, value in data.items():
        default = getattr(defaults, name)
        if isinstance(default, Enum):
            try:
                value = type(default)(value)
            except ValueError:
                allowed = ", ".join(e.value for e in type(default))
                raise ValueError(f"{cls.__name__}.{name}: {value!r} is not one of {allowed}") from None
        elif isinstance(default, bool) and not isinstance(value, bool):
            raise ValueError(f"{cls.__name__}.{name}: {value!r} is not true/false")
        elif isinstance(default, int) and not isinstance(default, bool) and (isinstance(value, bool) or not isinstance(value, int)):
            raise ValueError(f"{cls.__name__}.{name}: {value!r} is not an integer")
        kwargs[name] = value
    return cls(**kwargs)


def config_from_dict(data: dict[str, Any]) -> ServerConfig:
    return from_dict(ServerConfig, data)


def state_from_dict(data: dict[str, Any]) -> ForwardState:
    return from_dict(ForwardState, data)
