"""Which parameter of a MoE block's method receives F (should_allreduce_fusion) and which R
(use_reduce_scatter), bound through what its callers pass, positionally or by keyword, across the
release's model files (one block class can be built by several models: qwen2_moe's block by later
Qwen models).

A caller's flag is a local it assigned from the communicator's
`should_fuse_mlp_allreduce_with_next_layer` (F) or `should_use_reduce_scatter` (R), or a parameter
of its own already bound to one. A call `<x>.<attr>(...)` reaches the classes the file assigns to
`.<attr>` (narrowed by an enclosing `isinstance(<x>.<attr>, Cls)` test), at their `forward`; a call
`self.<method>(...)` inside a block reaches that method.
"""
from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field

from .extract import F_NAME, R_NAME, call_name, walk

F_CALL, R_CALL = "should_fuse_mlp_allreduce_with_next_layer", "should_use_reduce_scatter"
FLAG_CALLS = (F_CALL, R_CALL)
ASSIGNED_CLASS = re.compile(r"\.(\w+)\s*(?::[^=\n]*)?=\s*([A-Za-z_]\w*)\(")
CONSTANT_SLOTS = {F_NAME: "F", R_NAME: "R"}
"""A constant passed by the helper's own keyword names binds that flag (its value is a decoder fact)."""


@dataclass(frozen=True)
class CallerBinding:
    """One caller's binding of a block method's parameters: param -> "F" or "R"."""
    file: str
    flags: tuple[tuple[str, str], ...]

    def flag_of(self, param: str) -> str | None:
        return dict(self.flags).get(param)


@dataclass
class Bindings:
    methods: dict[tuple[str, str, str], set[CallerBinding]] = field(default_factory=dict)
    """(file, class, method) -> the callers' bindings, each naming the decoder file it comes from."""

    def of(self, file: str, cls: str, method: str) -> list[CallerBinding]:
        return sorted(self.methods.get((file, cls, method), ()), key=lambda c: (c.file, c.flags))


def _params(fn: ast.FunctionDef) -> list[str]:
    a = fn.args
    return [x.arg for x in (*a.posonlyargs, *a.args)][1:]  # after self


def _bind(call: ast.Call, fn: ast.FunctionDef, flags: dict[str, str]) -> tuple | None:
    """The callee's params that receive a flag, from the call's positional and keyword arguments."""
    params, kwonly = _params(fn), {x.arg for x in fn.args.kwonlyargs}
    out = {}
    for i, a in enumerate(call.args):
        if isinstance(a, ast.Starred):
            return None
        if isinstance(a, ast.Name) and a.id in flags and i < len(params):
            out[params[i]] = flags[a.id]
    for k in call.keywords:
        if not k.arg or (k.arg not in params and k.arg not in kwonly):
            continue
        if isinstance(k.value, ast.Name) and k.value.id in flags:
            out[k.arg] = flags[k.value.id]
        elif isinstance(k.value, ast.Constant) and k.arg in CONSTANT_SLOTS:
            out[k.arg] = CONSTANT_SLOTS[k.arg]  # e.g. should_allreduce_fusion=True (step3p5)
    return tuple(sorted(out.items())) if out else None


def _local_flags(fn: ast.FunctionDef) -> dict[str, str]:
    """Locals assigned from the communicator's F or R call."""
    out = {}
    for n in walk(fn):
        if isinstance(n, ast.Assign) and len(n.targets) == 1 and isinstance(n.targets[0], ast.Name):
            called = {call_name(c) for c in walk(n.value)}
            for flag, name in (("F", F_CALL), ("R", R_CALL)):
                if name in called:
                    out[n.targets[0].id] = flag
    return out


def _attribute_classes(text: str) -> dict[str, set[str]]:
    """attr -> class names assigned to `<x>.attr = Cls(` anywhere in the module's text."""
    out: dict[str, set[str]] = {}
    for attr, cls in ASSIGNED_CLASS.findall(text):
        out.setdefault(attr, set()).add(cls)
    return out


def _calls_with_isinstance(stmts, narrow=()):
    """(call, narrowing) for each call under stmts: narrowing = ((expr text, class, positive), ...)."""
    for st in stmts:
        if isinstance(st, ast.If):
            t = st.test
            test = None
            if isinstance(t, ast.Call) and call_name(t) == "isinstance" and len(t.args) == 2 \
                    and isinstance(t.args[1], ast.Name):
                test = ast.unparse(t.args[0]), t.args[1].id
            yield from _calls_in(st.test, narrow)
            yield from _calls_with_isinstance(st.body, narrow + ((*test, True),) if test else narrow)
            yield from _calls_with_isinstance(st.orelse, narrow + ((*test, False),) if test else narrow)
            continue
        for child in ast.iter_child_nodes(st):
            if not isinstance(child, ast.stmt):
                yield from _calls_in(child, narrow)
        for name in ("body", "orelse", "finalbody"):
            if getattr(st, name, None):
                yield from _calls_with_isinstance(getattr(st, name), narrow)
        for h in getattr(st, "handlers", ()):
            yield from _calls_with_isinstance(h.body, narrow)


def _calls_in(node, narrow):
    for n in walk(node):
        if isinstance(n, ast.Call):
            yield n, narrow


def _allowed(call: ast.Call, cls: str, narrow) -> bool:
    target = ast.unparse(call.func.value) + "." + call.func.attr if isinstance(call.func, ast.Attribute) else ""
    for text, name, positive in narrow:
        if text == target and (name == cls) != positive:
            return False
    return True


def _flag_functions(tree: ast.Module, text: str):
    """The functions and methods (of top-level classes) whose text calls the communicator for F or R."""
    if not any(name in text for name in FLAG_CALLS):
        return
    lines = text.splitlines()
    for top in tree.body:
        for n in (top.body if isinstance(top, ast.ClassDef) else [top]):
            if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)):
                body = "\n".join(lines[n.lineno - 1:n.end_lineno])
                if any(name in body for name in FLAG_CALLS):
                    yield n


def bindings(trees: dict[str, tuple[ast.Module, str]]) -> Bindings:
    """Every block method's callers, over all the given files (path -> (parsed module, text))."""
    classes = {}
    for rel, (tree, _text) in trees.items():
        for n in tree.body:
            if isinstance(n, ast.ClassDef):
                classes.setdefault(n.name, (rel, n))
    out = Bindings()
    for rel, (tree, text) in trees.items():
        attrs = None
        for fn in _flag_functions(tree, text):
            flags = _local_flags(fn)
            if not flags:
                continue
            attrs = attrs if attrs is not None else _attribute_classes(text)
            for call, narrow in _calls_with_isinstance(fn.body):
                if not isinstance(call.func, ast.Attribute) or call_name(call) in FLAG_CALLS:
                    continue
                for cls in attrs.get(call.func.attr, ()):
                    if cls in classes and _allowed(call, cls, narrow):
                        _reach(out, classes, rel, cls, "forward", call, flags)
    return out


def _reach(out: Bindings, classes, caller_file, cls, method, call, flags, depth=0):
    file, node = classes[cls]
    fn = next((n for n in node.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))
               and n.name == method), None)
    if fn is None or depth > 8:
        return
    bound = _bind(call, fn, flags)
    if bound is None:
        return
    caller = CallerBinding(caller_file, bound)
    seen = out.methods.setdefault((file, cls, method), set())
    if caller in seen:
        return
    seen.add(caller)
    inner = dict(bound)
    for n in walk(fn):
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and \
                isinstance(n.func.value, ast.Name) and n.func.value.id == "self":
            _reach(out, classes, caller_file, cls, n.func.attr, n, inner, depth + 1)
