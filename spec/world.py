"""The symbolic world every property quantifies over: one configuration c, one forward state s,
and the flags F, R a MoE block receives, with validity (proto's own rules, lifted) as the
reachability constraint.
"""
from __future__ import annotations

import z3

from sumonce.proto import ForwardState, ServerConfig, semantics, validation

from .lift import Lifter
from . import solve
from .solve import Session, Status
from .symbolic import SymRecord


# A check first tries the incremental session for this long, then a fresh solver.
SESSION_MS = 250
# A batch of checks (World.prefetch) may take this long per round, and this many rounds.
BATCH_MS, BATCH_ROUNDS = 2_000, 4


class World:
    def __init__(self, overrides: dict | None = None):
        self.lifter = Lifter(overrides)
        self.c = SymRecord(ServerConfig, "c")
        self.s = SymRecord(ForwardState, "s")
        self.F = z3.Bool("F")
        self.R = z3.Bool("R")
        self.rules = {r.name: self.lift(r.holds, self.c) for r in validation.RULES}
        self.state_valid = self.lift(semantics.forward_state_valid, self.c, self.s)
        self._session = None
        self._sides = 0
        self.simplified: dict[int, tuple] = {}  # id of a lifted claim -> (it, z3.simplify(it))
        self._known: dict[tuple, tuple] = {}  # check's key -> (its terms, kept alive; its verdict)
        self.atoms: dict[str, z3.BoolRef] = {}
        """Boolean constants beyond c, s, F and R (an audit's opaque atoms), by name: World.atom."""

    def atom(self, name: str) -> z3.BoolRef:
        """The boolean constant `name`, kept so a readable witness can fix it (spec/readable.py)."""
        if name not in self.atoms:
            self.atoms[name] = z3.Bool(name)
        return self.atoms[name]

    def lift(self, fn, *args, **kwargs):
        """fn lifted on symbolic arguments (memoised per world)."""
        return self.lifter.call(fn, *args, **kwargs)

    def valid(self) -> list[z3.BoolRef]:
        """proto's validity of c and s, plus every side condition lifted so far."""
        return [*self.rules.values(), self.state_valid, *self.lifter.side_conditions]

    def session(self) -> Session:
        """The incremental solver holding validity (and every side condition lifted so far)."""
        if self._session is None:
            self._session, self._sides = Session(self.valid()), len(self.lifter.side_conditions)
        sides = self.lifter.side_conditions
        if len(sides) > self._sides:
            self._session.add_base(sides[self._sides:])
            self._sides = len(sides)
        return self._session

    @staticmethod
    def _key(claim, assumptions) -> tuple:
        return claim.get_id(), tuple(a.get_id() for a in assumptions)

    def prefetch(self, queries, timeout_ms: int, rounds: int = BATCH_ROUNDS) -> None:
        """Ask many (claim, assumptions) checks at once (solve.Session.batch); check() then answers
        those from here. A check per property costs a few milliseconds of set-up each; one
        question for all of them costs about as much as a few."""
        todo, terms = {}, {}
        for claim, assumptions in queries:
            key = self._key(claim, assumptions)
            if key not in self._known and key not in todo:
                todo[key] = z3.And(*assumptions, z3.Not(claim))
                terms[key] = (claim, *assumptions)
        if len(todo) < 2:
            return
        for key, verdict in self.session().batch(todo, min(BATCH_MS, timeout_ms), rounds).items():
            self._known[key] = terms[key], verdict

    def check(self, claim: z3.BoolRef, assumptions: list[z3.BoolRef], timeout_ms: int):
        """solve.check under validity, on this world's incremental session."""
        known = self._known.pop(self._key(claim, assumptions), None)
        if known is not None:
            return known[1]
        verdict = self.session().check(claim, assumptions, min(SESSION_MS, timeout_ms))
        if verdict.status != Status.UNKNOWN:
            return verdict
        # NOTE: the incremental solver skips z3's preprocessing tactics, which some nonlinear size
        # constraints need; a fresh solver gets them. Unknown only if that fails too.
        fresh = solve.check(claim, self.valid() + assumptions, timeout_ms)
        fresh.seconds += verdict.seconds
        return fresh

    def concrete(self, model: z3.ModelRef) -> tuple[ServerConfig, ForwardState, bool, bool]:
        """The configuration, state and flags at a model's point."""
        F = z3.is_true(model.eval(self.F, model_completion=True))
        R = z3.is_true(model.eval(self.R, model_completion=True))
        return self.c.concrete(model), self.s.concrete(model), F, R
