"""Three-valued checking: proved, refuted (with a model), unknown (a failure, never a pass).

A claim is proved by refutation: assumptions + not(claim) unsat under a timeout.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from enum import StrEnum

import z3

DEFAULT_TIMEOUT_MS = 10_000


class Status(StrEnum):
    PROVED = "proved"
    REFUTED = "refuted"
    UNKNOWN = "unknown"


@dataclass
class Verdict:
    status: Status
    seconds: float
    model: z3.ModelRef | None = None
    reason: str = ""

    @property
    def ok(self) -> bool:
        return self.status == Status.PROVED


def check(claim: z3.BoolRef, assumptions: list[z3.BoolRef], timeout_ms: int = DEFAULT_TIMEOUT_MS) -> Verdict:
    """Is `claim` true under every assignment that satisfies `assumptions`?"""
    solver = z3.Solver()
    solver.set("timeout", max(1, int(timeout_ms)))
    solver.add(*assumptions)
    solver.add(z3.Not(claim))
    start = time.perf_counter()
    result = solver.check()
    seconds = time.perf_counter() - start
    if result == z3.unsat:
        return Verdict(Status.PROVED, seconds)
    if result == z3.sat:
        return Verdict(Status.REFUTED, seconds, solver.model())
    return Verdict(Status.UNKNOWN, seconds, reason=solver.reason_unknown())


class Session:
    """One incremental solver holding the assumptions every check shares; each check pushes its
    own scope and negated claim, then pops them."""

    def __init__(self, base: list[z3.BoolRef]):
        self.solver = z3.Solver()
        self.solver.add(*base)
        self._timeout = None

    def add_base(self, more: list[z3.BoolRef]) -> None:
        self.solver.add(*more)

    def set_timeout(self, timeout_ms: int) -> None:
        if timeout_ms != self._timeout:
            self.solver.set("timeout", max(1, int(timeout_ms)))
            self._timeout = timeout_ms

    def check(self, claim: z3.BoolRef, assumptions: list[z3.BoolRef], timeout_ms: int = DEFAULT_TIMEOUT_MS) -> Verdict:
        self.set_timeout(timeout_ms)
        self.solver.push()
        try:
            self.solver.add(*assumptions)
            self.solver.add(z3.Not(claim))
            start = time.perf_counter()
            result = self.solver.check()
            seconds = time.perf_counter() - start
            if result == z3.unsat:
                return Verdict(Status.PROVED, seconds)
            if result == z3.sat:
                return Verdict(Status.REFUTED, seconds, self.solver.model())
            return Verdict(Status.UNKNOWN, seconds, reason=self.solver.reason_unknown())
        finally:
            self.solver.pop()

    def batch(self, todo: dict, timeout_ms: int, rounds: int) -> dict:
        """Many checks asked as one: `todo` maps a key to a formula that must be unsat for the
        claim to hold (assumptions and the negated claim). Each round asks whether any pending
        formula is satisfiable: unsat proves every pending one at once; a point refutes every
        pending formula true there (the point is each one's model). Stops after `rounds` rounds or
        at `unknown`; what it leaves open is not in the answer (asked one by one, as before). The
        verdicts are the single checks' verdicts: only which point a refutation carries, and the
        time (the round's, shared out), differ."""
        self.set_timeout(timeout_ms)
        pending, out = dict(todo), {}
        for _ in range(rounds):
            if not pending:
                break
            self.solver.push()
            try:
                self.solver.add(z3.Or(*pending.values()))
                start = time.perf_counter()
                result = self.solver.check()
                seconds = time.perf_counter() - start
                model = self.solver.model() if result == z3.sat else None
            finally:
                self.solver.pop()
            if result == z3.unsat:
                out.update((k, Verdict(Status.PROVED, seconds / len(pending))) for k in pending)
                break
            if result != z3.sat:
                break
            hit = [k for k, f in pending.items() if z3.is_true(model.eval(f, model_completion=True))]
            if not hit:  # NOTE: cannot happen (the point satisfies the disjunction); ask one by one
                break
            for k in hit:
                out[k] = Verdict(Status.REFUTED, seconds / len(hit), model)
                del pending[k]
        return out


def witness(formula: z3.BoolRef, assumptions: list[z3.BoolRef], timeout_ms: int = DEFAULT_TIMEOUT_MS) -> Verdict:
    """A point satisfying `formula` under `assumptions`: REFUTED carries it (the claim 'no such
    point' is refuted); PROVED means there is none."""
    return check(z3.Not(formula), assumptions, timeout_ms)
