"""What one model file says about its MoE layers, read from its syntax tree for audit/coverage.py:
where it builds experts (and with which `reduce_results`), whether it declares stage boundaries,
which MoE classes it takes from other model files, and every all-reduce call in it.
"""
from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field

from .extract import REDUCE_CALLS, call_name, walk

MOE_MARK = re.compile(r"\b(get_moe_impl_class|FusedMoE|EPMoE|DeepEPMoE)\b")
"""docs/eras.json's moe_model_file_rule: a file naming the experts layer (or its factory)."""
EXPERTS_CLASSES = {"FusedMoE", "EPMoE", "DeepEPMoE"}
KERNELS = {"fused_moe", "fused_moe_npu", "fused_experts"}
"""The fused-experts kernels a model may call directly (dbrx, deepseek, xverse_moe, afmoe):
the file sums the experts itself, so it is a MoE model file though it names no experts layer."""
STAGES = {"append_stages", "make_stages"}
"""0.5.21 declares a decoder's stage boundaries with make_stages, 0.5.22+ with append_stages."""
FFN_EXITS = {"finish", "exit", "complete_now", "postprocess"}
MODELS_PKG = "sglang.srt.models."


@dataclass
class Built:
    """One construction of an experts layer."""
    line: int
    cls: str
    """The class (or method) that builds it."""
    reduce_results: object = None
    """The keyword's constant value; None when not given (FusedMoE's default is False), '?' when
    not a constant, ('param', name) when a parameter of the builder's __init__."""


@dataclass
class Facts:
    rel: str
    experts: list[Built] = field(default_factory=list)
    kernels: list[int] = field(default_factory=list)
    stages: list[int] = field(default_factory=list)
    sparse_ffn: list[int] = field(default_factory=list)
    """declare_ffn(...) calls (the sparse FFN the boundary owes a sum for)."""
    ffn_exits: list[int] = field(default_factory=list)
    """<x>.ffn_boundary.finish/exit/complete_now(...) calls: where the FFN's output is completed."""
    imports: dict[str, tuple[str, int]] = field(default_factory=dict)
    """A name imported from another model module -> (that module, line)."""
    modules: dict[str, str] = field(default_factory=dict)
    """A model module imported whole (`import sglang.srt.models.deepseek_v2 as deepseek_v2`) -> its name;
    its `deepseek_v2.DeepseekV2MoE` is then an import named "deepseek_v2.DeepseekV2MoE"."""
    original: dict[str, str] = field(default_factory=dict)
    """An imported name -> its name in its module (`DeepseekV2MoE as Glm5NextMoE`)."""
    refs: dict[str, set[str]] = field(default_factory=dict)
    """A name -> the classes (or module-level functions) whose code reads it: a decoder building
    a block, a model naming its decoder class (`decoder_layer_type=...`)."""
    bases: dict[str, tuple[list[str], int, bool]] = field(default_factory=dict)
    """class -> (its base names, line, whether it defines forward)."""
    built_with: dict[str, list[tuple[int, object]]] = field(default_factory=dict)
    """A class name called in this file -> [(line, its reduce_results keyword's value)]."""
    reduces: list[tuple[int, str, str]] = field(default_factory=list)
    """Every all-reduce (or wrapper) call: (line, call, enclosing class)."""
    builders: dict[str, set[str]] = field(default_factory=dict)
    """A class name called in this file -> the classes that call it (its decoders)."""
    stage_defs: set[str] = field(default_factory=set)
    """Module-level functions that declare stage boundaries (nemotron_h_utils.make_stage_boundary)."""
    params: dict[str, dict[str, object]] = field(default_factory=dict)
    """class -> its __init__'s parameter -> constant default ('?' if none or not a constant)."""
    complete_ffn: list[tuple[int, object]] = field(default_factory=list)
    """declare_ffn(..., output_complete=X) calls: (line, X's constant, '?' when not a constant)."""
    ffn_defs: dict[str, int] = field(default_factory=dict)
    """Module-level functions that call declare_ffn -> that call's line (deepseek_v4_boundary.stages)."""
    stage_classes: dict[str, int] = field(default_factory=dict)
    """class -> the line where it declares its stage boundaries (append_stages / make_stages)."""
    holds: dict[str, dict[str, set[str]]] = field(default_factory=dict)
    """class -> self.<attr> -> the classes called in what it is assigned (`self.mlp = Block(...)`)."""
    resets: dict[str, list[tuple[int, str, object]]] = field(default_factory=dict)
    """class -> (line, attr, value) of `self.<attr>.reduce_results = value` (set after construction)."""


def _const(node: ast.expr | None):
    if node is None:
        return None
    return node.value if isinstance(node, ast.Constant) else "?"


def _keyword(call: ast.Call, name: str):
    return next((k.value for k in call.keywords if k.arg == name), None)


def read(rel: str, tree: ast.Module) -> Facts:
    f = Facts(rel)
    factories = {"get_moe_impl_class"}
    _visit(f, tree, factories)
    for fn in (n for n in tree.body if isinstance(n, ast.FunctionDef)):
        calls = [n for n in walk(fn) if isinstance(n, ast.Call)]
        if any(call_name(n) in STAGES for n in calls):
            f.stage_defs.add(fn.name)
        declares = [n.lineno for n in calls if call_name(n) == "declare_ffn"]
        if declares:
            f.ffn_defs[fn.name] = min(declares)
    return f


def _init_params(cls: ast.ClassDef) -> dict[str, object]:
    init = next((b for b in cls.body if isinstance(b, ast.FunctionDef) and b.name == "__init__"), None)
    if init is None:
        return {}
    a = init.args
    positional = (*a.posonlyargs, *a.args)
    out = {x.arg: "?" for x in (*positional, *a.kwonlyargs)}
    pairs = [*zip(positional[len(positional) - len(a.defaults):], a.defaults), *zip(a.kwonlyargs, a.kw_defaults)]
    out.update({x.arg: _const(d) for x, d in pairs if d is not None})
    return out


_QUIET = {"ctx", "op", "ops"}
"""Fields that hold only a load/store context or an operator: nothing the visit reads."""
_FIELDS: dict[type, tuple[str, ...]] = {}


def _children(node: ast.AST) -> list[ast.AST]:
    """ast.iter_child_nodes(node) as a list, less contexts and operators."""
    fields = _FIELDS.get(type(node))
    if fields is None:
        fields = _FIELDS[type(node)] = tuple(x for x in node._fields if x not in _QUIET)
    out, AST = [], ast.AST
    for name in fields:
        v = getattr(node, name, None)
        if type(v) is list:
            out += [x for x in v if isinstance(x, AST)]
        elif isinstance(v, AST):
            out.append(v)
    return out


def _visit(f: Facts, tree: ast.AST, factories: set[str], cls: str = "") -> None:
    """One pass over the tree, depth first in source order (so a factory is bound before its
    call), each node with its owner cls: the enclosing class, else the module-level function or the
    module-level assignment (a table of decoder classes) it is in, else "". The stack holds nodes
    of one owner; a node that starts another owner is visited by a call of its own."""
    stack = _children(tree)
    stack.reverse()
    Name, Call, Attribute, Assign, ClassDef, Constant = ast.Name, ast.Call, ast.Attribute, ast.Assign, ast.ClassDef, \
        ast.Constant
    plain, fields, AST = _PLAIN, _FIELDS, ast.AST
    while stack:
        child = stack.pop()
        t = type(child)
        if t is Name:
            if cls:
                f.refs.setdefault(child.id, set()).add(cls)
            continue  # a Name's only child is its context
        if t is Constant:
            continue  # no child
        owner = cls
        if t in plain:
            pass
        elif t is Call:
            _call(f, child, cls, factories)
        elif t is Attribute:
            if type(child.value) is Name and child.value.id in f.modules:
                _module_attribute(f, child, cls)
        elif t is ClassDef:
            has_forward = any(isinstance(b, ast.FunctionDef) and b.name == "forward" for b in child.body)
            f.bases[child.name] = ([ast.unparse(b) for b in child.bases], child.lineno, has_forward)
            f.params[child.name] = _init_params(child)
            owner = child.name
        elif t is Assign:
            if cls:
                _assign(f, child, cls)
            if type(child.value) is Call and call_name(child.value) == "get_moe_impl_class":
                factories.update(x.id for x in child.targets if isinstance(x, Name))
            if not cls and len(child.targets) == 1 and type(child.targets[0]) is Name:
                owner = child.targets[0].id  # a module-level table of decoder classes
        elif t is ast.ImportFrom or t is ast.Import:
            _import(f, child)
        elif not cls and (t is ast.FunctionDef or t is ast.AsyncFunctionDef):
            owner = child.name
        if owner != cls:
            _visit(f, child, factories, owner)
            continue
        # NOTE: _children(child) pushed last first, inlined (the visit's hottest loop)
        names = fields.get(t)
        if names is None:
            names = fields[t] = tuple(x for x in t._fields if x not in _QUIET)
        for name in reversed(names):
            v = getattr(child, name, None)
            if type(v) is list:
                stack += [x for x in reversed(v) if isinstance(x, AST)]
            elif isinstance(v, AST):
                stack.append(v)


_PLAIN = frozenset({ast.Expr, ast.Subscript, ast.BinOp, ast.keyword, ast.arg, ast.Tuple, ast.Return, ast.If,
                    ast.Compare, ast.BoolOp, ast.UnaryOp, ast.List, ast.Dict, ast.JoinedStr, ast.FormattedValue,
                    ast.arguments, ast.AugAssign, ast.AnnAssign, ast.Starred, ast.Slice, ast.IfExp})
"""Node types the visit only descends through (none is a Name, Call, Attribute, ClassDef, Assign,
import or function)."""


def _assign(f: Facts, node: ast.Assign, cls: str) -> None:
    """`self.<attr> = Cls(...)` (what a class holds) and `self.<attr>.reduce_results = value`."""
    for t in node.targets:
        if type(t) is not ast.Attribute:
            continue
        v = t.value
        if type(v) is ast.Name and v.id == "self":
            called = _called(node.value)
            if called:
                f.holds.setdefault(cls, {}).setdefault(t.attr, set()).update(called)
        elif t.attr == "reduce_results" and type(v) is ast.Attribute and type(v.value) is ast.Name \
                and v.value.id == "self":
            f.resets.setdefault(cls, []).append((node.lineno, v.attr, _const(node.value)))


def _called(value: ast.expr) -> set[str]:
    """The classes (or functions) called in value, as this file names them (`Block`, `mod.Block`)."""
    out, stack = set(), [value]
    while stack:
        n = stack.pop()
        if type(n) is ast.Call:
            fn = n.func
            if type(fn) is ast.Name:
                out.add(fn.id)
            elif type(fn) is ast.Attribute and type(fn.value) is ast.Name:
                out.add(f"{fn.value.id}.{fn.attr}")
            stack += n.args
            stack += [k.value for k in n.keywords]
        elif type(n) in (ast.IfExp, ast.BoolOp, ast.Tuple, ast.List):
            stack += _children(n)
    return out


def _import(f: Facts, node: ast.Import | ast.ImportFrom) -> None:
    if isinstance(node, ast.Import):
        f.modules.update({a.asname: a.name[len(MODELS_PKG):] for a in node.names
                          if a.asname and a.name.startswith(MODELS_PKG) and "." not in a.name[len(MODELS_PKG):]})
    elif (node.module or "").startswith(MODELS_PKG):
        for a in node.names:
            f.imports.setdefault(a.asname or a.name, (node.module[len(MODELS_PKG):], node.lineno))
            f.original.setdefault(a.asname or a.name, a.name)
    elif node.module == MODELS_PKG[:-1]:
        f.modules.update({a.asname or a.name: a.name for a in node.names})


def _module_attribute(f: Facts, node: ast.Attribute, cls: str) -> None:
    """`deepseek_v2.DeepseekV2MoE` of a model module imported whole: an import of that name."""
    name = f"{node.value.id}.{node.attr}"
    f.imports.setdefault(name, (f.modules[node.value.id], node.lineno))
    f.original.setdefault(name, node.attr)
    if cls:
        f.refs.setdefault(name, set()).add(cls)


def _call(f: Facts, call: ast.Call, cls: str, factories: set[str]) -> None:
    name, fn = call_name(call), call.func
    node = _keyword(call, "reduce_results")
    rr = _const(node) if not isinstance(node, ast.Name) else ("param", node.id)
    line = node.lineno if node is not None else call.lineno  # the keyword's own line, where given
    if (isinstance(fn, ast.Call) and call_name(fn) in factories) or \
            (isinstance(fn, ast.Name) and (fn.id in EXPERTS_CLASSES or fn.id in factories - {"get_moe_impl_class"})):
        f.experts.append(Built(line, cls, rr))
    elif isinstance(fn, ast.Name) or (isinstance(fn, ast.Attribute) and isinstance(fn.value, ast.Name)
                                      and fn.value.id in f.modules):
        key = fn.id if isinstance(fn, ast.Name) else f"{fn.value.id}.{fn.attr}"  # as ast.unparse writes it
        f.built_with.setdefault(key, []).append((line, rr))
        f.builders.setdefault(key, set()).add(cls)
    if name in KERNELS:
        f.kernels.append(call.lineno)
    if name in STAGES:
        f.stages.append(call.lineno)
        f.stage_classes.setdefault(cls, call.lineno)
    if name == "declare_ffn":
        f.sparse_ffn.append(call.lineno)
        done = _keyword(call, "output_complete")
        if done is not None:
            f.complete_ffn.append((done.lineno, _const(done)))
    if name in FFN_EXITS and isinstance(fn, ast.Attribute) and "boundary" in ast.unparse(fn.value):
        receiver = ast.unparse(fn.value)
        if "attn" not in receiver and "attention" not in receiver:  # nemotron_h's FFN stage: `self.boundary`
            f.ffn_exits.append(call.lineno)
    if name in REDUCE_CALLS:
        f.reduces.append((call.lineno, name, cls))


def names_experts(text: str) -> bool:
    """eras.json's rule: MOE_MARK in the text (searched only where one of its words is a substring)."""
    return ("FusedMoE" in text or "EPMoE" in text or "get_moe_impl_class" in text) and bool(MOE_MARK.search(text))


def is_moe_file(text: str, facts: Facts | None) -> bool:
    """The refined rule: names the experts layer (eras.json's rule), or calls a fused-experts kernel."""
    return names_experts(text) or bool(facts and facts.kernels)


def unjudged(f: Facts, mine) -> list[tuple[int, str, str]]:
    """All-reduce calls inside a class that builds experts that the audit did not take as sites."""
    lines = {s.line for s in mine}
    moe_classes = {b.cls for b in f.experts}
    return [r for r in f.reduces if r[2] in moe_classes and r[0] not in lines]


def why_unaccounted(f: Facts) -> str:
    """Why no row holds, in words a reader can act on: the all-reduce the audit does not take as a
    site, the sub-package it does not read, or what the file builds."""
    blocks = {b.cls for b in f.experts}
    decoders = set().union(*(f.builders.get(c, set()) for c in blocks)) if blocks else set()
    missed = unjudged(f, []) or [r for r in f.reduces if r[2] in decoders]
    if missed:
        ln, call, cls = missed[0]
        why = f"{cls} calls {call} at line {ln}, which the audit does not take as a post-experts site"
        if f.stages and f.sparse_ffn and not any(v is not False for _l, v in f.complete_ffn):
            why += (f"; the decoder declares stage boundaries (line {f.stages[0]}) and its FFN stage (line "
                    f"{f.sparse_ffn[0]}) without output_complete, so the boundary sums the FFN output too: "
                    "if that all-reduce sums the experts' output, it is summed twice")
        return why
    sub = sorted((n, m, ln) for n, (m, ln) in f.imports.items() if "." in m and ("moe" in n.lower()))
    if sub:
        n, m, ln = sub[0]
        return (f"its MoE code {n} (imported at line {ln}) is in models/{m.replace('.', '/')}.py, "
                "a module the audit does not read (only top-level model files and their sub-packages "
                "one level down) or that builds no experts layer")
    if f.experts:
        return "builds experts (line " + ", ".join(str(b.line) for b in f.experts[:3]) + \
            ") but no site, stage boundary or reduce_results=True accounts for their sum: nothing in the " \
            "model files sums their output (summed not at all, unless code outside them does)"
    mods = sorted({m for m, _l in f.imports.values()})
    return "builds no experts here and takes no MoE class from another top-level model file" + \
        (f" (imports from {', '.join(mods[:4])})" if mods else "")
