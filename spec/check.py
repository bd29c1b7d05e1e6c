"""Run the property table: lift each claim and scope, check, and explain every refutation."""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import z3

from sumonce.procs import cyclic_gc_off, fork_is_safe

from . import claims, solve
from .counterexample import describe
from .properties import Expect, Kind, Property
from .solve import Status
from .readable import Unknown, near_defaults
from .world import World

@dataclass
class Result:
    prop: Property
    status: Status
    seconds: float
    detail: str = ""
    counterexample: dict | None = None
    lift_ok: bool = True
    extra: dict = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        want = Status.PROVED if self.prop.expect == Expect.HOLDS else Status.REFUTED
        return self.lift_ok and self.status == want


def lift_claim(w: World, fn) -> z3.BoolRef:
    """fn lifted on the world's c, s, F, R and simplified; the lift is memoised, and so is its
    simplification (keyed on the lifted term, which the memo keeps alive)."""
    lifted = z3.And(True, w.lift(fn, w.c, w.s, w.F, w.R))
    hit = w.simplified.get(lifted.get_id())
    if hit is None:
        hit = w.simplified[lifted.get_id()] = (lifted, z3.simplify(lifted))
    return hit[1]


def refute(w: World, claim_fn, scopes, timeout_ms: int, plain: bool = True) -> tuple[solve.Verdict, z3.ModelRef | None]:
    """Check a claim under validity + scopes; on refutation prefer a readable counterexample."""
    claim = lift_claim(w, claim_fn)
    assumptions = [lift_claim(w, s) for s in scopes]
    verdict = w.check(claim, assumptions, timeout_ms)
    if verdict.status != Status.REFUTED or not plain:
        return verdict, verdict.model
    try:
        return verdict, near_defaults(w, z3.Not(claim), assumptions, timeout_ms, verdict.model) or verdict.model
    except Unknown:
        return verdict, verdict.model


def run_property(w: World, p: Property, timeout_ms: int) -> Result:
    if p.kind == Kind.FINDING and p.era == "0.5.11":
        return _run_finding(w, p, timeout_ms)
    verdict, model = refute(w, p.claim, p.scopes, timeout_ms)
    result = Result(p, verdict.status, verdict.seconds, verdict.reason)
    if p.era != "0.5.11" and p.kind in (Kind.FINDING, Kind.DIFFERENCE) and verdict.status == Status.PROVED:
        _not_vacuous(w, p, result, timeout_ms)
    if model is not None:
        result.counterexample = describe(w, model, p, p.claim)
        result.lift_ok = result.counterexample["python_claim"] is False
    if p.kind == Kind.REFACTOR and verdict.status == Status.REFUTED and p.fallback is not None:
        _refactor_fallback(w, p, result, timeout_ms)
    elif p.kind == Kind.REFACTOR and verdict.status == Status.PROVED and p.fallback is not None:
        result.detail = "identical to the legacy guard"
    if p.era != "0.5.11" and p.kind == Kind.FINDING:
        from .eras import finding_extras
        result.extra.update(finding_extras(p, result.status, result.counterexample))
    return result


def _not_vacuous(w: World, p: Property, result: Result, timeout_ms: int) -> None:
    """A proof over an empty scope says nothing: some valid point must satisfy the scopes (and the
    premise). Asked of the era findings and differences, whose scopes are narrow regions."""
    parts = [lift_claim(w, s) for s in p.scopes + ((p.premise,) if p.premise else ())]
    empty = w.check(z3.Not(z3.And(True, *parts)), [], timeout_ms)
    result.seconds += empty.seconds
    if empty.status == Status.PROVED:
        result.status, result.detail = Status.UNKNOWN, "vacuous: no valid configuration is in its scope"
    elif empty.status == Status.UNKNOWN:
        result.status, result.detail = Status.UNKNOWN, f"scope unknown: {empty.reason}"


def _refactor_fallback(w: World, p: Property, result: Result, timeout_ms: int) -> None:
    """Equality failed: is the difference exactly the TP-only Q term, and can the model reach it?"""
    weak, _ = refute(w, p.fallback, (), timeout_ms)
    result.seconds += weak.seconds
    if weak.status != Status.PROVED:
        result.detail = "differs from the legacy guard by more than the Q term"
        return
    reach, model = refute(w, claims.guards_equal(p.site),
                          (claims.flags_from_decoder(p.model), claims.model_runs(p.model)), timeout_ms)
    result.seconds += reach.seconds
    witness = result.counterexample
    result.status = Status.PROVED
    result.detail = ("differs only by the TP-only Q term: the helper also skips under Q"
                     + (f"; reachable for {p.model.name}" if reach.status == Status.REFUTED else
                        f"; not reachable for {p.model.name}"))
    result.extra["witness"] = witness
    if model is not None:
        result.extra["reachable_witness"] = describe(w, model, p, claims.guards_equal(p.site))
    result.counterexample = None


def _run_finding(w: World, p: Property, timeout_ms: int) -> Result:
    """A known finding: some (model, version) must fail exactly-once inside the region."""
    affected, proved, models, first, seconds, points = [], set(), {}, None, 0.0, {}
    for tier, i, (m, v) in ((t, i, pair) for t in p.targets if not affected for i, pair in enumerate(t)):
        once, scope = _pair_question(p, m, v)
        if first is not None and (m, v) not in points:
            points.update(_ask_rest(w, p, tier[i:], models, timeout_ms))
        point = points.get((m, v)) if first is not None else None
        if point is not None:  # NOTE: a point in hand already refutes it: no question
            affected.append(f"{m.name}@{v.value}")
            models[(m, v)] = point
            continue
        verdict, model = refute(w, once, scope, timeout_ms, plain=first is None)
        seconds += verdict.seconds
        if verdict.status == Status.UNKNOWN:
            return Result(p, Status.UNKNOWN, seconds, f"unknown for {m.name}@{v.value}: {verdict.reason}")
        if verdict.status == Status.PROVED:
            proved.add((m, v))
        if verdict.status == Status.REFUTED:
            affected.append(f"{m.name}@{v.value}")
            models[(m, v)] = model
            if first is None:
                first = describe(w, model, p, once, m, v)
    if not affected:
        return Result(p, Status.PROVED, seconds,
                      "no longer fails anywhere: fixed? remove it from spec/findings.py")
    reach, seconds2 = _reachable(w, p, timeout_ms, proved, models)
    r = Result(p, Status.REFUTED, seconds + seconds2,
               f"fails for {', '.join(affected)}; {reach}; {p.status}", first)
    r.lift_ok = first["python_claim"] is False
    r.extra.update(affected=affected, reachable=reach, status=p.status)
    return r


def _pair_question(p: Property, m, v) -> tuple:
    """A finding's question for one (model, version): its exactly-once claim, inside the region."""
    return claims.exactly_once(m, v), (claims.in_scope_inside(m, v, p.claim),)


def _ask_rest(w: World, p: Property, pairs, models: dict, timeout_ms: int) -> dict:
    """Once a finding has its first point: each remaining pair of the tier -> a point in hand that
    refutes it (or None), and the questions of those without one asked at once (World.prefetch:
    mostly pairs the finding does not touch, proved by one unsat question); refute() then answers
    them from there. The verdicts are the one-by-one questions'."""
    out, queries = {}, []
    for m, v in pairs:
        once, scope = _pair_question(p, m, v)
        out[(m, v)] = _refuted_at(w, once, scope, models, m)
        if out[(m, v)] is None:
            queries.append(_query(w, once, scope))
    w.prefetch(queries, timeout_ms)
    return out


def _refuted_at(w: World, claim_fn, scopes, models: dict, model) -> z3.ModelRef | None:
    """A point already found for this finding (the readable one first) where the claim fails
    inside the scopes, validity and every side condition lifted so far holding there (then it
    is a refutation as the solver's would be; only which point it carries differs); else None.
    A sat question over the sizes' nonlinear rules takes 5-50 ms, evaluating a point well
    under one."""
    claim, assumptions = _query(w, claim_fn, scopes)
    for point in _candidates(w, models, model):
        if (_true_at(point, z3.Not(claim)) and all(_true_at(point, a) for a in assumptions)
                and all(_true_at(point, r) for r in w.valid())):
            return point
    return None


def _candidates(w: World, models: dict, model):
    """The finding's first (readable) point, moved to each architecture of `model` (a model's
    scope names its architectures, so no point of another model's is in it as it stands)."""
    first = next(iter(models.values()))
    first = first.model if isinstance(first, _Moved) else first
    for name in model.architectures:
        yield _Moved(first, ((w.c.architecture, z3.StringVal(name)),))


class _Moved:
    """A point with some settings moved to other values: a formula is evaluated there with those
    settings substituted (every other setting as at the point)."""

    def __init__(self, model: z3.ModelRef, pairs: tuple):
        self.model, self.pairs = model, pairs

    def eval(self, formula, model_completion: bool = False):
        return self.model.eval(z3.substitute(formula, *self.pairs), model_completion=model_completion)


def _true_at(point, formula) -> bool:
    return z3.is_true(point.eval(formula, model_completion=True))


def _query(w: World, claim_fn, scopes) -> tuple:
    """The lifted (claim, assumptions) that refute() asks."""
    return lift_claim(w, claim_fn), [lift_claim(w, s) for s in scopes]


def _prefetch_table(w: World, props: list[Property], timeout_ms: int) -> None:
    """Every property expected to hold whose verdict is one check (refute's), asked at once."""
    w.prefetch([_query(w, p.claim, p.scopes) for p in props
                if p.expect == Expect.HOLDS and not (p.kind == Kind.FINDING and p.era == "0.5.11")], timeout_ms)


def _reachable(w: World, p: Property, timeout_ms: int, proved=frozenset(), models=None) -> tuple[str, float]:
    """Is the finding's failure reachable where the model can run the configuration (and the run
    proceeds)? The affected pairs are tried in order; the first that fails there is named. A pair
    in `proved` holds in the whole region, so it holds where the model runs too: not asked again;
    a pair whose failing point in `models` is already one where the model runs needs no question."""
    seconds = 0.0
    for m, v in (pair for tier in p.targets for pair in tier if pair not in proved):
        point = (models or {}).get((m, v))
        if point is not None and _runs_at(w, point, claims.model_runs(m)):
            return f"reachable ({m.name}@{v.value})", seconds
        scope = (claims.in_scope_inside(m, v, p.claim), claims.model_runs(m))
        verdict, _ = refute(w, claims.exactly_once(m, v), scope, timeout_ms, plain=False)
        seconds += verdict.seconds
        if verdict.status == Status.UNKNOWN:
            return f"reachability unknown ({verdict.reason})", seconds
        if verdict.status == Status.REFUTED:
            return f"reachable ({m.name}@{v.value})", seconds
    return "reached only where SGLang crashes or the model cannot run the configuration", seconds


def _runs_at(w: World, point: z3.ModelRef, runs) -> bool:
    """Does the scope `runs` hold at a point (and every lifted side condition with it)?"""
    every = [lift_claim(w, runs), *w.lifter.side_conditions]
    return all(z3.is_true(point.eval(x, model_completion=True)) for x in every)


SIDE_CONDITIONS = Property("lifted-divisions-are-by-positive-sizes",
                           "Validity implies every lifted divisor is positive.", "all valid configurations",
                           Kind.LEMMA, None)


def side_conditions_hold(w: World, timeout_ms: int) -> Result:
    """Every division lifted anywhere is by a positive size under validity alone."""
    p = SIDE_CONDITIONS
    rules = list(w.rules.values())
    verdict = solve.check(z3.And(True, *w.lifter.side_conditions), rules, timeout_ms)
    return Result(p, verdict.status, verdict.seconds, verdict.reason)


def run_all(props: list[Property], timeout_ms: int, progress=None, jobs: int = 1) -> list[Result]:
    """Every property, then the side-condition lemma. With jobs > 1 the table is split over forked
    workers (each lifts into its own World) and the results come back in table order; a process
    that may not fork (other threads, a Ray session: sumonce.procs) runs them here, one by one."""
    if jobs > 1 and len(props) >= 2 * jobs and fork_is_safe():
        return _run_forked(props, timeout_ms, jobs)
    with cyclic_gc_off():  # NOTE: lifting and witnesses make z3 terms by the ten thousand
        return _run_here(props, timeout_ms, progress)


def _run_here(props: list[Property], timeout_ms: int, progress=None) -> list[Result]:
    w = World()
    _prefetch_table(w, props, timeout_ms)
    results = []
    for p in props:
        start = time.perf_counter()
        r = run_property(w, p, timeout_ms)
        r.extra["wall"] = time.perf_counter() - start
        results.append(r)
        if progress:
            progress(r)
    results.append(side_conditions_hold(w, timeout_ms))
    return results


_FORKED: list = []


def _parts(props: list[Property], jobs: int) -> list[list[int]]:
    """The table's indices dealt to `jobs` workers, each family (kind and era) dealt in turn, so
    each worker gets its share of every family (the history rows sit at every other place of the
    table: dealt by place, one worker got 15 of 16); each part in table order."""
    order = sorted(range(len(props)), key=lambda i: (props[i].kind.value, props[i].era))
    return [sorted(order[k::jobs]) for k in range(jobs)]


def _run_part(indices: list[int], timeout_ms: int) -> list[dict]:
    """In a forked worker: the properties at `indices`, as plain data."""
    props = [_FORKED[i] for i in indices]
    results = run_all(props, timeout_ms)
    return [{"status": r.status.value, "seconds": r.seconds, "detail": r.detail, "lift_ok": r.lift_ok,
             "counterexample": r.counterexample, "extra": r.extra} for r in results]


def _run_forked(props: list[Property], timeout_ms: int, jobs: int) -> list[Result]:
    import multiprocessing
    _FORKED[:] = props
    dealt = _parts(props, jobs)
    try:
        with multiprocessing.get_context("fork").Pool(jobs) as pool:
            parts = pool.starmap(_run_part, [(indices, timeout_ms) for indices in dealt])
    finally:
        _FORKED.clear()
    results: list = [None] * len(props)
    sides = []
    for indices, part in zip(dealt, parts):
        *rows, side = part
        for i, row in zip(indices, rows):
            results[i] = _result(props[i], row)
        sides.append(side)
    worst = next((s for s in sides if s["status"] != Status.PROVED.value), sides[0])
    lemma = Result(SIDE_CONDITIONS, Status(worst["status"]), sum(s["seconds"] for s in sides), worst["detail"])
    return results + [lemma]


def _result(prop: Property, row: dict) -> Result:
    return Result(prop, Status(row["status"]), row["seconds"], row["detail"], row["counterexample"],
                  row["lift_ok"], row["extra"])
