"""Counterexamples a person can read: a point that satisfies a formula while keeping as many
settings as possible at SGLang's defaults and sizes small.

Each preference is a soft literal (`default c.ep_size`, `c.tp_size <= 2`, ...), taken greedily in
a fixed order (most wanted first): one is kept when it is satisfiable with those kept before it.
Every setting the preferences leave open is then pinned to its first possible value (the smallest
integer, the first enum member, the alphabetically first string the formula names). Each step asks
whether a point exists, never which one the solver happened to find (a model in hand only saves
asking when it already answers yes), so the counterexample depends only on the formula: not on
which other properties ran before it in the same solver (`--only`). Shared by `sumonce prove` and `sumonce audit`.
"""
from __future__ import annotations

from enum import Enum

import z3

from . import solve
from .symbolic import enum_value, from_z3, to_z3

SIZE_STEPS = (2, 4, 8)


class Unknown(Exception):
    """The solver gave up: a failure, never a pass."""


def preferences(w) -> dict:
    """Soft literal -> the constraint it stands for, most wanted first."""
    return {literal: constraint for literal, (constraint, _) in _soft(w).items()}


def _soft(w) -> dict:
    """Soft literal -> (its constraint, the same as a test of a point: (var, value, cap), the
    constraint being var == value when cap is None, else var <= cap), most wanted first."""
    prefs = {}
    for record in (w.c, w.s):
        defaults = record.cls()
        for name, var in record.vars.items():
            value = getattr(defaults, name)
            prefs[z3.Bool(f"default {record.prefix}.{name}")] = var == to_z3(value), (var, value, None)
            if type(value) is int:
                cap = 4096 if name == "num_tokens" else None
                for k in ((cap,) if cap else SIZE_STEPS):
                    prefs[z3.Bool(f"{record.prefix}.{name} <= {k}")] = var <= k, (var, value, k)
    return prefs


def _preferences(w) -> tuple[dict, list]:
    """_soft(w) and each literal's implication, made once per world."""
    if getattr(w, "_preferences", None) is None:
        prefs = _soft(w)
        w._preferences = prefs, [z3.Implies(literal, c) for literal, (c, _) in prefs.items()]
    return w._preferences


class _Point:
    """A model's values of the settings, each read once: whether it meets a soft literal is then
    a comparison in Python (the same answer as evaluating the literal's constraint there)."""

    def __init__(self, model: z3.ModelRef):
        self.model, self._values = model, {}

    def meets(self, test) -> bool:
        var, default, cap = test
        key = var.get_id()
        if key not in self._values:
            self._values[key] = from_z3(self.model.eval(var, model_completion=True), default)
        value = self._values[key]
        return value == default if cap is None else value <= cap


def _sat(solver, *assumed) -> bool:
    """Is there a point with `assumed` under what the solver holds? Where the incremental solver
    answers unknown (it skips z3's preprocessing, which some nonlinear size constraints need, as
    World.check says), a fresh solver is asked the same; only its unknown is Unknown. The point of
    a sat answer is then _model(solver)'s."""
    solver.__dict__["_sumonce_point"] = None
    result = solver.check(*assumed)
    if result != z3.unknown:
        return result == z3.sat
    fresh = solve.witness(z3.And(True, *assumed), list(solver.assertions()), FRESH_MS)
    if fresh.status == solve.Status.UNKNOWN:
        raise Unknown(fresh.reason)
    solver.__dict__["_sumonce_point"] = fresh.model
    return fresh.status == solve.Status.REFUTED


def _model(solver) -> z3.ModelRef:
    """The point of the last sat answer of _sat."""
    point = solver.__dict__.get("_sumonce_point")
    return solver.model() if point is None else point


FRESH_MS = 10_000
"""A fresh solver's time for one question the incremental one left unknown."""


def near_defaults(w, formula: z3.BoolRef, assumptions: list, timeout_ms: int = 10_000,
                  start: z3.ModelRef | None = None) -> z3.ModelRef | None:
    """A point where `formula` holds under validity and `assumptions`, near the defaults; None if
    there is none. Raises Unknown if the solver gives up. Runs in a push/pop scope of the world's
    session, which already holds validity. `start`, a point the caller already has (e.g. the
    refuting model), saves the first question if it satisfies them; the answer does not depend
    on it."""
    session = w.session()
    session.set_timeout(timeout_ms)
    solver = session.solver
    floors = _floors(w, solver)
    prefs, implications = _preferences(w)
    if not getattr(w, "_implied", False):  # NOTE: guarded by fresh literals: inert until assumed
        session.add_base(implications)
        w._implied = True
    solver.push()
    # NOTE: try every boolean true first, so each point the solver finds meets as many of the
    # soft literals as it can (one question fewer for each it meets); which literals are kept does
    # not depend on it. The session's default (3, phase caching) is restored after.
    solver.set("phase_selection", 1)
    try:
        solver.add(*assumptions, formula)
        if start is not None and _satisfies(w, start, formula, *assumptions):
            model = start
        elif not _sat(solver):
            return None
        else:
            model = _model(solver)
        kept, model = _keep_greedily(solver, prefs, model)
        kept = {k.get_id() for k in kept}
        names = _Names(w, formula, *assumptions)
        for literal, var, default in _defaults(w):
            if literal not in kept:
                model = _pin(solver, var, default, names, model, floors.get(var.get_id()))
        model = _pin_flags(solver, w, model)
        return _pin_atoms(solver, w, model)
    finally:
        solver.set("phase_selection", 3)
        solver.pop()


def _defaults(w) -> list:
    """(id of the literal `default x`, x, its default) for every setting x in order, per world."""
    if getattr(w, "_default_literals", None) is None:
        w._default_literals = [(z3.Bool(f"default {record.prefix}.{name}").get_id(), var, default)
                               for record in (w.c, w.s) for name, var, default in _fields(record)]
    return w._default_literals


def _assert(solver, *terms) -> None:
    """solver.add of z3 booleans, without its per-term coercion."""
    for t in terms:
        z3.Z3_solver_assert(solver.ctx.ref(), solver.solver, t.as_ast())


def _satisfies(w, model: z3.ModelRef, *formulas) -> bool:
    """Does the point satisfy the formulas and the world's validity (side conditions included)?"""
    return all(_holds(model, f) for f in (*formulas, *w.valid()))


def _holds(model: z3.ModelRef, constraint) -> bool:
    return z3.is_true(model.eval(constraint, model_completion=True))


def _keep_greedily(solver, prefs: dict, model: z3.ModelRef) -> tuple[list, z3.ModelRef]:
    """The literals kept in order, each one satisfiable with those kept before it, and a model of
    them. A literal the last model already satisfies is kept without asking the solver. A kept
    literal is asserted at once (kept literals are never taken back), so each question assumes
    only the literals asked about. After `wait` literals in a row that the model missed were kept
    anyway, the next question first asks for every literal left at once: if they are all
    satisfiable together, the one-by-one pass would keep each of them (only the count of
    questions changes); each time that fails, `wait` grows."""
    kept, todo, streak, wait = [], list(prefs), 0, 1
    point = _Point(model)
    for i, literal in enumerate(todo):
        if point.meets(prefs[literal][1]):  # NOTE: the model satisfies every literal kept so far
            kept.append(literal)
            _assert(solver, literal)
            continue
        if streak >= wait:
            if _sat(solver, *todo[i:]):
                model = _model(solver)
                kept.extend(todo[i:])
                _assert(solver, *todo[i:])
                break
            streak, wait = 0, wait + 1
        if _sat(solver, literal):
            model = _model(solver)
            point = _Point(model)
            kept.append(literal)
            _assert(solver, literal)
            streak += 1
        else:
            streak = 0
    return kept, model


def _fields(record):
    defaults = record.cls()
    return [(name, var, getattr(defaults, name)) for name, var in record.vars.items()]


def _try(solver, constraint) -> z3.ModelRef | None:
    """A model with `constraint` added, if there is one (the constraint is then taken back)."""
    solver.push()
    try:
        solver.add(constraint)
        return _model(solver) if _sat(solver) else None
    finally:
        solver.pop()


def _pin(solver, var, default, names, model: z3.ModelRef, floor: int | None) -> z3.ModelRef:
    """Fix one setting the preferences left open to its first possible value; a model of it.
    Its default was dropped (unsatisfiable with what was kept then, so with more now): not asked
    again; an integer is never asked to go below `floor`, the least value validity allows."""
    if isinstance(default, bool):
        options = [z3.BoolVal(False), z3.BoolVal(True)]
    elif isinstance(default, Enum):
        options = [enum_value(m) for m in type(default)]
    elif isinstance(default, int):
        if floor is not None and floor == default:
            floor += 1
        model = _least(solver, var, model, floor)
        options = [model.eval(var, model_completion=True)]
    else:
        options = [z3.StringVal(n) for n in names.sorted()]
    for value in options:
        if type(default) is not int and _is(value, default):
            continue
        found = model if _holds(model, var == value) else _try(solver, var == value)
        if found is not None:
            solver.add(var == value)
            return found
    return model


def _pin_flags(solver, w, model: z3.ModelRef) -> z3.ModelRef:
    """F and R (the block's fusion and reduce-scatter flags) False where they can be, then a rank
    (the audit's tp_rank) at its least: with every setting pinned, the point, and all read at it
    (counts, F and R), depends on the question alone, not on what the solver was asked before."""
    model = _prefer_false(solver, model, (w.F, w.R))
    rank = getattr(w, "tp_rank", None)
    if rank is not None:
        model = _least(solver, rank, model, 0)
        solver.add(rank == model.eval(rank, model_completion=True))
    return model


def _pin_atoms(solver, w, model: z3.ModelRef) -> z3.ModelRef:
    """Every other boolean constant a question can read (an audit's opaque guard atoms, such as a
    model attribute the guard reads: each made by World.atom) False where it can be, in name
    order: counts read at the point then depend on the question alone. An atom the question does
    not read is free, so fixing it changes nothing else. Integers are left: validity and the
    settings fix them."""
    return _prefer_false(solver, model, [w.atoms[name] for name in sorted(w.atoms)])


def _prefer_false(solver, model: z3.ModelRef, atoms) -> z3.ModelRef:
    """Each boolean in turn fixed False if it can be (with those fixed before), else True; a model
    of them all."""
    for atom in atoms:
        found = model if _holds(model, z3.Not(atom)) else _try(solver, z3.Not(atom))
        solver.add(z3.Not(atom) if found is not None else atom)
        model = found if found is not None else model
    return model


def _is(value, default) -> bool:
    """Is the z3 value `value` the Python default (bool, enum member or string)?"""
    if isinstance(default, bool):
        return z3.is_true(value) == default
    if isinstance(default, Enum):
        return value.eq(enum_value(default))
    return value.as_string() == default


def _least(solver, var, model: z3.ModelRef, floor: int | None = None) -> z3.ModelRef:
    """A model in which an integer setting takes the smallest value it can here (none is below
    `floor`, so that is not asked)."""
    for _ in range(64):  # NOTE: a bound, should a setting ever be unbounded below
        least = model.eval(var, model_completion=True).as_long()
        if floor is not None and least <= floor:
            break
        smaller = _try(solver, var < least)
        if smaller is None:
            break
        model = smaller
    return model


def _floors(w, solver) -> dict:
    """id of each integer setting -> the least value validity allows (made once per world; a
    side condition added later only raises it, so it stays a lower bound)."""
    if getattr(w, "_floors", None) is None:
        w._floors = {}
        # NOTE: where the defaults are valid, validity is satisfiable and no point of the solver's is
        # read: its first question (a model of validity alone, over nonlinear sizes: up to 0.35 s on
        # a fresh session) is not asked
        at_defaults = _defaults_valid(w)
        if not at_defaults and not _sat(solver):
            return w._floors
        model = None if at_defaults else _model(solver)
        for record in (w.c, w.s):
            for _, var, default in _fields(record):
                if type(default) is int:
                    below = _try(solver, var < default) if at_defaults else model
                    # NOTE: nothing below the default, and the default point takes it
                    found = default if below is None else _least_proved(solver, var, below)
                    if found is not None:
                        w._floors[var.get_id()] = found
    return w._floors


def _defaults_valid(w) -> bool:
    """Is the point with every setting at its default valid (validity and the side conditions
    lifted so far, evaluated there)? Then each integer setting takes its default value, and its
    floor is the default wherever nothing below it is possible: one easy question (an unsat
    bound) instead of a descent from an arbitrary point through nonlinear ones."""
    pairs = [(var, to_z3(default)) for record in (w.c, w.s) for _, var, default in _fields(record)]
    return z3.is_true(z3.simplify(z3.substitute(z3.And(True, *w.valid()), *pairs)))


def _least_proved(solver, var, model: z3.ModelRef) -> int | None:
    """The least value `var` takes under what the solver holds, or None if not found in 64 steps."""
    for _ in range(64):
        least = model.eval(var, model_completion=True).as_long()
        smaller = _try(solver, var < least)
        if smaller is None:
            return least
        model = smaller
    return None


class _Names:
    """The string constants the formulas name (alphabetically), found only if a string setting
    needs them."""

    def __init__(self, w, *formulas):
        self.w, self.formulas, self._found = w, formulas, None

    def sorted(self) -> list[str]:
        if self._found is None:
            if getattr(self.w, "_strings", None) is None:
                self.w._strings = {}
            self._found = sorted(set().union(*(_strings_in(f, self.w._strings) for f in self.formulas)))
        return self._found


def _strings_in(e, memo: dict) -> frozenset:
    """The string constants in `e`; `memo` maps a term's id to (the term, its constants) and is
    shared by every formula of a world (lifted formulas share most of their terms)."""
    stack = [(e, None)]
    while stack:
        node, children = stack.pop()
        key = node.get_id()
        if key in memo:
            continue
        if children is None:
            children = node.children()
            stack.append((node, children))
            stack.extend((c, None) for c in children if c.get_id() not in memo)
            continue
        found = {node.as_string()} if z3.is_string_value(node) else set()
        for c in children:
            found |= memo[c.get_id()][1]
        memo[key] = (node, frozenset(found))
    return memo[e.get_id()][1]
