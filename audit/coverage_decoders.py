"""Coverage rules read per decoder class, for audit/coverage.py: where the MoE block's own sum is
switched off (or declared complete) by the decoder that declares the stage boundaries.

- **reset after construction**: a decoder sets `self.<attr>.reduce_results = False` on the block it
  holds in `<attr>` (deepseek_v4 0.5.22+: `DeepseekV4CudaDecoderLayer`, 0.5.23 line 3559). Each
  decoder of the block (the class that builds it and its subclasses in the file) is read on its
  own: one that declares stage boundaries and switches the block's sum off delegates to the
  boundary; one that keeps the block as built runs the block's own (judged) sites.
- **output_complete**: the FFN stage is declared with `declare_ffn(..., output_complete=X)` (kimi_k3
  0.5.22+, line 2507 in 0.5.23): where X holds, the FFN's compute completes its own sum (its
  all-reduces inside the block) and the boundary owes none; elsewhere the boundary sums.
- **switched off at the call**: the block's forward sums only when one of its parameters is true
  (every collective of it is reached only under that parameter), and every call of the block in
  the decoder passes it False (inkling 0.5.16+: `InklingMoE.forward(..., reduce=True)`, called with
  `reduce=False` in `InklingDecoderLayer`; the block lives in models/inkling_common/moe.py).
"""
from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field

from .coverage_facts import Facts
from .coverage_rows import Evidence
from .extract import Cond, _Walker, call_name

COLLECTIVE = re.compile(r"all_reduce|reduce_scatter")
"""A collective that sums over ranks, by its function's name (SGLang's and a model's own kernels:
inkling_common's symm_mem_all_reduce, reduce_scatter_hidden)."""


@dataclass
class Decoders:
    """A block's decoders in one file, each read on its own."""
    boundary: list[str] = field(default_factory=list)
    """Declare stage boundaries and switch the block's own sum off."""
    as_built: list[str] = field(default_factory=list)
    """Declare no stage boundaries and keep the block's reduce_results as built: its own sites sum."""
    twice: list[str] = field(default_factory=list)
    """Declare stage boundaries and keep the block's own sum: the block and the boundary both sum."""
    never: list[str] = field(default_factory=list)
    """Switch the block's sum off and declare no stage boundaries: nothing sums."""
    evidence: list[Evidence] = field(default_factory=list)


def family(f: Facts, root: str) -> list[str]:
    """root and the classes of the file that subclass it, directly or not."""
    out = [root]
    for name in out:
        out += [c for c, (bases, _l, _fw) in f.bases.items()
                if c not in out and any(b.rsplit(".", 1)[-1] == name for b in bases)]
    return out


def _chain(f: Facts, leaf: str, members: set[str]) -> list[str]:
    """leaf and its ancestors among members (the classes whose __init__ it runs)."""
    out = [leaf]
    for name in out:
        out += [b.rsplit(".", 1)[-1] for b in f.bases.get(name, ([], 0, True))[0]
                if b.rsplit(".", 1)[-1] in members and b.rsplit(".", 1)[-1] not in out]
    return out


def decoders_of(f: Facts, block: str) -> Decoders:
    """Each decoder of block (a name as this file calls it) that has no subclass here, read on its own."""
    d = Decoders()
    for builder in sorted(f.builders.get(block, ())):
        attrs = {a for a, called in f.holds.get(builder, {}).items() if block in called}
        members = family(f, builder)
        leaves = [c for c in members if not any(c in _chain(f, o, set(members))[1:] for o in members)]
        for leaf in leaves:
            chain = _chain(f, leaf, set(members))
            resets = [(ln, a, v) for c in chain for ln, a, v in f.resets.get(c, []) if a in attrs]
            off = [ln for ln, _a, v in resets if v is False]
            stages = [f.stage_classes[c] for c in chain if c in f.stage_classes]
            kind = (d.boundary if stages else d.never) if off else (d.twice if stages else d.as_built)
            kind.append(leaf)
            if stages:
                d.evidence.append(Evidence(f.rel, stages[0], f"{leaf} declares stage boundaries"))
            if off:
                d.evidence.append(Evidence(f.rel, off[0], f"{leaf} sets its block's reduce_results = False"))
    return d


def completes_itself(f: Facts) -> list[Evidence]:
    """Where the file's FFN stage is declared output_complete (a constant True or an expression)."""
    return [Evidence(f.rel, ln, "the FFN stage is declared output_complete: where it holds, the block's "
                                "compute completes its own sum and the boundary owes none")
            for ln, v in f.complete_ffn if v is not False]


class _Calls(_Walker):
    """The walker of extract.py, recording the calls pick takes (with the conditions they run under)."""

    def __init__(self, cls, fn, pick):
        super().__init__(cls, fn)
        self.pick, self.calls = pick, []

    def scan(self, node, conds, env, problem):
        from .extract import walk
        for n in walk(node):
            if isinstance(n, ast.Call) and self.pick(n):
                self.calls.append((n, list(conds)))


def _methods(cls: ast.ClassDef):
    return [f for f in cls.body if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))]


def sum_switch(cls: ast.ClassDef) -> tuple[str, list[int]] | None:
    """(param, lines): every collective of the block's forward runs only when `param` (a parameter
    of forward) is true; None where one runs without it, or the forward has none."""
    fwd = next((f for f in _methods(cls) if f.name == "forward"), None)
    if fwd is None:
        return None
    w = _Calls(cls.name, fwd, lambda n: bool(COLLECTIVE.search(call_name(n) or "")))
    w.run()
    if not w.calls:
        return None
    params = {a.arg for a in (*fwd.args.args, *fwd.args.kwonlyargs)} - {"self"}
    gates = [{c.test.id for c in conds if c.positive and isinstance(c.test, ast.Name)} |
             {c.test.operand.id for c in conds if not c.positive and isinstance(c.test, ast.UnaryOp)
              and isinstance(c.test.op, ast.Not) and isinstance(c.test.operand, ast.Name)}
             for _n, conds in w.calls]
    common = set.intersection(*gates) & params
    if not common:
        return None
    return sorted(common)[0], sorted(n.lineno for n, _c in w.calls)


def calls_switch_off(decoder: ast.ClassDef, attrs: set[str], block: str, param: str) -> tuple[list[int], int]:
    """(lines, 0): the decoder's calls of the block (self.<attr>(...)), each passing param=False;
    ([], line) for the first that does not (a call in a branch where `isinstance(self.<attr>,
    <block>)` is false is another layer's, not the block's); ([], 0) where it calls it nowhere."""
    lines = []
    for fn in _methods(decoder):
        w = _Calls(decoder.name, fn, lambda n: isinstance(n.func, ast.Attribute) and
                   isinstance(n.func.value, ast.Name) and n.func.value.id == "self" and n.func.attr in attrs)
        w.run()
        for call, conds in w.calls:
            if _not_the_block(conds, block):
                continue
            passed = next((k.value for k in call.keywords if k.arg == param), None)
            if not (isinstance(passed, ast.Constant) and passed.value is False):
                return [], call.lineno
            lines.append(call.lineno)
    return lines, 0


def _not_the_block(conds: list[Cond], block: str) -> bool:
    for c in conds:
        t = c.test
        if isinstance(t, ast.Call) and call_name(t) == "isinstance" and len(t.args) == 2:
            names = {ast.unparse(x).rsplit(".", 1)[-1] for x in (t.args[1].elts if isinstance(t.args[1], ast.Tuple)
                                                                 else [t.args[1]])}
            if (block in names) != c.positive:
                return True
    return False
