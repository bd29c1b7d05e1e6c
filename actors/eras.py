"""The eras the actors execute, and what proto predicts for a case in its era.

An era runs here when proto has its layer semantics: 0.5.11 (the #23748 helper; proto.semantics,
executed by execute.py) and 0.5.23 (the stage boundary sums; proto.boundary and
proto.models_0523, executed by execute_0523.py). The others (proto.eras.Era) have helpers in
proto.decisions but no layer semantics yet: refused by `sumonce run --era`.
"""
from __future__ import annotations

from sumonce.proto import catalogue, models_0523, semantics
from sumonce.proto.eras import Era

RUN_ERAS = (Era.V0_5_11, Era.V0_5_23)
DEFAULT_ERA = Era.V0_5_23
"""A single `sumonce run`: the newest release's era, what a user running SGLang today gets."""


def era_arg(text: str) -> Era:
    """`--era` for the actors: one of RUN_ERAS; ValueError (one line) names them."""
    allowed = ", ".join(e.value for e in RUN_ERAS)
    try:
        era = Era(text)
    except ValueError:
        raise ValueError(f"unknown --era {text!r}; the actors run the eras with layer semantics in "
                         f"proto: {allowed}") from None
    if era not in RUN_ERAS:
        raise ValueError(f"--era {text}: no layer semantics in proto for that era yet (only its helper, "
                         f"proto.decisions); the actors run {allowed}")
    return era


def predicted(case):
    """(per-axis sum counts, mixes tokens) proto predicts for the case in its era."""
    c, s = case.config, case.state
    if case.era == Era.V0_5_23:
        m = models_0523.era_model(case.model)
        return models_0523.sum_counts(c, s, m), models_0523.mixes_tokens(c, m)
    m = catalogue.model(case.model)
    return (semantics.sum_counts(c, s, m, case.variant, case.version),
            semantics.mixes_tokens(c, s, m, case.variant, case.version))


def exactly_once(case) -> bool:
    c, s = case.config, case.state
    if case.era == Era.V0_5_23:
        return models_0523.exactly_once(c, s, models_0523.era_model(case.model))
    return semantics.exactly_once(c, s, catalogue.model(case.model), case.variant, case.version)
