"""Find every post-experts all-reduce in one model file, with what controls it.

A site is a call of an all-reduce (or of a release's all-reduce wrapper). Its guard is the path to
it: enclosing `if` tests (negated in `else`), tests of earlier `if ...: return` (negated), and the
local variables those tests read, as assigned earlier in the function. Whatever the walk cannot
follow (a site in a loop or a lambda, a variable assigned in a branch) is recorded as a problem,
so the site is reported as not understood instead of guessed.
"""
from __future__ import annotations

import ast
import copy
from dataclasses import dataclass, field

from sumonce.proto.sites import Group

# call name -> the group it all-reduces over
ALL_REDUCES = {
    "tensor_model_parallel_all_reduce": Group.TP,
    "moe_expert_parallel_all_reduce": Group.EP,
    "moe_tensor_model_parallel_all_reduce": Group.MOE_TP,
}
# 0.5.23's wrappers: a TP all-reduce unless the helper skips; EP + MoE-TP all-reduces through it (None)
WRAPPERS = {"reduce_moe_output": Group.TP, "post_experts_all_reduce": None}
REDUCE_CALLS = ALL_REDUCES | WRAPPERS
HELPER_NAME = "should_skip_post_experts_all_reduce"
F_NAME, R_NAME = "should_allreduce_fusion", "use_reduce_scatter"


@dataclass
class Cond:
    """A condition a site is under: `test` holds (positive) or does not. `if not X` is kept as X
    not holding, so the site's reach reads the same however the negation is written (an `else`
    of `if not self.reduce_results`, an early return under it)."""
    test: ast.expr
    positive: bool
    line: int

    def __post_init__(self):
        while isinstance(self.test, ast.UnaryOp) and isinstance(self.test.op, ast.Not):
            self.test, self.positive = self.test.operand, not self.positive


def read_through(test: ast.expr, env: dict, depth: int = 8) -> str:
    """test's text with each local read through the value it was assigned (`reduce_here =
    self.reduce_results; if reduce_here:` reads `self.reduce_results`) and `getattr(self, "x", d)`
    read as `self.x`: what a condition tests, however it is held (audit/coverage_boundary.py asks
    whether a site runs only under `self.reduce_results`)."""
    class _Read(ast.NodeTransformer):
        def visit_Name(self, n):
            b = env.get(n.id)
            if depth > 0 and b is not None and b.value is not None and isinstance(n.ctx, ast.Load):
                return ast.parse(read_through(b.value, env, depth - 1), mode="eval").body
            return n

        def visit_Call(self, n):
            self.generic_visit(n)
            if call_name(n) == "getattr" and isinstance(n.func, ast.Name) and len(n.args) in (2, 3) \
                    and isinstance(n.args[1], ast.Constant) and isinstance(n.args[1].value, str):
                return ast.Attribute(n.args[0], n.args[1].value, ast.Load())
            return n
    return " ".join(ast.unparse(_Read().visit(copy.deepcopy(test))).split())


@dataclass
class Binding:
    value: ast.expr | None
    """None: assigned on some paths only, or more than once in branches (not followed)."""
    line: int


@dataclass
class RawSite:
    cls: str
    method: str
    line: int
    call: str
    group: Group | None
    conds: list[Cond]
    env: dict[str, Binding]
    params: tuple[str, ...]
    defaults: dict = field(default_factory=dict)
    """A parameter -> its constant default value."""
    problems: list[tuple[str, int]] = field(default_factory=list)
    after_experts: bool = False
    callables: dict = field(default_factory=dict)
    """What its guard may call that the audit can inline (audit.callables)."""
    lambda_attr: str | None = None
    """`self.NAME = lambda ...` holding the call: NAME (sites_in follows where it is called)."""
    lambda_node: ast.Lambda | None = None
    """That lambda."""
    runs_in: str = ""
    """For a followed lambda: the method that calls it on every call (where its sum runs)."""
    dead_after: int = 0
    """The line of a return (or raise) that always runs before the site: it never runs."""
    sums_block: bool = False
    """It all-reduces the output of a MoE block its class holds (audit/moe_flow.py): a decoder's site."""
    flow: tuple[str, str, str] = ("", "", "")
    """(the name its statement assigns the call's result to, or "", its tensor argument's text, the
    call's text): which reduce's output a later reduce of the same method reduces again."""


def walk(node: ast.AST) -> list[ast.AST]:
    """walk(node) as a list, kept on the node: the audit walks the same classes and methods
    many times (decoder facts, sizes, bindings, sites). NOTE: the AST must not change afterwards."""
    nodes = node.__dict__.get("_sumonce_walk")
    if nodes is None:
        nodes = node._sumonce_walk = _breadth_first(node)
    return nodes


def _breadth_first(node: ast.AST) -> list[ast.AST]:
    """The nodes in ast.walk's order, without its generators (the audit's hottest loop)."""
    out, i, AST = [node], 0, ast.AST
    while i < len(out):
        n = out[i]
        i += 1
        for f in n._fields:
            v = getattr(n, f, None)
            if type(v) is list:
                out += [x for x in v if isinstance(x, AST)]
            elif isinstance(v, AST):
                out.append(v)
    return out


def self_attr(node: ast.AST) -> str | None:
    """NAME of `self.NAME`, else None."""
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "self":
        return node.attr
    return None


def call_name(node: ast.AST) -> str | None:
    if isinstance(node, ast.Call):
        f = node.func
        return f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else None
    return None


def _terminates(stmts: list[ast.stmt]) -> bool:
    """Every path through stmts ends in a return or raise."""
    return any(_ends(st) for st in stmts)


def _ends(st: ast.stmt) -> bool:
    if isinstance(st, (ast.Return, ast.Raise)):
        return True
    if isinstance(st, ast.If):
        return _terminates(st.body) and _terminates(st.orelse)
    if isinstance(st, (ast.With, ast.AsyncWith)):
        return _terminates(st.body)
    return False


def _calls_experts(fn: ast.FunctionDef) -> bool:
    """The method runs the experts (or a MoE block) itself: its all-reduces are post-experts."""
    for n in walk(fn):
        if isinstance(n, ast.Call):
            text = ast.unparse(n.func).lower()
            if "expert" in text or "moe" in text:
                return True
    return False


class _Walker:
    def __init__(self, cls: str, fn: ast.FunctionDef):
        self.cls, self.fn, self.sites = cls, fn, []
        self.dead = 0
        a = fn.args
        self.params = tuple(x.arg for x in (*a.posonlyargs, *a.args, *a.kwonlyargs))
        positional = (*a.posonlyargs, *a.args)
        pairs = [*zip(positional[len(positional) - len(a.defaults):], a.defaults),
                 *zip(a.kwonlyargs, a.kw_defaults)]
        self.defaults = {x.arg: d.value for x, d in pairs if isinstance(d, ast.Constant)}

    def run(self) -> list[RawSite]:
        self.block(self.fn.body, [], {}, None)
        return self.sites

    def block(self, stmts, conds, env, problem):
        conds, outer = list(conds), self.dead
        for st in stmts:
            self.statement(st, conds, env, problem)
            if not self.dead and _ends(st):
                self.dead = st.lineno
            if isinstance(st, ast.If):
                if _terminates(st.body) and not _terminates(st.orelse):
                    conds.append(Cond(st.test, False, st.lineno))
                elif _terminates(st.orelse) and not _terminates(st.body):
                    conds.append(Cond(st.test, True, st.lineno))
        self.dead = outer

    def statement(self, st, conds, env, problem):
        if isinstance(st, ast.If):
            self.scan(st.test, conds, env, problem)
            a, b = dict(env), dict(env)
            self.block(st.body, conds + [Cond(st.test, True, st.lineno)], a, problem)
            self.block(st.orelse, conds + [Cond(st.test, False, st.lineno)], b, problem)
            self.merge_if(env, a, b, st)
        elif isinstance(st, (ast.For, ast.AsyncFor, ast.While)):
            inner = dict(env)
            self.block(st.body + st.orelse, conds, inner, problem or ("inside a loop", st.lineno))
            self.merge(env, inner, env, st.lineno)
        elif isinstance(st, (ast.With, ast.AsyncWith)):
            self.block(st.body, conds, env, problem)
        elif isinstance(st, ast.Try):
            inner = dict(env)
            for part in (st.body, *[h.body for h in st.handlers], st.orelse, st.finalbody):
                self.block(part, conds, inner, problem or ("inside try/except", st.lineno))
            self.merge(env, inner, env, st.lineno)
        elif isinstance(st, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            self.scan(st, conds, env, ("inside a nested definition", st.lineno))
        else:
            self.scan(st, conds, env, problem)
            self.bind(st, env)

    def bind(self, st, env):
        if isinstance(st, ast.Assign):
            for t in st.targets:
                for n in walk(t):
                    if isinstance(n, ast.Name):
                        simple = isinstance(t, ast.Name) and len(st.targets) == 1
                        env[n.id] = Binding(st.value if simple else None, st.lineno)
        elif isinstance(st, (ast.AugAssign, ast.AnnAssign)) and isinstance(st.target, ast.Name):
            keep = isinstance(st, ast.AnnAssign) and st.value is not None
            env[st.target.id] = Binding(st.value if keep else None, st.lineno)

    @staticmethod
    def merge_if(env, a, b, st: ast.If):
        """After an if: a branch that returns leaves the other's bindings; a name bound to a
        value on both paths is bound to `a if test else b` (the Lifter merges it)."""
        ends_a, ends_b = _terminates(st.body), _terminates(st.orelse)
        if ends_a != ends_b:
            env.clear()
            env.update(b if ends_a else a)
            return
        for name in set(a) | set(b):
            x, y = a.get(name), b.get(name)
            if x is y:
                continue
            if x is None or y is None or x.value is None or y.value is None:
                env[name] = Binding(None, st.lineno)
            else:
                value = ast.IfExp(st.test, x.value, y.value, lineno=st.lineno, col_offset=st.col_offset)
                env[name] = Binding(value, st.lineno)

    @staticmethod
    def merge(env, a, b, line):
        for name in set(a) | set(b):
            x, y = a.get(name), b.get(name)
            if x is not y:
                env[name] = Binding(None, line)

    def scan(self, node, conds, env, problem):
        """Record every all-reduce call under `node`."""
        for n in walk(node):
            name = call_name(n)
            if name not in REDUCE_CALLS:
                continue
            site = RawSite(self.cls, self.fn.name, n.lineno, name, REDUCE_CALLS[name],
                           list(conds) + _ifexp_conds(node, n), dict(env), self.params, self.defaults)
            site.dead_after = self.dead
            site.flow = _flow(node, n)
            if problem:
                site.problems.append(problem)
            if any(isinstance(p, ast.Lambda) and _inside(n, p) for p in walk(node)):
                site.problems.append((LAMBDA_PROBLEM, n.lineno))
                site.lambda_attr = _self_attr_bound_to_lambda(node, n)
                site.lambda_node = node.value if site.lambda_attr else None
            self.sites.append(site)


def _flow(stmt, call: ast.Call) -> tuple[str, str, str]:
    target = stmt.targets[0].id if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 \
        and isinstance(stmt.targets[0], ast.Name) and stmt.value is call else ""
    arg = call.args[0] if call.args else call.keywords[0].value if call.keywords else None
    return target, ast.unparse(arg) if arg is not None else "", ast.unparse(call)


LAMBDA_PROBLEM = ("inside a lambda: when (and whether) it runs depends on where the lambda is called, which the "
                  "audit follows only for `self.NAME = lambda ...` called as `self.NAME(...)` in a method of the "
                  "class that runs it on every call (a named method would be audited)")


def _self_attr_bound_to_lambda(stmt, call) -> str | None:
    """`self.NAME = lambda ...: ...call...`: NAME (the lambda is the whole value), else None."""
    if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.value, ast.Lambda):
        t = stmt.targets[0]
        if self_attr(t) is not None and _inside(call, stmt.value.body):
            return t.attr
    return None


def _lambda_runs_in(cls: ast.ClassDef, attr: str) -> str | None:
    """The method of cls that calls `self.attr(...)` as a statement of its own body (not under an
    `if`, a loop, a `try` or a `with`): the lambda runs on every call of that method. None when no
    method, or more than one, does so, or any method calls it conditionally."""
    unconditional, anywhere = [], []
    for fn in (f for f in cls.body if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))):
        for n in walk(fn):
            if _calls_self_attr(n, attr):
                anywhere.append(fn.name)
        for st in fn.body:
            if not isinstance(st, (ast.If, ast.For, ast.While, ast.Try, ast.With, ast.AsyncFor, ast.AsyncWith)) \
                    and any(_calls_self_attr(n, attr) for n in walk(st)):
                unconditional.append(fn.name)
    if len(anywhere) == 1 and unconditional == anywhere:
        return unconditional[0]
    return None


def _calls_self_attr(n, attr: str) -> bool:
    return isinstance(n, ast.Call) and self_attr(n.func) == attr


def _ifexp_conds(stmt, call) -> list[Cond]:
    """`x = all_reduce(x) if test else x`: the conditional expressions the call sits in."""
    out = []
    for p in walk(stmt):
        if isinstance(p, ast.IfExp):
            if _inside(call, p.body):
                out.append(Cond(p.test, True, p.lineno))
            elif _inside(call, p.orelse):
                out.append(Cond(p.test, False, p.lineno))
    return out


def _inside(node, outer) -> bool:
    return any(x is node for x in walk(outer))


def _runs_experts_through(cls: ast.ClassDef) -> set[str]:
    """The methods of cls that run the experts layer through other methods of cls (`self._forward_core(x)`
    whose callee, or its callee, calls `self.experts(...)`: nemotron_h's NemotronHMoE.forward up to
    0.5.13.post1)."""
    methods = {f.name: f for f in cls.body if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))}
    calls = {name: {n.func.attr for n in walk(fn) if isinstance(n, ast.Call) and self_attr(n.func) in methods}
             for name, fn in methods.items()}
    running = {name for name, fn in methods.items() if _calls_experts_layer(fn)}
    through: set[str] = set()
    while True:
        more = {name for name, callees in calls.items() if callees & (running | through)} - running - through
        if not more:
            return through
        through |= more


def _calls_experts_layer(fn: ast.FunctionDef) -> bool:
    """The method calls the experts layer itself (`self.experts(...)`): narrower than
    _calls_experts, whose name test also takes norms and projections named after the experts."""
    return any(isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr == "experts"
               for n in walk(fn))


def sites_in(tree: ast.Module, text: str = "", imported: frozenset = frozenset()) -> list[RawSite]:
    """Every all-reduce call in the methods (and functions) of a module (imported: the names of MoE
    blocks it imports from other model modules, moe_flow.imported_blocks)."""
    from .moe_flow import block_classes, block_sums  # moe_flow reads extract's names
    lines, out, through, sums, blocks = text.splitlines(), [], {}, {}, None
    for cls, fn in _functions(tree):
        if lines and not _mentions_all_reduce(lines[fn.lineno - 1:fn.end_lineno]):
            continue
        found = _Walker(cls, fn).run()
        if found and cls and cls not in through:
            through[cls] = _runs_experts_through(_class_named(tree, cls))
            blocks = block_classes(tree, text or None) | imported if blocks is None else blocks
            sums[cls] = block_sums(_class_named(tree, cls), blocks, None if imported else tree) if blocks else (set(), set())
        experts = bool(found) and (_calls_experts(fn) or fn.name in through.get(cls, ()))
        for s in found:
            runs = experts
            if s.lambda_attr and cls:
                followed = _follow_lambda(s, _class_named(tree, cls))
                runs = experts if followed is None else followed
            block, other = sums.get(cls, ((), ()))
            s.sums_block = s.line in block
            # NOTE: a sum of the held attribute's output where it holds the dense MLP (sarvam_moe's
            # decoder up to 0.5.15.post1, `not self.is_layer_sparse and ...`, 0.5.11 sarvam_moe.py:1125-1131)
            # is no post-experts sum, though its guard reads F and R.
            s.after_experts = s.line not in other and (runs or s.sums_block or s.group != Group.TP
                                                       or s.call in WRAPPERS or _mentions_helper(s))
        out += found
    return out


def _follow_lambda(s: RawSite, cls: ast.ClassDef) -> bool | None:
    """A site inside `self.NAME = lambda x: all_reduce(...)` (grok's Grok1DecoderLayer.__init__ at
    0.5.23 grok.py:550): when one method of the class calls self.NAME(...) on every call, the
    lambda's sum runs there under the conditions in force where the lambda was bound, so the site is
    understood. Returns whether the lambda's body runs the experts (a call naming experts or moe);
    None when the lambda is not followed."""
    runs_in = _lambda_runs_in(cls, s.lambda_attr)
    if runs_in is None:
        return None
    s.problems = [p for p in s.problems if p[0] != LAMBDA_PROBLEM]
    s.runs_in = runs_in
    return _calls_experts(s.lambda_node.body)


def _mentions_all_reduce(lines: list[str]) -> bool:
    text = "\n".join(lines)
    return any(name in text for name in REDUCE_CALLS)


def _mentions_helper(s: RawSite) -> bool:
    names = {F_NAME, R_NAME, HELPER_NAME, "should_use_dp_reduce_scatterv",
             "should_use_flashinfer_cutlass_moe_fp4_allgather"}
    for c in s.conds:
        for n in walk(c.test):
            if (isinstance(n, ast.Name) and n.id in names) or call_name(n) in names:
                return True
    return False


def _functions(tree: ast.Module):
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            yield "", node
        elif isinstance(node, ast.ClassDef):
            for cls, fn in _class_functions(node, node.name):
                yield cls, fn


def _class_named(tree: ast.Module, qualified: str) -> ast.ClassDef:
    """The class _functions names `A.B` (B defined in A's body)."""
    body: list = tree.body
    for part in qualified.split("."):
        node = next(n for n in body if isinstance(n, ast.ClassDef) and n.name == part)
        body = node.body
    return node


def _class_functions(cls: ast.ClassDef, name: str):
    for node in cls.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            yield name, node
        elif isinstance(node, ast.ClassDef):
            yield from _class_functions(node, f"{name}.{node.name}")


def forward_roots(tree: ast.Module, wanted: set[str]) -> dict[tuple[str, str], str]:
    """(class, method) -> the method whose forward it is part of: a method that one other method
    of its class calls unconditionally (a statement of that method's own body, not under an `if`
    or a loop) runs in that method's forward, so their all-reduces are counted together."""
    out = {}
    for cls in (n for n in tree.body if isinstance(n, ast.ClassDef) and n.name in wanted):
        methods = {f.name: f for f in cls.body if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))}
        callers: dict[str, list[str]] = {}
        for name, fn in methods.items():
            for st in fn.body:
                if isinstance(st, (ast.If, ast.For, ast.While, ast.Try, ast.With)):
                    continue
                for n in walk(st):
                    if isinstance(n, ast.Call) and self_attr(n.func) in methods:
                        callers.setdefault(n.func.attr, []).append(name)
        for name in methods:
            root, seen = name, {name}
            while len(callers.get(root, ())) == 1 and callers[root][0] not in seen:
                root = callers[root][0]
                seen.add(root)
            out[(cls.name, name)] = root
    return out
