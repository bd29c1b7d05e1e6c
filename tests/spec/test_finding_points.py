"""A 0.5.11 finding's later (model, version) pairs may be refuted at its readable point moved to
the pair's architecture, without a solver question (spec/check.py, docs/PERF.md). Each such point
must be a real failure: plain Python at that configuration says valid, in scope, not exactly once;
and the solver, asked the pair's own question, refutes it too."""
from __future__ import annotations

import dataclasses

from sumonce.proto import semantics, validation
from sumonce.spec import check, claims
from sumonce.spec.properties import Kind, all_properties
from sumonce.spec.solve import Status
from sumonce.spec.world import World

FINDINGS = ("finding:fused-allreduce-sums-ep-group-only", "finding:moe-cp-allgather-under-v")


def test_a_moved_point_that_refutes_a_pair_is_a_real_failure():
    w, hits = World(), 0
    props = [p for p in all_properties(era="0.5.11") if p.kind == Kind.FINDING and p.name in FINDINGS]
    assert len(props) == len(FINDINGS)
    for p in props:
        tier = p.targets[0]
        models = {}
        for m, v in tier:
            once, scope = claims.exactly_once(m, v), (claims.in_scope_inside(m, v, p.claim),)
            if models:
                point = check._refuted_at(w, once, scope, models, m)
                if point is not None:
                    hits += 1
                    c = dataclasses.replace(w.c.concrete(point.model), architecture=point.pairs[0][1].as_string())
                    s = w.s.concrete(point.model)
                    assert not validation.violations(c) and semantics.forward_state_valid(c, s)
                    assert scope[0](c, s, False, False) and not once(c, s, False, False), (p.name, m.name)
                    assert check.refute(w, once, scope, 10_000, plain=False)[0].status == Status.REFUTED
                    continue
            verdict, model = check.refute(w, once, scope, 10_000)
            if verdict.status == Status.REFUTED and not models:
                models[(m, v)] = model
    assert hits >= 10  # NOTE: 15 of their later pairs fail at the moved point (2026-11-29)
