"""What happens to the experts' partial sums at one configuration: one of six outcomes.

`classify` is the ONE place that maps proto's result (validation, then proto.semantics' verdict
per MoE variant) to an outcome; the map, the witness cells and the agreement check call it, the
sweep's bars its per-layer half `from_counts`. A layer's outcome is proto.semantics.layer_outcome
(once, double, missing, mixes tokens, crash); validation adds the sixth, refused. `classify_0523`
is its counterpart for the 0.5.23 era (proto.models_0523.layer_outcome; refused also where that
era's releases refuse the configuration, or proto.models_0523 does not cover it).
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache

from sumonce.proto import models_0523, semantics
from sumonce.proto.eras import Era, accepts
from sumonce.proto.config import ForwardState, ServerConfig
from sumonce.proto.semantics import SumCounts
from sumonce.proto.sites import Model, Version
from sumonce.proto.validation import violations


class Outcome(StrEnum):
    """One letter each: the map stores its cells as these letters."""
    ONCE = "O"
    TWICE = "T"
    NEVER = "N"
    MIXES_TOKENS = "M"
    CRASHES = "C"
    REFUSED = "R"

    @property
    def wrong(self) -> bool:
        """A run that SGLang accepts and that does not sum every partial axis exactly once."""
        return self not in (Outcome.ONCE, Outcome.REFUSED)


# Legend order, words, and colours (colour-blind safe: Okabe-Ito, refused in light grey).
LEGEND = (
    (Outcome.ONCE, "exactly once", "#009e73"),
    (Outcome.TWICE, "summed twice", "#d55e00"),
    (Outcome.NEVER, "never summed", "#0072b2"),
    (Outcome.MIXES_TOKENS, "mixes tokens", "#cc79a7"),
    (Outcome.CRASHES, "crashes", "#000000"),
    (Outcome.REFUSED, "refused by SGLang's validation", "#dddddd"),
)
WORDS = {o: w for o, w, _ in LEGEND}
COLOURS = {o: c for o, _, c in LEGEND}


@dataclass(frozen=True)
class Cell:
    """One configuration's outcome; counts of the first variant that is not exactly once (or of
    the first variant), the rule SGLang refuses it by."""
    outcome: Outcome
    ep: int = 0
    moe_tp: int = 0
    variant: str = ""
    rule: str = ""


# Where several axes go wrong, the worse outcome names the cell.
SEVERITY = (Outcome.CRASHES, Outcome.MIXES_TOKENS, Outcome.TWICE, Outcome.NEVER, Outcome.ONCE)


# proto.semantics.Outcome -> the page's outcome.
PROTO_OUTCOMES = {semantics.Outcome.ONCE: Outcome.ONCE, semantics.Outcome.DOUBLE: Outcome.TWICE,
                  semantics.Outcome.MISSING: Outcome.NEVER, semantics.Outcome.MIXES_TOKENS: Outcome.MIXES_TOKENS,
                  semantics.Outcome.CRASH: Outcome.CRASHES}


def layer(c: ServerConfig, s: ForwardState, m: Model, variant: str, version: Version) -> Outcome:
    """proto's verdict on one MoE variant (it knows mixed tokens and crashes)."""
    return PROTO_OUTCOMES[semantics.layer_outcome(c, s, m, variant, version)]


def from_counts(c: ServerConfig, n: SumCounts) -> Outcome:
    """One layer's counts, judged on the axes of size > 1 (proto.semantics.exactly_once's rule)."""
    seen = {Outcome.ONCE}
    for size, count in ((c.ep_size, n.ep), (c.moe_tp_size, n.moe_tp)):
        if size > 1 and count == 0:
            seen.add(Outcome.NEVER)
        elif size > 1 and count > 1:
            seen.add(Outcome.TWICE)
    return next(o for o in SEVERITY if o in seen)


@lru_cache(maxsize=None)
def refusal(c: ServerConfig) -> str:
    """The first rule of proto.validation that `c` breaks ('' when SGLang accepts it); cached, as
    the map asks once per guard version for the same configuration."""
    broken = violations(c)
    return broken[0].name if broken else ""


def classify(c: ServerConfig, s: ForwardState, m: Model, version: Version) -> Cell:
    """The outcome of model `m`'s guards at `version` under (c, s): refused where SGLang's
    validation refuses c (or the forward cannot happen), else the worst of its MoE variants."""
    broken = refusal(c)
    if broken:
        return Cell(Outcome.REFUSED, rule=broken)
    if not semantics.forward_state_valid(c, s):
        return Cell(Outcome.REFUSED, rule="forward_state")
    first = None
    for variant in m.variants:
        n = semantics.sum_counts(c, s, m, variant, version)
        outcome = layer(c, s, m, variant, version)
        if outcome != Outcome.ONCE:
            return Cell(outcome, n.ep, n.moe_tp, variant)
        first = first or Cell(Outcome.ONCE, n.ep, n.moe_tp, variant)
    return first


ERA_RULES = ("era_0_5_23", "scope_0_5_23")
"""The 0.5.23 map's own refusals: the era's releases refuse the configuration (proto.eras.accepts),
or proto.models_0523 does not cover it (in_scope, state_in_scope: AMD, a2a backends other than the
completing ones, input-scattered batches)."""


def classify_0523(c: ServerConfig, s: ForwardState, m: models_0523.EraModel) -> Cell:
    """The outcome of model `m` in the 0.5.23 era under (c, s); the cell's variant names where the
    model sums (the stage boundary's FFN exit, or its MoE block)."""
    broken = refusal(c)
    if broken:
        return Cell(Outcome.REFUSED, rule=broken)
    if not semantics.forward_state_valid(c, s):
        return Cell(Outcome.REFUSED, rule="forward_state")
    if not accepts(Era.V0_5_23, c):
        return Cell(Outcome.REFUSED, rule=ERA_RULES[0])
    if not models_0523.in_scope(c, m) or not models_0523.state_in_scope(c, s):
        return Cell(Outcome.REFUSED, rule=ERA_RULES[1])
    n = models_0523.sum_counts(c, s, m)
    return Cell(PROTO_OUTCOMES[models_0523.layer_outcome(c, s, m)], n.ep, n.moe_tp, m.sums_at.value)
