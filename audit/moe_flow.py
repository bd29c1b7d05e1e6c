"""Which all-reduces of a class sum the output of a MoE block it holds, read from data flow, not names.

A *MoE block* is a class of the module that builds an experts layer (`FusedMoE(...)`, `EPMoE(...)`,
`DeepEPMoE(...)`, `get_moe_impl_class(...)(...)` or a name bound to that factory's result), or a
subclass of one. A class *holds* a block in an attribute assigned a construction of it
(`self.mlp = Cohere2MoeSparseMoeBlock(...)`, on any branch). An all-reduce *sums the block's output*
when its argument is computed from a call of that attribute: through local assignments in source
order (a name reassigned from something else no longer carries it), through a method of the class
that returns such a value, or through a method of the class that is passed such a value and
all-reduces its parameter (the reduce moved into a helper).

The parallel-block decoder is the pattern (cohere2_moe, 0.5.13+: `combined = attn_out + mlp_out`,
then one TP all-reduce of the sum): its all-reduce is a post-experts site at the decoder level.
"""
from __future__ import annotations

import ast
import re
from functools import lru_cache

from . import memo
from .aliases import method_aliases, substituted
from .extract import REDUCE_CALLS, call_name, self_attr, walk

EXPERTS_CLASSES = {"FusedMoE", "EPMoE", "DeepEPMoE"}
MODELS_PKG = "sglang.srt.models."
FACTORY = "get_moe_impl_class"
_COMPOUND = (ast.If, ast.For, ast.AsyncFor, ast.While, ast.With, ast.AsyncWith, ast.Try)


def block_classes(tree: ast.Module, text: str | None = None) -> set[str]:
    """The module's MoE blocks: classes that build an experts layer, and their subclasses here
    (kept on the tree: extract.py and decoder.py ask for the same module). With the module's
    text, only the classes whose lines name an experts layer or a factory are walked."""
    found = tree.__dict__.get("_sumonce_blocks")
    if found is None:
        found = tree._sumonce_blocks = _blocks(tree, text)
    return found


def imported_blocks(tree: ast.Module, files: dict[str, str], trees: dict | None = None) -> set[str]:
    """The names this module imports (`from sglang.srt.models[.<package>].<module> import X as Y`)
    of MoE blocks defined in another model module or a sub-package module of files (trees: those
    already parsed, by path, reused)."""
    out = set()
    for node in tree.body:
        if not (isinstance(node, ast.ImportFrom) and (node.module or "").startswith(MODELS_PKG)):
            continue
        rel = "sglang/srt/" + node.module[len("sglang.srt."):].replace(".", "/") + ".py"
        text = files.get(rel)
        if text is None or not any(w in text for w in (*EXPERTS_CLASSES, FACTORY)):
            continue
        parsed = (trees or {}).get(rel)
        theirs = block_classes(parsed[0], text) if parsed else _module_blocks(text)
        out |= {a.asname or a.name for a in node.names if a.name in theirs}
    return out


@lru_cache(maxsize=256)
def _module_blocks(text: str) -> frozenset:
    try:
        tree = memo.parse(text)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return frozenset()
    return frozenset(block_classes(tree, text))


def _classes(body) -> list[ast.ClassDef]:
    out = []
    for n in body:
        if isinstance(n, ast.ClassDef):
            out += [n, *_classes(n.body)]
    return out


def _blocks(tree: ast.Module, text: str | None) -> set[str]:
    classes = _classes(tree.body)
    factories = {FACTORY}
    if text is None:
        factories |= {t.id for n in walk(tree) if isinstance(n, ast.Assign) and isinstance(n.value, ast.Call)
                      and call_name(n.value) == FACTORY for t in n.targets if isinstance(t, ast.Name)}
        found = {c.name for c in classes if any(_builds_experts(n, factories) for n in walk(c))}
    else:
        if not any(w in text for w in (*EXPERTS_CLASSES, FACTORY)):
            return set()
        factories |= set(_factory_bound(text))
        lines = _word_lines(EXPERTS_CLASSES | factories, text)
        candidates = [c for c in classes if any(c.lineno <= ln <= c.end_lineno for ln in lines)]
        found = {c.name for c in candidates if _builds_at(c, lines, factories)}
    while found:
        more = {c.name for c in classes if c.name not in found and
                any(ast.unparse(b).rsplit(".", 1)[-1] in found for b in c.bases)}
        if not more:
            break
        found |= more
    if found and text is not None:
        tree._sumonce_block_calls = _word_lines(found, text, called=True)
    return found


def _builds_at(node: ast.AST, lines: list[int], factories: set[str]) -> bool:
    """node builds an experts layer in a call on one of lines (only the nodes spanning one are read)."""
    for child in ast.iter_child_nodes(node):
        start, end = getattr(child, "lineno", None), getattr(child, "end_lineno", None)
        if start is not None and not any(start <= ln <= end for ln in lines):
            continue
        if _builds_experts(child, factories) or _builds_at(child, lines, factories):
            return True
    return False


_FACTORY_BOUND = re.compile(r"\(" + FACTORY[::-1] + r"\s*=\s*(\w+)")
r"""A name bound to the factory's result (`MoEImpl = get_moe_impl_class(quant_config)`), matched in
the reversed text: `(\w+)\s*=\s*get_moe_impl_class\(` searched forwards tries a word at every
position (about 5 ms per large file), reversed it starts at the literal. The same matches: each ends
at one call of the factory and its word is the whole run of word characters before the `=`."""


def _factory_bound(text: str) -> list[str]:
    """The names bound to the factory's result, in source order."""
    if FACTORY + "(" not in text:
        return []
    return [w[::-1] for w in reversed(_FACTORY_BOUND.findall(text[::-1]))]


def _word_lines(words: set[str], text: str, called: bool = False) -> list[int]:
    r"""The lines (1-based, ascending, one per occurrence) where one of words occurs as a whole
    word (called: followed by `(`, spaces between allowed): the lines of `\b(w1|w2|...)\b`'s
    (`\b(w1|w2|...)\s*\(`'s) matches, found by str.find (a whole-word occurrence is a maximal run
    of word characters, so two never overlap)."""
    at = []
    for w in words:
        i = text.find(w)
        while i >= 0:
            j = i + len(w)
            if not (i > 0 and _is_word(text[i - 1])) and not (j < len(text) and _is_word(text[j])) and \
                    (not called or _CALL.match(text, j)):
                at.append(i)
            i = text.find(w, j)
    out, line, last = [], 1, 0
    for i in sorted(at):
        line += text.count("\n", last, i)
        last = i
        out.append(line)
    return out


_CALL = re.compile(r"\s*\(")


def _is_word(ch: str) -> bool:
    return ch.isalnum() or ch == "_"


def _builds_experts(node: ast.AST, factories: set[str]) -> bool:
    if not isinstance(node, ast.Call):
        return False
    fn = node.func
    if isinstance(fn, ast.Call):
        return call_name(fn) in factories
    return isinstance(fn, ast.Name) and (fn.id in EXPERTS_CLASSES or fn.id in factories - {FACTORY})


def block_attrs(cls: ast.ClassDef, blocks: set[str], tree: ast.Module | None = None) -> dict[str, tuple[int, frozenset]]:
    """self.<attr> -> (the line where the class assigns it a construction of a MoE block, the `if`
    tests that assignment sits under, each as (text, holds); an attribute assigned a block in several
    places: the first line, and the tests all of them sit under). With the module's tree (whose
    blocks block_classes found), a class with no construction of a block in its lines holds none."""
    made = tree.__dict__.get("_sumonce_block_calls") if tree is not None else None
    if made is not None and not any(cls.lineno <= ln <= cls.end_lineno for ln in made):
        return {}
    out = {}
    for fn in (f for f in cls.body if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))):
        for n, path in _assignments(fn.body, ()):
            if not _constructs(n.value, blocks):
                continue
            aliases = method_aliases(fn)
            for t in n.targets:
                if self_attr(t):
                    known = frozenset().union(*(tests(x, h, aliases) for x, h in path),
                                              _chosen(n.value, blocks, aliases))
                    out[t.attr] = (out[t.attr][0], out[t.attr][1] & known) if t.attr in out else (n.lineno, known)
    return out


def _constructs(node: ast.AST, blocks: set[str]) -> bool:
    """Does node call one of the MoE blocks?"""
    return any(isinstance(c, ast.Call) and call_name(c) in blocks for c in walk(node))


def _chosen(value, blocks: set[str], aliases: dict | None = None) -> frozenset:
    """`Block(...) if test else Other(...)`: what the block's side knows of the test (nothing when
    both sides, or neither, construct a block)."""
    if not isinstance(value, ast.IfExp):
        return frozenset()
    makes = [_constructs(side, blocks) for side in (value.body, value.orelse)]
    if makes[0] == makes[1]:
        return frozenset()
    return tests(value.test, makes[0], aliases) | _chosen(value.body if makes[0] else value.orelse, blocks, aliases)


def _assignments(stmts, path: tuple):
    """Each assignment, with the (if test, holds) pairs it sits under."""
    for st in stmts:
        if isinstance(st, ast.Assign):
            yield st, path
        elif isinstance(st, ast.If):
            yield from _assignments(st.body, path + ((st.test, True),))
            yield from _assignments(st.orelse, path + ((st.test, False),))
        elif isinstance(st, (ast.With, ast.AsyncWith, ast.For, ast.AsyncFor, ast.While, ast.Try)):
            for part in (st.body, getattr(st, "orelse", []), getattr(st, "finalbody", []),
                         *[h.body for h in getattr(st, "handlers", [])]):
                yield from _assignments(part, path)


def tests(test: ast.expr, holds: bool, aliases: dict | None = None) -> frozenset:
    """What a branch knows of its `if` test: (text, holds) per conjunct (`not x` read as x, flipped);
    a local that stands for a test (audit/aliases.py) read as what it stands for."""
    if aliases:
        test = substituted(test, aliases)
    if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
        return tests(test.operand, not holds)
    if isinstance(test, ast.BoolOp) and isinstance(test.op, ast.And if holds else ast.Or):
        return frozenset().union(*(tests(v, holds) for v in test.values))
    return frozenset({(" ".join(ast.unparse(test).split()), holds)})


def block_sum_lines(cls: ast.ClassDef, blocks: set[str], tree: ast.Module | None = None) -> set[int]:
    """The lines of the all-reduces in cls's methods that sum the output of a block it holds (not
    those under a test that the block's own assignment contradicts: `if self.is_layer_sparse:
    self.mlp = Block(...)` and an all-reduce under `not self.is_layer_sparse` sums the dense MLP)."""
    return block_sums(cls, blocks, tree)[0]


def block_sums(cls: ast.ClassDef, blocks: set[str], tree: ast.Module | None = None) -> tuple[set[int], set[int]]:
    """block_sum_lines, and the lines of the all-reduces of the same attribute's output under a test
    that its block assignment contradicts: there the attribute holds another module (the dense
    MLP of a layer that is not sparse), so the sum is not of the experts' output."""
    held = block_attrs(cls, blocks, tree)
    if not held:
        return set(), set()
    other = [frozenset((t, not h) for t, h in path) for _l, path in held.values()]
    methods = {f.name: f for f in cls.body if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))}
    flow = _Flow(set(held), methods, frozenset.intersection(*other))
    while True:
        before = (len(flow.returns), sum(map(len, flow.fed.values())), len(flow.lines))
        for name, fn in methods.items():
            flow.method(name, fn)
        if before == (len(flow.returns), sum(map(len, flow.fed.values())), len(flow.lines)):
            return flow.lines, flow.other - flow.lines


class _Flow:
    """One pass over a method's statements in source order, carrying the names that hold a
    block's output; repeated over the class's methods until nothing more is learnt."""

    def __init__(self, attrs: set[str], methods: dict, excluded: frozenset = frozenset()):
        self.attrs, self.methods, self.excluded = attrs, methods, excluded
        self.path: frozenset = frozenset()
        """The `if` tests the statement being read sits under."""
        self.returns: set[str] = set()
        """Methods that return a block's output."""
        self.fed: dict[str, set[str]] = {}
        """method -> its parameters some call passes a block's output."""
        self.lines: set[int] = set()
        self.other: set[int] = set()
        """All-reduces of a held attribute's output under a test its block assignment contradicts."""
        self.current = ""

    def method(self, name: str, fn) -> None:
        self.current = name
        self.block(fn.body, set(self.fed.get(name, ())))

    def block(self, stmts, held: set[str]) -> set[str]:
        for st in stmts:
            held = self.statement(st, held)
        return held

    def statement(self, st, held: set[str]) -> set[str]:
        if isinstance(st, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            return held
        if isinstance(st, _COMPOUND):
            self.scan(_heads(st), held)
            if isinstance(st, (ast.With, ast.AsyncWith)):
                return self.block(st.body, held)
            if isinstance(st, (ast.For, ast.AsyncFor, ast.While)):  # zero, one or more rounds
                once = held | self.block(st.body, set(held))
                return once | self.block(st.body, set(once)) | self.block(st.orelse, set(once))
            if isinstance(st, ast.If):
                aliases = method_aliases(self.methods[self.current])
                return self.branch(st.body, held, tests(st.test, True, aliases)) | \
                    self.branch(st.orelse, held, tests(st.test, False, aliases))
            parts = [st.body, st.orelse] + [h.body for h in getattr(st, "handlers", [])]
            out = set().union(*(self.block(part, set(held)) for part in parts))
            return self.block(getattr(st, "finalbody", []), out)
        self.scan([st], held)
        return self.assign(st, held)

    def branch(self, stmts, held: set[str], known: frozenset) -> set[str]:
        outer, self.path = self.path, self.path | known
        try:
            return self.block(stmts, set(held))
        finally:
            self.path = outer

    def assign(self, st, held: set[str]) -> set[str]:
        value = getattr(st, "value", None)
        if isinstance(st, ast.Return):
            if value is not None and self.carries(value, held):
                self.returns.add(self.current)
            return held
        if not isinstance(st, (ast.Assign, ast.AugAssign, ast.AnnAssign)) or value is None:
            return held
        targets = st.targets if isinstance(st, ast.Assign) else [st.target]
        names = {n.id for t in targets for n in walk(t) if isinstance(n, ast.Name)}
        carried = self.carries(value, held)
        if isinstance(st, ast.AugAssign):  # x += y: x still holds what it held
            return held | names if carried else held
        return (held | names) if carried else (held - names)

    def carries(self, expr, held: set[str]) -> bool:
        for n in walk(expr):
            if isinstance(n, ast.Name) and n.id in held:
                return True
            if isinstance(n, ast.Call) and self_attr(n.func) in self.attrs | self.returns:
                return True
        return False

    def scan(self, nodes, held: set[str]) -> None:
        """Record the all-reduces of a block's output, and what each call of a method is passed."""
        for node in nodes:
            for n in walk(node):
                if not isinstance(n, ast.Call):
                    continue
                args = [*n.args, *(k.value for k in n.keywords)]
                if call_name(n) in REDUCE_CALLS and any(self.carries(a, held) for a in args):
                    (self.other if self.path & self.excluded else self.lines).add(n.lineno)
                callee = self.methods.get(self_attr(n.func) or "")
                if callee is not None:
                    self.feed(callee, n, held)

    def feed(self, callee, call: ast.Call, held: set[str]) -> None:
        params = [a.arg for a in (*callee.args.posonlyargs, *callee.args.args)][1:]
        fed = self.fed.setdefault(callee.name, set())
        fed |= {p for p, a in zip(params, call.args) if self.carries(a, held)}
        fed |= {k.arg for k in call.keywords if k.arg and self.carries(k.value, held)}


def _heads(st) -> list[ast.AST]:
    """The expressions a compound statement evaluates before its bodies."""
    if isinstance(st, (ast.If, ast.While)):
        return [st.test]
    if isinstance(st, (ast.For, ast.AsyncFor)):
        return [st.iter]
    if isinstance(st, (ast.With, ast.AsyncWith)):
        return [i.context_expr for i in st.items]
    return []
