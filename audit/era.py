"""Which era a tree belongs to, read from its code (never from a version string: a git tree has none).

The shape is read from layers/moe/utils.py (the helper's signature, which terms its body and
post_experts_output_is_complete test, which per-forward flags should_skip_mlp_all_reduce reads,
whether sum_post_experts_output exists) and from two paths (layers/layer_boundary/ and
layers/communicator.py). docs/ERAS.md section 1 lists the shapes; proto.eras names the eras.
A tree of no known shape is a TargetError naming what was found and the shapes allowed.
"""
from __future__ import annotations

import ast
import functools
from dataclasses import dataclass

from sumonce.proto.eras import Era

from .source import BOUNDARY_DIR, COMMUNICATOR, UTILS, Source, TargetError

HELPER = "should_skip_post_experts_all_reduce"
COMPLETE = "post_experts_output_is_complete"
CONTEXT = "should_skip_mlp_all_reduce"
THREE = ("is_tp_path", "should_allreduce_fusion", "use_reduce_scatter")
TERMS = {"is_flashinfer": "flashinfer", "is_pplx": "pplx", "is_flashinfer_megamoe": "megamoe",
         "dwdp_size": "dwdp"}
CTX_FLAGS = ("fuse_mlp_allreduce", "mlp_reduce_scatter")

ALLOWED = ("no helper (0.5.10.post1); the three-keyword helper (is_tp_path, use_reduce_scatter, "
           "should_allreduce_fusion) with no term or the flashinfer term (0.5.11, 0.5.15); the one-keyword "
           "helper (is_tp_path) reading ctx fuse_mlp_allreduce and mlp_reduce_scatter with the terms "
           "flashinfer (0.5.16), + dwdp, pplx (0.5.17), + megamoe (0.5.20), all with no layers/layer_boundary/; "
           "the one-keyword helper with post_experts_output_is_complete and layers/layer_boundary/ (no "
           "layers/communicator.py), ctx with "
           "both flags and no sum_post_experts_output (0.5.21), or ctx with mlp_reduce_scatter only and "
           "sum_post_experts_output (0.5.23)")


class UtilsUnparsable(TargetError):
    """layers/moe/utils.py is there but does not parse: a file not audited (exit 4), not a bad target."""


@dataclass(frozen=True)
class Shape:
    """What was read: enough to name the era and to say why."""
    helper: tuple[str, ...] | None
    """The helper's parameters (sorted), None without a helper."""
    terms: frozenset[str]
    """Completing terms tested by the helper or post_experts_output_is_complete."""
    complete: bool
    ctx: tuple[str, ...]
    """The per-forward flags should_skip_mlp_all_reduce reads."""
    boundary_sums: bool
    """sum_post_experts_output is defined."""
    layer_boundary: bool
    communicator: bool

    def text(self) -> str:
        helper = "no helper" if self.helper is None else \
            "three-keyword helper" if self.helper == THREE else \
            "one-argument helper" if self.helper == ("is_tp_path",) else f"helper({', '.join(self.helper)})"
        parts = [helper]
        if self.terms:
            parts.append(f"terms {', '.join(sorted(self.terms))}")
        if self.complete:
            parts.append(COMPLETE)
        if self.ctx:
            parts.append(f"ctx reads {' and '.join(self.ctx)}" + (" only" if len(self.ctx) == 1 else ""))
        if self.boundary_sums:
            parts.append("layer_boundary sums: sum_post_experts_output")
        elif self.layer_boundary:
            parts.append("layers/layer_boundary/")
        if self.communicator:
            parts.append("layers/communicator.py")
        return ", ".join(parts)


@functools.lru_cache(maxsize=4)
def parse_utils(text: str) -> ast.Module:
    """layers/moe/utils.py's AST, parsed once for the detection and the release's predicates (read only)."""
    return ast.parse(text)


def _attrs(fn: ast.FunctionDef | None) -> set[str]:
    if fn is None:
        return set()
    return {n.attr for n in ast.walk(fn) if isinstance(n, ast.Attribute)}


def read_shape(src: Source) -> Shape:
    text = src.utils()
    if text is None:
        why = src.unread.get(UTILS, "missing")
        raise TargetError(f"{src.label}: no era: {UTILS} is {why}; the shapes allowed: {ALLOWED}")
    try:
        tree = parse_utils(text)
    except (SyntaxError, ValueError, RecursionError, MemoryError) as e:
        raise UtilsUnparsable(f"{UTILS} does not parse ({getattr(e, 'msg', None) or type(e).__name__})") from None
    defs = {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)}
    helper = defs.get(HELPER)
    params = None if helper is None else tuple(sorted(
        a.arg for a in (*helper.args.posonlyargs, *helper.args.args, *helper.args.kwonlyargs)))
    body_attrs = _attrs(helper) | _attrs(defs.get(COMPLETE))
    return Shape(params, frozenset(TERMS[a] for a in body_attrs if a in TERMS), COMPLETE in defs,
                 tuple(f for f in CTX_FLAGS if f in _attrs(defs.get(CONTEXT))), "sum_post_experts_output" in defs,
                 BOUNDARY_DIR in src.present, COMMUNICATOR in src.present)


def _era(s: Shape) -> Era | None:
    both = CTX_FLAGS
    if s.helper is None:
        return Era.V0_5_10 if not (s.complete or s.ctx or s.layer_boundary) else None
    if s.helper == THREE and not s.complete and not s.layer_boundary:
        return {frozenset(): Era.V0_5_11, frozenset({"flashinfer"}): Era.V0_5_15}.get(s.terms)
    if s.helper != ("is_tp_path",):
        return None
    if not s.complete:
        if s.ctx != both or s.layer_boundary:
            return None
        return {frozenset({"flashinfer"}): Era.V0_5_16, frozenset({"flashinfer", "dwdp", "pplx"}): Era.V0_5_17,
                frozenset({"flashinfer", "dwdp", "pplx", "megamoe"}): Era.V0_5_20}.get(s.terms)
    if not s.layer_boundary or s.communicator or s.terms != frozenset(TERMS.values()):
        return None
    if s.ctx == both and not s.boundary_sums:
        return Era.V0_5_21
    if s.ctx == ("mlp_reduce_scatter",) and s.boundary_sums:
        return Era.V0_5_23
    return None


def detect(src: Source) -> tuple[Era, str]:
    """(era, one-line reason) for the tree's code; TargetError (exit 2) for a shape no era has."""
    shape = read_shape(src)
    era = _era(shape)
    if era is None:
        raise TargetError(f"{src.label}: no era has this shape: found {shape.text()}; the shapes allowed: {ALLOWED}")
    return era, f"era {era.value} ({shape.text()})"
