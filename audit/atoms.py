"""Translate one guard expression from SGLang source into z3 over spec.World's symbols.

Atoms map to proto's vocabulary: sizes (self.tp_size as that class assigned it, the parallel-state
getters), F and R (the block's parameters or the communicator's calls), Q and V (the release's
own definitions, lifted from its layers/moe/utils.py), the helper, backend tests, the fields Q
reads. Anything else becomes an *opaque* atom: a fresh z3 Bool named after its source text,
so that a guard that depends on it can never be proved equal to anything.
"""
from __future__ import annotations

import ast

import z3

from sumonce.proto.config import MoeA2ABackend, MoeRunnerBackend, Quantization

from .extract import F_NAME, HELPER_NAME, R_NAME, Binding, call_name

Q_NAME, V_NAME = "should_use_flashinfer_cutlass_moe_fp4_allgather", "should_use_dp_reduce_scatterv"
SIZE_GETTERS = {"get_tensor_model_parallel_world_size": "tp", "get_moe_expert_parallel_world_size": "ep",
                "get_moe_tensor_parallel_world_size": "moe_tp", "get_attention_dp_size": "attn_dp"}
PARALLEL_FIELDS = {"tp_size": "tp", "moe_ep_size": "ep", "moe_tp_size": "moe_tp", "attn_dp_size": "attn_dp"}
_CMP = {ast.Eq: lambda a, b: a == b, ast.NotEq: lambda a, b: a != b, ast.Lt: lambda a, b: a < b,
        ast.LtE: lambda a, b: a <= b, ast.Gt: lambda a, b: a > b, ast.GtE: lambda a, b: a >= b}


class NotUnderstood(Exception):
    def __init__(self, reason: str, line: int):
        super().__init__(f"{reason} (line {line})")
        self.reason, self.line = reason, line


class _Opaque(Exception):
    pass


class Translator:
    """One expression context: the world, the class's size attributes, the method's parameters,
    its local variables, and the release's Q, V and helper."""

    def __init__(self, w, release, sizes=None, flags=None, defaults=None, env=None):
        self.w, self.release = w, release
        self.sizes, self.env = sizes or {}, env or {}
        self.flags = flags or {}
        """A parameter -> "F" or "R", as the callers bind it."""
        self.defaults = defaults or {}
        """A parameter no caller binds -> its constant default."""
        self.kinds: set[str] = set()
        self.opaque: list[str] = []
        self.helper_calls: list[dict] = []
        self._depth = 0
        self.bound: dict[str, z3.ExprRef] = {}
        """Names bound to formulas (a lifted function's own parameters)."""

    # --- sizes -------------------------------------------------------------------------------
    def size(self, name: str):
        c = self.w.c
        self.kinds.add("size")
        if name == "tp":
            return c.tp_size
        if name == "ep":
            return c.ep_size
        return self.w.lifter.attribute(c, "moe_tp_size" if name == "moe_tp" else "attn_dp_size")

    def resolve(self, e):
        """A local name bound once, earlier, to a simple value: that value."""
        if isinstance(e, ast.Name) and e.id in self.env:
            b: Binding = self.env[e.id]
            if b.value is None:
                raise NotUnderstood(f"`{e.id}` is assigned on some paths only", b.line)
            return b.value
        return e

    # --- integers ----------------------------------------------------------------------------
    def integer(self, e):
        e = self.resolve(e)
        if isinstance(e, ast.Constant) and type(e.value) is int:
            return z3.IntVal(e.value)
        if isinstance(e, ast.Attribute) and isinstance(e.value, ast.Name) and e.value.id == "self":
            if self.sizes.get(e.attr):
                return self.size(self.sizes[e.attr])
            if e.attr.endswith("_size"):
                raise NotUnderstood(f"self.{e.attr} is not assigned from a parallel-state getter in this class",
                                    e.lineno)
        if isinstance(e, ast.Attribute) and e.attr in PARALLEL_FIELDS and self._is_parallel(e.value):
            return self.size(PARALLEL_FIELDS[e.attr])
        if call_name(e) in SIZE_GETTERS and not e.args:
            return self.size(SIZE_GETTERS[call_name(e)])
        raise _Opaque

    def _is_parallel(self, e) -> bool:
        e = self.resolve(e)
        return call_name(e) == "get_parallel"

    # --- booleans ----------------------------------------------------------------------------
    def boolean(self, e):
        self._depth += 1
        if self._depth > 50:
            raise NotUnderstood("variables refer to each other too deeply", getattr(e, "lineno", 0))
        try:
            return self._boolean(e)
        finally:
            self._depth -= 1

    def _boolean(self, e):
        if isinstance(e, ast.BoolOp):
            parts = [self.boolean(v) for v in e.values]
            return z3.And(parts) if isinstance(e.op, ast.And) else z3.Or(parts)
        if isinstance(e, ast.UnaryOp) and isinstance(e.op, ast.Not):
            return z3.Not(self.boolean(e.operand))
        if isinstance(e, ast.Constant) and isinstance(e.value, bool):
            return z3.BoolVal(e.value)
        if isinstance(e, ast.Compare):
            return self.compare(e)
        if isinstance(e, ast.Name):
            return self.name(e)
        if isinstance(e, ast.Call):
            return self.call(e)
        if isinstance(e, ast.Attribute):
            return self.attribute(e)
        return self.opaque_atom(e)

    def name(self, e: ast.Name):
        if e.id in self.bound:
            return self.bound[e.id]
        if e.id in self.env:
            return self.boolean(self.resolve(e))
        if e.id in self.flags:
            self.kinds.add(self.flags[e.id])
            return self.w.F if self.flags[e.id] == "F" else self.w.R
        if e.id in self.defaults and isinstance(self.defaults[e.id], bool):
            self.kinds.add("param")
            return z3.BoolVal(self.defaults[e.id])
        if e.id == "DISABLE_FLASHINFER_CUTLASS_MOE_FP4_ALLGATHER":
            return self.field("disable_flashinfer_cutlass_moe_fp4_allgather")
        return self.opaque_atom(e)

    def attribute(self, e: ast.Attribute):
        if e.attr == "disable_fp4_allgather":
            return self.field("disable_flashinfer_cutlass_moe_fp4_allgather")
        return self.opaque_atom(e)

    def field(self, name: str):
        self.kinds.add("config")
        return getattr(self.w.c, name)

    def compare(self, e: ast.Compare):
        if len(e.ops) != 1:
            return self.opaque_atom(e)
        quant = self._quantization(e)
        if quant is not None:
            return quant
        try:
            a, b = self.integer(e.left), self.integer(e.comparators[0])
        except _Opaque:
            return self.opaque_atom(e)
        op = _CMP.get(type(e.ops[0]))
        return op(a, b) if op else self.opaque_atom(e)

    def _quantization(self, e: ast.Compare):
        left, right = ast.unparse(e.left), e.comparators[0]
        if left not in ("MOE_QUANTIZATION", "get_flags().moe.quantization"):
            return None
        if not (isinstance(right, ast.Constant) and isinstance(e.ops[0], (ast.Eq, ast.NotEq))):
            return None
        try:
            q = self.field("quantization") == z3_enum(Quantization(right.value))
        except ValueError:
            q = z3.BoolVal(False)  # a method proto does not know: never the configured one
        return q if isinstance(e.ops[0], ast.Eq) else z3.Not(q)

    def call(self, e: ast.Call):
        name = call_name(e)
        if name == Q_NAME:
            self.kinds.add("Q")
            return self.release.Q
        if name == V_NAME:
            if self.release.V is None:
                raise NotUnderstood(f"calls {V_NAME}, which this release's utils do not define", e.lineno)
            self.kinds.add("V")
            return self.release.V
        if name == HELPER_NAME:
            return self.helper(e)
        if name == "should_fuse_mlp_allreduce_with_next_layer":
            self.kinds.add("F")
            return self.w.F
        if name == "should_use_reduce_scatter":
            self.kinds.add("R")
            return self.w.R
        if name == "is_dp_attention_enabled" and not e.args:
            return self.field("enable_dp_attention")
        backend = self._backend(e)
        return backend if backend is not None else self.opaque_atom(e)

    def _backend(self, e: ast.Call):
        f = e.func
        if not (isinstance(f, ast.Attribute) and f.attr.startswith("is_") and not e.args):
            return None
        getter = call_name(self.resolve(f.value))
        enum = {"get_moe_a2a_backend": MoeA2ABackend, "get_moe_runner_backend": MoeRunnerBackend}.get(getter)
        if enum is None:
            return None
        self.kinds.add("backend")
        try:
            member = enum(f.attr[3:])
        except ValueError:
            if enum is MoeA2ABackend:  # an a2a backend proto does not know: not the standard dispatcher
                return self.w.c.moe_a2a_backend != z3_enum(MoeA2ABackend.NONE)
            self.kinds.discard("backend")
            return None
        field = "moe_a2a_backend" if enum is MoeA2ABackend else "moe_runner_backend"
        return getattr(self.w.c, field) == z3_enum(member)

    def helper(self, e: ast.Call):
        kw = {k.arg: k.value for k in e.keywords}
        if e.args or None in kw or not isinstance(kw.get("is_tp_path"), ast.Constant):
            raise NotUnderstood("helper called without a literal is_tp_path keyword", e.lineno)
        info = {"is_tp_path": kw["is_tp_path"].value, "line": e.lineno,
                "R": ast.unparse(kw[R_NAME]) if R_NAME in kw else None,
                "F": ast.unparse(kw[F_NAME]) if F_NAME in kw else None}
        self.helper_calls.append(info)
        if self.release.helper is None:
            raise NotUnderstood("calls the helper, but the release's helper could not be lifted", e.lineno)
        self.kinds.add("helper")
        R = self.boolean(kw[R_NAME]) if R_NAME in kw else z3.BoolVal(False)
        F = self.boolean(kw[F_NAME]) if F_NAME in kw else z3.BoolVal(False)
        return self.release.helper(z3.BoolVal(info["is_tp_path"]), R, F)

    def opaque_atom(self, e):
        text = " ".join(ast.unparse(e).split())
        self.kinds.add("opaque")
        self.opaque.append(text)
        return z3.Bool(f"opaque: {text}")


def z3_enum(member):
    from sumonce.spec.symbolic import enum_value
    return enum_value(member)
