"""What a name or call in SGLang source means in proto's words: the resolver spec's Lifter asks
while it lifts a guard (or a release's predicate) read from source. `and`, `or`, `not`, `if`,
early returns and locals are the Lifter's; this file only says what the atoms are.

Atoms: sizes (self.tp_size as that class assigned it, the parallel-state getters), F and R (the
parameters the callers bind to them, or the communicator's calls), Q and V (the release's own
definitions), the helper, backend tests, the fields Q reads. Anything else is an *opaque* atom: a
fresh z3 Bool named after its source text, so a guard that depends on it is never proved equal to
anything.
"""
from __future__ import annotations

import ast

import z3

from sumonce.proto.config import MoeA2ABackend, MoeRunnerBackend, Quantization
from sumonce.spec.lift import LiftError
from sumonce.spec.symbolic import enum_value

from .extract import F_NAME, HELPER_NAME, R_NAME, Binding, call_name
from .inert import without_logging

Q_NAME, V_NAME = "should_use_flashinfer_cutlass_moe_fp4_allgather", "should_use_dp_reduce_scatterv"
SIZE_GETTERS = {"get_tensor_model_parallel_world_size": "tp", "get_moe_expert_parallel_world_size": "ep",
                "get_moe_tensor_parallel_world_size": "moe_tp", "get_attention_dp_size": "attn_dp",
                "get_attention_tp_size": "attn_tp"}
PARALLEL_FIELDS = {"tp_size": "tp", "moe_ep_size": "ep", "moe_tp_size": "moe_tp", "attn_dp_size": "attn_dp",
                   "attn_tp_size": "attn_tp", "dwdp_size": "dwdp", "moe_dp_size": "moe_dp", "tp_rank": "tp_rank"}
CONTEXT_FLAGS = {"fuse_mlp_allreduce": "F", "mlp_reduce_scatter": "R"}
"""get_forward().<flag>: the per-forward flags the 0.5.16+ helper reads (0.5.16 utils.py:462)."""
GETTERS = ("get_parallel", "get_forward")
BACKEND_GETTERS = {"get_moe_a2a_backend": MoeA2ABackend, "get_moe_runner_backend": MoeRunnerBackend}
_BOOL_OPS = {ast.Is: True, ast.Eq: True, ast.IsNot: False, ast.NotEq: False}
"""`x <op> True` is x for these ops (and `x <op> False` its negation); the rest negated."""
OPAQUE = "opaque: "
"""The name's prefix of an atom proto has no word for (World.atom), the source's text after it."""
_INT_OPS = {ast.Eq: lambda a, b: a == b, ast.NotEq: lambda a, b: a != b, ast.Lt: lambda a, b: a < b,
            ast.LtE: lambda a, b: a <= b, ast.Gt: lambda a, b: a > b, ast.GtE: lambda a, b: a >= b}


class NotUnderstood(Exception):
    def __init__(self, reason: str, line: int):
        super().__init__(f"{reason} (line {line})")
        self.reason, self.line = reason, line


class _Getter:
    """The value of get_parallel(), get_moe_a2a_backend(), ...: only its fields and tests mean anything."""

    def __init__(self, name: str):
        self.name = name


class Translator:
    """One guard's atoms: the world, the class's size attributes, the parameters the callers bind
    to F and R (others: their constant default), the method's locals as extract.py read them,
    and the release's Q, V and helper."""

    def __init__(self, w, release, sizes=None, flags=None, defaults=None, env=None, callables=None):
        self.w, self.release = w, release
        self.callables = callables or {}
        """`self.name` / `name` -> a FunctionDef of the same file whose result a guard may use."""
        self.sizes, self.env = sizes or {}, env or {}
        self.flags, self.defaults = flags or {}, defaults or {}
        self.kinds: set[str] = set()
        self.opaque: list[str] = []
        self.helper_calls: list[dict] = []
        self.uninlined: dict[str, str] = {}
        """A call of the file's own function read as an opaque atom -> why it was not lifted."""
        self._depth = 0

    def boolean(self, e: ast.expr, scope: dict | None = None):
        """The formula of e, lifted through spec's Lifter with this translator as its resolver."""
        try:
            v = self.w.lifter.run_source(e, scope or {}, self)
        except LiftError as err:
            raise NotUnderstood(str(err), getattr(e, "lineno", 0)) from None
        if isinstance(v, bool):
            return z3.BoolVal(v)
        if not isinstance(v, z3.BoolRef):
            raise NotUnderstood(f"`{ast.unparse(e)}` is not a condition", getattr(e, "lineno", 0))
        return v

    def __call__(self, e, env, fr):
        """The resolver: e's value, or NotImplemented to let the Lifter lift it."""
        if isinstance(e, ast.Name):
            return NotImplemented if e.id in env else self.name(e, env, fr)
        if isinstance(e, ast.Compare):
            return self.compare(e, env, fr)
        if isinstance(e, ast.Call):
            return self.call(e, env, fr)
        if isinstance(e, ast.Attribute):
            return self.attribute(e, env, fr)
        if isinstance(e, (ast.BoolOp, ast.UnaryOp, ast.Constant, ast.IfExp)):
            return NotImplemented
        if isinstance(e, ast.NamedExpr):  # `(skip := helper(...))`: the value it names
            return self.w.lifter.eval(e.value, env, fr)
        return self.opaque_atom(e)

    # --- names -------------------------------------------------------------------------------
    def name(self, e: ast.Name, env, fr):
        if e.id in self.env:
            b: Binding = self.env[e.id]
            if b.value is None:
                raise NotUnderstood(f"`{e.id}` is assigned on some paths only", b.line)
            self._depth += 1
            if self._depth > 50:
                raise NotUnderstood("variables refer to each other too deeply", e.lineno)
            try:
                return self.w.lifter.eval(b.value, env, fr)
            finally:
                self._depth -= 1
        if e.id in self.flags:
            self.kinds.add(self.flags[e.id])
            return self.w.F if self.flags[e.id] == "F" else self.w.R
        if e.id in self.defaults and isinstance(self.defaults[e.id], bool):
            self.kinds.add("param")
            return z3.BoolVal(self.defaults[e.id])
        if e.id == "_is_cpu":  # SGLang's `_is_cpu = is_cpu()` at module level
            return self.cpu()
        if e.id == "DISABLE_FLASHINFER_CUTLASS_MOE_FP4_ALLGATHER":
            return self.field("disable_flashinfer_cutlass_moe_fp4_allgather")
        return self.opaque_atom(e)

    def attribute(self, e: ast.Attribute, env, fr):
        if e.attr in CONTEXT_FLAGS:
            base = self._getter(e.value, env, fr)
            if base is not None and base.name == "get_forward":
                flag = CONTEXT_FLAGS[e.attr]
                self.kinds.add(flag)
                return self.w.F if flag == "F" else self.w.R
        if e.attr == "disable_fp4_allgather":
            return self.field("disable_flashinfer_cutlass_moe_fp4_allgather")
        return self.opaque_atom(e)  # a size used as a truth value, or what proto has no word for

    def cpu(self):
        """is_cpu(): never, in proto's configurations (every one runs on a GPU: proto.config.GpuArch)."""
        self.kinds.add("config")
        return z3.BoolVal(False)

    def field(self, name: str):
        self.kinds.add("config")
        return getattr(self.w.c, name)

    # --- sizes -------------------------------------------------------------------------------
    def size(self, name: str):
        self.kinds.add("size")
        c = self.w.c
        if name in ("tp", "ep"):
            return c.tp_size if name == "tp" else c.ep_size
        if name == "tp_rank":
            return self.w.tp_rank
        if name in ("dwdp", "moe_dp"):
            return getattr(c, f"{name}_size")
        return self.w.lifter.attribute(c, {"moe_tp": "moe_tp_size", "attn_tp": "attn_tp_size"}.get(name, "attn_dp_size"))

    def _size(self, e, env, fr):
        """A size atom's z3 integer, or None."""
        if isinstance(e, ast.Attribute) and isinstance(e.value, ast.Name) and e.value.id == "self":
            if self.sizes.get(e.attr):
                return self.size(self.sizes[e.attr])
            if e.attr.endswith("_size"):
                raise NotUnderstood(f"self.{e.attr} is not assigned from a parallel-state getter in this class",
                                    e.lineno)
        if isinstance(e, ast.Attribute) and e.attr in PARALLEL_FIELDS:
            base = self._getter(e.value, env, fr)
            if base is not None and base.name == "get_parallel":
                return self.size(PARALLEL_FIELDS[e.attr])
        if call_name(e) in SIZE_GETTERS and not e.args:
            return self.size(SIZE_GETTERS[call_name(e)])
        return None

    def _integer(self, e, env, fr):
        if isinstance(e, ast.Constant) and type(e.value) is int:
            return z3.IntVal(e.value)
        if isinstance(e, ast.Name) and isinstance(env.get(e.id), z3.ArithRef):  # a parameter bound to a size
            return env[e.id]
        if isinstance(e, ast.Name) and e.id in self.env and self.env[e.id].value is not None:
            return self._integer(self.env[e.id].value, env, fr)
        return self._size(e, env, fr)

    def compare(self, e: ast.Compare, env, fr):
        if len(e.ops) != 1:
            return self.opaque_atom(e)
        quant = self._quantization(e)
        if quant is not None:
            return quant
        truth = self._against_bool(e, env, fr)
        if truth is not None:
            return truth
        a, b = self._integer(e.left, env, fr), self._integer(e.comparators[0], env, fr)
        if a is None or b is None or type(e.ops[0]) not in _INT_OPS:
            return self.opaque_atom(e)
        return _INT_OPS[type(e.ops[0])](a, b)

    def _against_bool(self, e: ast.Compare, env, fr):
        """`x is False`, `x == True`, `x is not True`, ...: x itself or its negation, where x lifts to
        a condition (the helper's answer, F, R: bools); None otherwise."""
        right, op = e.comparators[0], type(e.ops[0])
        if not (isinstance(right, ast.Constant) and type(right.value) is bool and op in _BOOL_OPS):
            return None
        try:
            x = self.w.lifter.eval(e.left, env, fr)
        except LiftError:
            return None
        x = z3.BoolVal(x) if isinstance(x, bool) else x
        if not isinstance(x, z3.BoolRef) or x.decl().name().startswith(OPAQUE):
            return None
        return x if right.value == _BOOL_OPS[op] else z3.Not(x)

    def _quantization(self, e: ast.Compare):
        left, right = ast.unparse(e.left), e.comparators[0]
        if left not in ("MOE_QUANTIZATION", "get_flags().moe.quantization"):
            return None
        if not (isinstance(right, ast.Constant) and isinstance(e.ops[0], (ast.Eq, ast.NotEq))):
            return None
        try:
            q = self.field("quantization") == enum_value(Quantization(right.value))
        except ValueError:
            q = z3.BoolVal(False)  # a method proto does not know: never the configured one
        return q if isinstance(e.ops[0], ast.Eq) else z3.Not(q)

    # --- calls -------------------------------------------------------------------------------
    def call(self, e: ast.Call, env, fr):
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
            return self.helper(e, env, fr)
        known = self._helper_term(name, e, env, fr)
        if known is not None:
            return known
        if name in ("should_fuse_mlp_allreduce_with_next_layer", "should_use_reduce_scatter"):
            flag = "F" if name.startswith("should_fuse") else "R"
            self.kinds.add(flag)
            return self.w.F if flag == "F" else self.w.R
        if name == "is_cpu" and isinstance(e.func, ast.Name) and not e.args:
            return self.cpu()
        if name == "is_dp_attention_enabled" and not e.args:
            return self.field("enable_dp_attention")
        if name in BACKEND_GETTERS or name in GETTERS:
            return _Getter(name)
        size = self._size(e, env, fr)
        if size is not None:
            return size
        backend = self._backend(e, env, fr)
        if backend is not None:
            return backend
        fn = self.callables.get(ast.unparse(e.func))
        inlined = self._inline(fn, e, env, fr) if fn is not None else None
        return inlined if inlined is not None else self.opaque_atom(e)

    def _inline(self, fn: ast.FunctionDef, e: ast.Call, env, fr):
        """The callee's return value, lifted with its parameters bound to the call's arguments;
        None where it cannot be (its body is more than conditions and returns)."""
        params = [a.arg for a in (*fn.args.posonlyargs, *fn.args.args)]
        params = params[1:] if isinstance(e.func, ast.Attribute) else params
        if any(isinstance(a, ast.Starred) for a in e.args) or len(e.args) > len(params) or self._depth > 8:
            return None
        a = fn.args
        positional = (*a.posonlyargs, *a.args)
        pairs = [*zip(positional[len(positional) - len(a.defaults):], a.defaults), *zip(a.kwonlyargs, a.kw_defaults)]
        scope = {x.arg: d.value for x, d in pairs if isinstance(d, ast.Constant)}
        scope |= {p: self._argument(a, env, fr) for p, a in zip(params, e.args)}
        scope |= {k.arg: self._argument(k.value, env, fr) for k in e.keywords if k.arg}
        self._depth += 1
        try:
            v = self.w.lifter.run_source(without_logging(fn.body), scope, self, fn.name)
        except (LiftError, NotUnderstood) as err:
            self.uninlined[" ".join(ast.unparse(e).split())] = f"{fn.name} (line {fn.lineno}) could not be lifted: {err}"
            return None
        finally:
            self._depth -= 1
        return z3.BoolVal(v) if isinstance(v, bool) else v if isinstance(v, z3.BoolRef) else None

    def _argument(self, e, env, fr):
        """What a call passes for one parameter: a size as its integer (`self._reduces(self.ep_size)`),
        else what the Lifter makes of it."""
        try:
            size = self._integer(e, env, fr) if not isinstance(e, ast.Constant) else None
        except NotUnderstood:  # NOTE: a size attribute no getter assigns is read where it is compared
            size = None
        return size if size is not None else self.w.lifter.eval(e, env, fr)

    def _getter(self, e, env, fr) -> _Getter | None:
        """get_parallel() / get_moe_*_backend(), called here or held in a local."""
        if isinstance(e, ast.Name):
            v = env.get(e.id)
            if v is None and e.id in self.env and self.env[e.id].value is not None:
                return self._getter(self.env[e.id].value, env, fr)
            return v if isinstance(v, _Getter) else None
        name = call_name(e)
        if isinstance(e, ast.Call) and isinstance(e.func, ast.Name) and (name in BACKEND_GETTERS or name in GETTERS):
            return _Getter(name)
        return None

    def _backend(self, e: ast.Call, env, fr):
        f = e.func
        if not (isinstance(f, ast.Attribute) and f.attr.startswith("is_") and not e.args):
            return None
        getter = self._getter(f.value, env, fr)
        enum = BACKEND_GETTERS.get(getter.name) if getter is not None else None
        if enum is None:
            return None
        self.kinds.add("backend")
        field = "moe_a2a_backend" if enum is MoeA2ABackend else "moe_runner_backend"
        try:
            return getattr(self.w.c, field) == enum_value(enum(f.attr[3:]))
        except ValueError:
            if enum is MoeA2ABackend:  # an a2a backend proto does not know: never the standard dispatcher
                # NOTE: the atom matters only off the standard dispatcher: a backend test, not an opaque one
                return z3.And(self.w.c.moe_a2a_backend != enum_value(MoeA2ABackend.NONE), self.w.atom(OPAQUE + _text(e)))
            self.kinds.discard("backend")
            return None

    def helper(self, e: ast.Call, env, fr):
        kw = {k.arg: k.value for k in e.keywords}
        names = self.release.helper_params
        if None in kw or len(e.args) > len(names) or any(isinstance(a, ast.Starred) for a in e.args):
            raise NotUnderstood("helper called with *args, **kwargs or more positional arguments than it takes",
                                e.lineno)
        kw |= dict(zip(names, e.args))  # positional arguments bound as the release's helper declares them
        is_tp_path = self._literal(kw.get("is_tp_path"), env, fr)
        if not isinstance(is_tp_path, bool):
            raise NotUnderstood("helper called without a literal is_tp_path (nor a name bound to one)", e.lineno)
        info = {"is_tp_path": is_tp_path, "line": e.lineno,
                "R": ast.unparse(kw[R_NAME]) if R_NAME in kw else None,
                "F": ast.unparse(kw[F_NAME]) if F_NAME in kw else None}
        self.helper_calls.append(info)
        if self.release.helper is None:
            raise NotUnderstood("calls the helper, but the release's helper could not be lifted", e.lineno)
        self.kinds.add("helper")
        if self.release.form == "one-argument context form":  # F and R: the per-forward context's
            return self.release.helper(z3.BoolVal(info["is_tp_path"]), self.w.R, self.w.F)
        R = self._flag(kw.get(R_NAME), env, fr)
        F = self._flag(kw.get(F_NAME), env, fr)
        return self.release.helper(z3.BoolVal(info["is_tp_path"]), R, F)

    def _literal(self, e, env, fr):
        """A literal's value, or a name's the Lifter binds to a literal (a parameter of a guard
        method the caller passes one: `self._reduces(self.ep_size, False)`); else None."""
        if isinstance(e, ast.Constant):
            return e.value
        if isinstance(e, ast.Name) and e.id in env:
            v = env[e.id]
            if isinstance(v, z3.BoolRef) and (z3.is_true(v) or z3.is_false(v)):
                return z3.is_true(v)
            return v if isinstance(v, bool) else None
        return None

    def _helper_term(self, name, e: ast.Call, env, fr):
        """The helper's terms called by a model's guard, as the release defines them:
        should_skip_mlp_all_reduce() and post_experts_output_is_complete(is_tp_path=<literal>)."""
        skip_mlp, complete = getattr(self.release, "skip_mlp", None), getattr(self.release, "complete", None)
        if name == "should_skip_mlp_all_reduce" and not e.args and not e.keywords and skip_mlp is not None:
            self.kinds.add("R")
            return skip_mlp
        if name == "post_experts_output_is_complete" and complete is not None and not e.args:
            kw = {k.arg: k.value for k in e.keywords}
            is_tp_path = self._literal(kw.get("is_tp_path"), env, fr)
            if set(kw) == {"is_tp_path"} and isinstance(is_tp_path, bool):
                self.kinds.add("helper")
                return complete(z3.BoolVal(is_tp_path))
        return None

    def _flag(self, e, env, fr):
        if e is None:
            return z3.BoolVal(False)
        v = self.w.lifter.eval(e, env, fr)
        return z3.BoolVal(v) if isinstance(v, bool) else v

    def opaque_atom(self, e):
        text = _text(e)
        self.kinds.add("opaque")
        self.opaque.append(text)
        return self.w.atom(OPAQUE + text)


def _text(e: ast.expr) -> str:
    """e's source text on one line (an opaque atom's name and how the report quotes it)."""
    return " ".join(ast.unparse(e).split())
