"""What z3 says about each model and guard version, and whether the drawn map agrees.

Runs spec's own property table (the exactly-once, finding and history properties) through spec's
checker, so the page shows the verdicts `sumonce prove` gives. A proved property holds for every
size; the map draws sizes 1-16 of it, so every drawn cell in the property's scope must be exactly
once. A refuted property has a witness (a configuration z3 found); the map draws it as a cell of
its own, and classify() must call it wrong.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from sumonce.proto.catalogue import MODELS_BY_NAME
from sumonce.proto.serial import config_from_dict, state_from_dict
from sumonce.proto.sites import Version
from sumonce.spec.check import run_all
from sumonce.spec.properties import Kind, all_properties
from sumonce.spec.solve import DEFAULT_TIMEOUT_MS

from .outcome import Cell, classify
from .panels import repro_command

KINDS = (Kind.ONCE, Kind.FINDING, Kind.HISTORY)


@dataclass
class Witness:
    prop: str
    meaning: str
    model: str
    version: Version
    cell: Cell
    command: str
    upstream: str = ""


@dataclass
class Proof:
    """One property about one model at one guard version."""
    name: str
    meaning: str
    verdict: str
    expected: bool
    scope: object
    claim: object
    in_scope: int = 0
    wrong: int = 0
    """Drawn cells in scope that are not exactly once (a refuted property's failures on the map)."""
    disagree: list = field(default_factory=list)
    """(panel, tp, ep) cells in scope where the grid contradicts a proved property."""


def run_proofs(timeout_ms: int = DEFAULT_TIMEOUT_MS, jobs: int = 2):
    """spec's results for the properties the map shows: {(model, version): [Proof]}, [Witness]."""
    props = [p for p in all_properties() if p.kind in KINDS]
    results = run_all(props, timeout_ms, jobs=jobs)
    proofs, witnesses = {}, []
    for r in results[:len(props)]:
        p = r.prop
        if p.model is not None and p.version is not None and p.scopes:
            proofs.setdefault((p.model.name, p.version), []).append(
                Proof(p.name, p.meaning, r.status.value, r.passed, p.scopes[0], p.claim))
        cx = r.counterexample
        if r.status.value == "refuted" and cx and cx.get("model"):
            witnesses.append(witness(p, cx))
    return proofs, witnesses


def witness(p, cx: dict) -> Witness:
    m, version = MODELS_BY_NAME[cx["model"]], Version(cx["version"])
    c, s = config_from_dict(cx["config"]), state_from_dict(cx["state"])
    return Witness(p.name, p.meaning, m.name, version, classify(c, s, m, version),
                   repro_command(m, version, c, s), p.upstream)


def agree(proof: Proof, c, s, cell: Cell, where: tuple) -> None:
    """Check one drawn cell against a property: in scope and accepted, a proved property must see
    exactly once there (and the property's own claim, run in plain Python, must say so too)."""
    if cell.rule or not proof.scope(c, s, None, None):
        return
    proof.in_scope += 1
    holds = bool(proof.claim(c, s, None, None))
    proof.wrong += cell.outcome.wrong
    if proof.verdict == "proved" and (not holds or cell.outcome.wrong):
        proof.disagree.append(where)
