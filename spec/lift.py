"""Lift proto's Python functions into z3 by running them on symbolic values.

The lifter is a small interpreter over the function's own AST: concrete values keep Python's
meaning (a loop over a model's sites unrolls, a call with concrete arguments simply runs), and
symbolic ones (z3 terms, SymRecords) become formulas. A branch on a symbolic condition runs both
arms and merges what they bind with z3.If. Whatever falls outside the supported subset raises
LiftError naming the function, file and line: never a silently wrong formula.

Division and modulo add their side condition (divisor > 0, where z3's integer division agrees with
Python's floor division) to `side_conditions`, here and nowhere else.
"""
from __future__ import annotations

import ast
import builtins
import functools
import inspect
import linecache
import operator
import textwrap
import types
from dataclasses import fields, is_dataclass
from typing import Any

import z3

from .symbolic import SymRecord, to_z3


class LiftError(Exception):
    """proto code that the lifter cannot turn into a formula."""


class _Bind:
    """A pseudo-statement: bind a loop target to one item (for-loops unroll into these)."""
    def __init__(self, target: ast.AST, value: Any):
        self.target, self.value, self.lineno = target, value, getattr(target, "lineno", 0)


def is_sym(v: Any) -> bool:
    return isinstance(v, (z3.ExprRef, SymRecord))


def _contains_return(stmts) -> bool:
    return any(isinstance(n, ast.Return) for s in stmts for n in ast.walk(s))


_ARITH = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
          ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod}
_CMP = {ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt, ast.LtE: operator.le,
        ast.Gt: operator.gt, ast.GtE: operator.ge}


def _connect(mk, terms: list) -> z3.BoolRef:
    """z3.And / z3.Or of booleans already z3 terms of one context (the same term z3.And makes,
    without its per-argument coercion, which costs more than the term)."""
    ctx = terms[0].ctx
    array = (z3.Ast * len(terms))(*(t.as_ast() for t in terms))
    return z3.BoolRef(mk(ctx.ref(), len(terms), array), ctx)


# The z3 term each comparison of two terms of one sort makes (what z3's operators make, without
# their coercion): == and != on any sort, the orderings on integers.
_MK_CMP = {ast.Eq: z3.Z3_mk_eq, ast.NotEq: z3.Z3_mk_distinct, ast.Lt: z3.Z3_mk_lt, ast.LtE: z3.Z3_mk_le,
           ast.Gt: z3.Z3_mk_gt, ast.GtE: z3.Z3_mk_ge}


class _Frame:
    resolver = None

    def __init__(self, fn, filename: str, line0: int, scope: dict):
        self.fn, self.filename, self.line0, self.scope = fn, filename, line0, scope

    def where(self, node) -> str:
        return f"{self.fn.__module__}.{self.fn.__qualname__} ({self.filename}:{self.line0 + getattr(node, 'lineno', 1)})"


@functools.lru_cache(maxsize=None)
def _signature(fn) -> inspect.Signature:
    """inspect.signature, once per function (it is slow, and the lifter asks it on every call)."""
    return inspect.signature(fn)


_PLAIN = inspect.CO_VARARGS | inspect.CO_VARKEYWORDS


def _bind(fn, args, kwargs) -> dict:
    """The call's arguments by parameter name: a plain call (every positional parameter given
    positionally, nothing else) directly; any other through inspect's binding."""
    code = fn.__code__
    if not kwargs and not code.co_flags & _PLAIN and not code.co_kwonlyargcount and len(args) == code.co_argcount:
        return dict(zip(code.co_varnames, args))
    try:
        bound = _signature(fn).bind(*args, **kwargs)
    except TypeError as e:
        raise LiftError(f"{fn.__qualname__}: {e}") from None
    bound.apply_defaults()
    return dict(bound.arguments)


@functools.lru_cache(maxsize=None)
def _module_defs(filename: str) -> dict:
    """(first line, name) -> the def's AST node, for every def in a source file (nested ones
    too; the first line is the first decorator's, as in code.co_firstlineno); {} if unreadable."""
    lines = linecache.getlines(filename)
    if not lines:
        return {}
    try:
        tree = ast.parse("".join(lines), filename)
    except SyntaxError:
        return {}
    out, todo = {}, list(tree.body)
    while todo:  # NOTE: statements only (a def is a statement): expressions are not walked
        node = todo.pop()
        if isinstance(node, ast.FunctionDef):
            first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
            out[(first, node.name)] = node
        for name in ("body", "orelse", "finalbody", "handlers", "cases"):
            todo.extend(x for x in getattr(node, name, ()) if isinstance(x, ast.AST))
    return out


class _SourceFrame:
    """A frame for code read as text (not a Python function): what the lifter does not know is
    the resolver's."""

    def __init__(self, filename: str, resolver):
        self.filename, self.resolver = filename, resolver

    def where(self, node) -> str:
        return f"{self.filename}:{getattr(node, 'lineno', 0)}"


class Lifter:
    """`overrides` maps a function to what to call in its place (a release without V maps V to a
    constant); an object with a `__lift__(lifter, *args)` method is applied by calling it (a guard
    read from source, already a formula)."""

    def __init__(self, overrides: dict | None = None):
        self.overrides = dict(overrides or {})
        self.side_conditions: list[z3.BoolRef] = []
        self._side_ids: set[int] = set()
        self._parsed: dict[Any, tuple] = {}
        self._memo: dict[tuple, Any] = {}
        self._has_return: dict[int, tuple] = {}
        self._has_break: dict[int, tuple] = {}

    # --- calls ------------------------------------------------------------------------------
    def call(self, fn, *args, **kwargs):
        """fn(*args, **kwargs), lifted where an argument is symbolic."""
        if self.overrides and getattr(fn, "__hash__", None) and fn in self.overrides:
            fn = self.overrides[fn]
        hook = getattr(fn, "__lift__", None)
        if hook is not None:
            return hook(self, *args, **kwargs)
        if isinstance(fn, type):
            return fn(*args, **kwargs)  # constructors only store their arguments
        symbolic = any(is_sym(a) for a in (*args, *kwargs.values()))
        if not symbolic:
            return fn(*args, **kwargs)
        if isinstance(fn, types.MethodType):
            return self.call(fn.__func__, fn.__self__, *args, **kwargs)
        if not isinstance(fn, types.FunctionType):
            raise LiftError(f"cannot lift a call of {getattr(fn, '__name__', fn)!r} on symbolic values")
        key = self._memo_key(fn, args, kwargs)
        if key is not None and key in self._memo:
            return self._memo[key][1]
        result = self._lift(fn, args, kwargs)
        if key is not None:
            # NOTE: the arguments are kept with the result: the key holds z3 ids and object ids,
            # which a freed term or record would hand on to a new one
            self._memo[key] = ((fn, args, kwargs), result)
        return result

    @staticmethod
    def _memo_key(fn, args, kwargs):
        def part(v):
            if isinstance(v, SymRecord):
                return ("rec", id(v))
            if isinstance(v, z3.ExprRef):
                return ("z3", v.get_id())
            try:
                hash(v)
            except TypeError:
                raise LookupError
            return ("py", type(v), v)
        try:
            # NOTE: closures made by one factory from equal values are the same function: key on
            # the code and what it closes over, so a claim rebuilt for another property is reused.
            cells = tuple(part(c.cell_contents) for c in fn.__closure__ or ())
            return (fn.__code__, cells, fn.__defaults__, tuple(part(a) for a in args),
                    tuple(sorted((k, part(v)) for k, v in kwargs.items())))
        except (LookupError, ValueError):
            return None

    def _parse(self, fn):
        """The function's AST; closures made by one factory share their code, so key on it. Read
        from its module's AST (parsed once per process) where the def is found there, its line
        numbers then already the file's; else from inspect's source of the function alone."""
        key = fn.__code__
        if key not in self._parsed:
            node = _module_defs(inspect.getsourcefile(fn) or "").get((key.co_firstlineno, key.co_name))
            if node is not None:
                self._parsed[key] = (node, inspect.getsourcefile(fn), 0)
                return self._parsed[key]
            try:
                source = textwrap.dedent(inspect.getsource(fn))
            except (OSError, TypeError) as e:
                raise LiftError(f"no source for {fn.__qualname__}: {e}") from None
            node = ast.parse(source).body[0]
            if not isinstance(node, ast.FunctionDef):
                raise LiftError(f"{fn.__qualname__}: only def functions can be lifted")
            self._parsed[key] = (node, inspect.getsourcefile(fn), fn.__code__.co_firstlineno - 1)
        return self._parsed[key]

    def _lift(self, fn, args, kwargs):
        node, filename, line0 = self._parse(fn)
        frame = _Frame(fn, filename, line0, _bind(fn, args, kwargs))
        kind, value = self._run(list(node.body), dict(frame.scope), frame)
        if kind != "ret":
            raise LiftError(f"{frame.where(node)}: a path ends without return")
        return value

    def run_source(self, code, scope: dict, resolver, filename: str = "<source>"):
        """Lift code read from source text: a function body (its return value) or one expression.
        Before lifting a node, `resolver(node, env, frame)` may give its value (NotImplemented: lift
        it as usual); a name bound nowhere is always the resolver's (e.g. an opaque atom)."""
        fr = _SourceFrame(filename, resolver)
        if isinstance(code, ast.expr):
            return self.eval(code, dict(scope), fr)
        kind, value = self._run(list(code), dict(scope), fr)
        if kind != "ret":
            raise LiftError(f"{filename}: a path ends without return")
        return value

    # --- statements -------------------------------------------------------------------------
    def _run(self, stmts: list, env: dict, fr: _Frame):
        """Run stmts (the whole rest of the body); ('ret', value) or ('next', env)."""
        i = 0
        while i < len(stmts):
            st = stmts[i]
            if isinstance(st, _Bind):
                self._assign(st.target, st.value, env, fr)
            elif isinstance(st, ast.Expr) and isinstance(st.value, ast.Constant) or isinstance(st, ast.Pass):
                pass
            elif isinstance(st, ast.Return):
                return "ret", (None if st.value is None else self.eval(st.value, env, fr))
            elif isinstance(st, ast.Assign) and len(st.targets) == 1:
                self._assign(st.targets[0], self.eval(st.value, env, fr), env, fr)
            elif isinstance(st, ast.AugAssign) and isinstance(st.target, ast.Name):
                env[st.target.id] = self._binop(st.op, self._name(st.target, env, fr), self.eval(st.value, env, fr), st, fr)
            elif isinstance(st, ast.For) and not st.orelse:
                items = self.eval(st.iter, env, fr)
                if is_sym(items) or not isinstance(items, (tuple, list)):
                    raise LiftError(f"{fr.where(st)}: a for loop must run over a concrete tuple or list")
                if self._breaks(st):
                    raise LiftError(f"{fr.where(st)}: break/continue cannot be lifted")
                unrolled = [x for item in items for x in (_Bind(st.target, item), *st.body)]
                stmts, i = unrolled + stmts[i + 1:], 0
                continue
            elif isinstance(st, ast.If):
                return self._if(st, stmts[i + 1:], env, fr)
            else:
                raise LiftError(f"{fr.where(st)}: cannot lift a {type(st).__name__} statement")
            i += 1
        return "next", env

    def _if(self, st: ast.If, rest: list, env: dict, fr: _Frame):
        cond = self._truth(self.eval(st.test, env, fr), st, fr)
        if not is_sym(cond):
            return self._run((st.body if cond else st.orelse) + rest, env, fr)
        if not self._returns(st):
            _, env_a = self._run(list(st.body), dict(env), fr)
            _, env_b = self._run(list(st.orelse), dict(env), fr)
            merged = {k: self.merge(cond, env_a[k], env_b[k], st, fr) for k in env_a if k in env_b}
            return self._run(rest, merged, fr)
        a = self._run(st.body + rest, dict(env), fr)
        b = self._run(st.orelse + rest, dict(env), fr)
        if a[0] != "ret" or b[0] != "ret":
            raise LiftError(f"{fr.where(st)}: a branch on a symbolic condition must return on both paths")
        return "ret", self.merge(cond, a[1], b[1], st, fr)

    def _returns(self, st: ast.If) -> bool:
        """Does either arm of `st` contain a return (asked once per node; the node is kept)?"""
        hit = self._has_return.get(id(st))
        if hit is None or hit[0] is not st:
            hit = self._has_return[id(st)] = st, _contains_return(st.body) or _contains_return(st.orelse)
        return hit[1]

    def _breaks(self, st: ast.For) -> bool:
        """Does the loop's body break or continue (asked once per node; the node is kept)?"""
        hit = self._has_break.get(id(st))
        if hit is None or hit[0] is not st:
            hit = self._has_break[id(st)] = st, any(isinstance(n, (ast.Break, ast.Continue))
                                                     for s in st.body for n in ast.walk(s))
        return hit[1]

    def _assign(self, target, value, env, fr):
        if isinstance(target, ast.Name):
            env[target.id] = value
        elif isinstance(target, ast.Tuple) and isinstance(value, tuple) and len(value) == len(target.elts):
            for t, v in zip(target.elts, value):
                self._assign(t, v, env, fr)
        else:
            raise LiftError(f"{fr.where(target)}: cannot lift this assignment target")

    def merge(self, cond, a, b, node=None, fr=None):
        """The value that is `a` where cond holds and `b` elsewhere."""
        if a is b or (not is_sym(a) and not is_sym(b) and type(a) is type(b) and a == b):
            return a
        if is_dataclass(a) and not isinstance(a, type) and type(a) is type(b):
            return type(a)(**{f.name: self.merge(cond, getattr(a, f.name), getattr(b, f.name), node, fr)
                              for f in fields(a)})
        try:
            za, zb = to_z3(a), to_z3(b)
        except TypeError:
            za = zb = None
        if za is None or za.sort() != zb.sort():
            where = fr.where(node) if fr else "merge"
            raise LiftError(f"{where}: the two branches give values of different kinds ({a!r}, {b!r})")
        return z3.If(cond, za, zb)

    # --- expressions ------------------------------------------------------------------------
    def eval(self, e, env, fr):
        if fr.resolver is not None:
            value = fr.resolver(e, env, fr)
            if value is not NotImplemented:
                return value
        method = getattr(self, "_e_" + type(e).__name__, None)
        if method is None:
            raise LiftError(f"{fr.where(e)}: cannot lift a {type(e).__name__} expression")
        return method(e, env, fr)

    def _e_Constant(self, e, env, fr):
        return e.value

    def _e_Name(self, e, env, fr):
        return self._name(e, env, fr)

    def _name(self, e, env, fr):
        if e.id in env:
            return env[e.id]
        if fr.resolver is not None:
            raise LiftError(f"{fr.where(e)}: unknown name {e.id!r}")
        if e.id in fr.fn.__globals__:
            return fr.fn.__globals__[e.id]
        code, cells = fr.fn.__code__, fr.fn.__closure__ or ()
        if e.id in code.co_freevars:
            return cells[code.co_freevars.index(e.id)].cell_contents
        if hasattr(builtins, e.id):
            return getattr(builtins, e.id)
        raise LiftError(f"{fr.where(e)}: unknown name {e.id!r}")

    def _e_Attribute(self, e, env, fr):
        base = self.eval(e.value, env, fr)
        return self.attribute(base, e.attr, e, fr)

    def attribute(self, base, attr, node=None, fr=None):
        if isinstance(base, SymRecord):
            if attr in base.vars:
                return base.vars[attr]
            prop = getattr(base.cls, attr, None)
            if isinstance(prop, property):
                return self.call(prop.fget, base)
            where = fr.where(node) if fr else attr
            raise LiftError(f"{where}: {base.cls.__name__} has no field or property {attr!r}")
        if isinstance(base, z3.ExprRef):
            raise LiftError(f"{fr.where(node)}: attribute {attr!r} of a z3 term")
        return getattr(base, attr)

    def _e_Tuple(self, e, env, fr):
        return tuple(self.eval(x, env, fr) for x in e.elts)

    _e_List = _e_Tuple

    def _e_Subscript(self, e, env, fr):
        base, index = self.eval(e.value, env, fr), self.eval(e.slice, env, fr)
        if is_sym(base) or is_sym(index):
            raise LiftError(f"{fr.where(e)}: subscript of a symbolic value")
        return base[index]

    def _e_Call(self, e, env, fr):
        fn = self.eval(e.func, env, fr)
        if any(isinstance(a, ast.Starred) for a in e.args) or any(k.arg is None for k in e.keywords):
            raise LiftError(f"{fr.where(e)}: *args/**kwargs cannot be lifted")
        args = [self.eval(a, env, fr) for a in e.args]
        kwargs = {k.arg: self.eval(k.value, env, fr) for k in e.keywords}
        try:
            return self.call(fn, *args, **kwargs)
        except LiftError as err:
            if str(err).startswith("cannot lift a call"):
                raise LiftError(f"{fr.where(e)}: {err}") from None
            raise

    def _e_IfExp(self, e, env, fr):
        cond = self._truth(self.eval(e.test, env, fr), e, fr)
        if not is_sym(cond):
            return self.eval(e.body if cond else e.orelse, env, fr)
        return self.merge(cond, self.eval(e.body, env, fr), self.eval(e.orelse, env, fr), e, fr)

    def _truth(self, v, node, fr):
        if isinstance(v, z3.BoolRef):
            return v
        if is_sym(v):
            raise LiftError(f"{fr.where(node)}: a non-boolean symbolic value used as a condition")
        return bool(v)

    def _e_BoolOp(self, e, env, fr):
        is_and = isinstance(e.op, ast.And)
        terms, last = [], None
        for operand in e.values:
            v = self.eval(operand, env, fr)
            if is_sym(v):
                terms.append(self._truth(v, operand, fr))
                continue
            if not isinstance(v, bool):
                raise LiftError(f"{fr.where(operand)}: and/or over a non-boolean {v!r}")
            if v is not is_and:  # False in an `and`, True in an `or`: decides the whole
                return v if not terms else z3.BoolVal(v)
            last = v
        if not terms:
            return last
        return _connect(z3.Z3_mk_and if is_and else z3.Z3_mk_or, terms)

    def _e_UnaryOp(self, e, env, fr):
        v = self.eval(e.operand, env, fr)
        if isinstance(e.op, ast.Not):
            t = self._truth(v, e, fr)
            return z3.Not(t) if is_sym(t) else not t
        if isinstance(e.op, ast.USub):
            return -v
        raise LiftError(f"{fr.where(e)}: cannot lift unary {type(e.op).__name__}")

    def _e_BinOp(self, e, env, fr):
        return self._binop(e.op, self.eval(e.left, env, fr), self.eval(e.right, env, fr), e, fr)

    def _binop(self, op, a, b, node, fr):
        if type(op) not in _ARITH:
            raise LiftError(f"{fr.where(node)}: cannot lift operator {type(op).__name__}")
        if not is_sym(a) and not is_sym(b):
            return _ARITH[type(op)](a, b)
        za, zb = to_z3(a), to_z3(b)
        if not (isinstance(za, z3.ArithRef) and isinstance(zb, z3.ArithRef)):
            raise LiftError(f"{fr.where(node)}: arithmetic on non-integers")
        if isinstance(op, (ast.FloorDiv, ast.Mod)):
            self._side_condition(zb > 0)
            return za / zb if isinstance(op, ast.FloorDiv) else za % zb
        return _ARITH[type(op)](za, zb)

    def _side_condition(self, cond: z3.BoolRef) -> None:
        if cond.get_id() not in self._side_ids:
            self._side_ids.add(cond.get_id())
            self.side_conditions.append(cond)

    def _e_Compare(self, e, env, fr):
        left, parts = self.eval(e.left, env, fr), []
        for op, right_node in zip(e.ops, e.comparators):
            right = self.eval(right_node, env, fr)
            parts.append(self._compare(op, left, right, e, fr))
            left = right
        if all(not is_sym(p) for p in parts):
            return all(parts)
        return parts[0] if len(parts) == 1 else z3.And(*[to_z3(p) for p in parts])

    def _compare(self, op, a, b, node, fr):
        if isinstance(op, (ast.In, ast.NotIn)):
            if is_sym(b):
                raise LiftError(f"{fr.where(node)}: `in` needs a concrete collection")
            if not is_sym(a):
                return (a in b) == isinstance(op, ast.In)
            za = to_z3(a)
            hit = z3.Or(*[za == to_z3(x) for x in b]) if b else z3.BoolVal(False)
            return hit if isinstance(op, ast.In) else z3.Not(hit)
        if isinstance(op, (ast.Is, ast.IsNot)):
            if is_sym(a) or is_sym(b):
                raise LiftError(f"{fr.where(node)}: `is` on a symbolic value")
            return (a is b) == isinstance(op, ast.Is)
        if not is_sym(a) and not is_sym(b):
            return _CMP[type(op)](a, b)
        za, zb = to_z3(a), to_z3(b)
        ctx = za.ctx
        if not z3.Z3_is_eq_sort(ctx.ref(), z3.Z3_get_sort(ctx.ref(), za.as_ast()), z3.Z3_get_sort(ctx.ref(), zb.as_ast())):
            raise LiftError(f"{fr.where(node)}: comparing {za.sort()} with {zb.sort()}")
        mk = _MK_CMP.get(type(op)) if isinstance(za, z3.ArithRef) or type(op) in (ast.Eq, ast.NotEq) else None
        if mk is None:
            return _CMP[type(op)](za, zb)
        if mk is z3.Z3_mk_distinct:
            return z3.BoolRef(mk(ctx.ref(), 2, (z3.Ast * 2)(za.as_ast(), zb.as_ast())), ctx)
        return z3.BoolRef(mk(ctx.ref(), za.as_ast(), zb.as_ast()), ctx)
