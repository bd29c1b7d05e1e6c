"""spec.World for auditing: the lifter also applies guards given as formulas (a site's guard as
read from source), and the world's proto is that of one era (audit/era.py picks it from the code):
its helper (proto.decisions.HELPERS), its V (attention TP 1 from 0.5.17: proto.boundary), its
post_experts_output_is_complete; a release without V (before #22642) reads V as False.
"""
from __future__ import annotations

import z3

from sumonce.proto import boundary, decisions, predicates
from sumonce.proto.eras import Era
from sumonce.spec.lift import Lifter
from sumonce.spec.symbolic import to_z3
from sumonce.spec.world import World

V_ATTENTION_TP_1 = (Era.V0_5_17, Era.V0_5_20, Era.V0_5_21, Era.V0_5_23)
"""Eras whose V also needs tp == attn_dp (0.5.17 utils.py:465; proto.boundary.should_use_dp_reduce_scatterv)."""
COMPLETE = {Era.V0_5_21: decisions.complete_0_5_21}
"""Era -> its post_experts_output_is_complete(c, is_tp_path); 0.5.23's is proto.boundary's."""


class FormulaGuard:
    """A site guard read from source: a formula over w.c, w.F and w.R, applied like proto's
    `guard(c, F, R)` when spec lifts proto.semantics."""

    def __init__(self, w: "AuditWorld", formula: z3.BoolRef):
        self.w, self.formula = w, formula

    def __lift__(self, lifter, c, F, R) -> z3.BoolRef:
        return self.apply(F, R)

    def apply(self, F, R) -> z3.BoolRef:
        return z3.substitute(self.formula, (self.w.F, z3.BoolVal(F) if isinstance(F, bool) else F),
                             (self.w.R, z3.BoolVal(R) if isinstance(R, bool) else R))


def _no_v(c) -> bool:
    """A release before #22642: there is no DP reduce-scatterv."""
    return False


class _Lifted:
    """In place of proto's V: another proto function, lifted by a lifter of its own (it may call
    the function it replaces: boundary's V calls predicates')."""

    def __init__(self, fn):
        self.fn, self.lifter = fn, Lifter()

    def __lift__(self, lifter, c):
        v = self.lifter.call(self.fn, c)
        for cond in self.lifter.side_conditions:
            lifter._side_condition(cond)  # NOTE: the world's validity must hold them too
        return v


class AuditWorld(World):
    """A World whose proto semantics are those of one era; `has_v=False` makes V False."""

    def __init__(self, has_v: bool = True, era: Era | None = Era.V0_5_11):
        v = predicates.should_use_dp_reduce_scatterv
        over = {v: _no_v} if not has_v else {v: _Lifted(boundary.should_use_dp_reduce_scatterv)} \
            if era in V_ATTENTION_TP_1 else None
        super().__init__(overrides=over)
        self.has_v, self.era = has_v, era
        self.tp_rank = z3.Int("tp_rank")
        """get_parallel().tp_rank, for should_add_replicated_moe_output."""

    @property
    def reads_context(self) -> bool:
        """The era's helper reads F and R from get_forward(), not from keyword arguments."""
        return self.era in decisions.READS_CONTEXT

    def proto_helper(self, is_tp_path, R, F) -> z3.BoolRef:
        helper = decisions.HELPERS.get(self.era)
        if helper is None:  # before the helper: hand-written guards are compared with #23748's
            return self.lift(predicates.should_skip_post_experts_all_reduce, self.c,
                             is_tp_path=is_tp_path, use_reduce_scatter=R, should_allreduce_fusion=F)
        return to_z3(self.lift(helper, self.c, is_tp_path, R, F))

    def proto_complete(self, is_tp_path) -> z3.BoolRef | None:
        if self.era == Era.V0_5_23:
            return to_z3(self.lift(boundary.post_experts_output_is_complete, self.c, is_tp_path=is_tp_path))
        fn = COMPLETE.get(self.era)
        return None if fn is None else to_z3(self.lift(fn, self.c, is_tp_path))

    def proto_Q(self):
        return self.lift(predicates.should_use_flashinfer_cutlass_moe_fp4_allgather, self.c)

    def proto_V(self):
        # Without V (has_v=False) the override lifts to the constant False.
        return to_z3(self.lift(predicates.should_use_dp_reduce_scatterv, self.c))
