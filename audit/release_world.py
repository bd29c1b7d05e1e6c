"""spec.World for auditing: the lifter also applies guards given as formulas (a site's guard as
read from source), and can read a release without V (before #22642) as V == False.
"""
from __future__ import annotations

import z3

from sumonce.proto import predicates
from sumonce.spec.symbolic import to_z3
from sumonce.spec.world import World


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


class AuditWorld(World):
    """A World whose proto semantics are those of one release: `has_v=False` makes V False."""

    def __init__(self, has_v: bool = True):
        super().__init__(overrides=None if has_v else {predicates.should_use_dp_reduce_scatterv: _no_v})
        self.has_v = has_v

    def proto_helper(self, is_tp_path, R, F) -> z3.BoolRef:
        return self.lift(predicates.should_skip_post_experts_all_reduce, self.c,
                         is_tp_path=is_tp_path, use_reduce_scatter=R, should_allreduce_fusion=F)

    def proto_Q(self):
        return self.lift(predicates.should_use_flashinfer_cutlass_moe_fp4_allgather, self.c)

    def proto_V(self):
        # Without V (has_v=False) the override lifts to the constant False.
        return to_z3(self.lift(predicates.should_use_dp_reduce_scatterv, self.c))
