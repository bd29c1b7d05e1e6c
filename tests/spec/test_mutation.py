"""Mutation: every single-term deletion or negation in the helper is caught by some property."""
import ast
import inspect
import linecache
import sys
import textwrap

import pytest

from sumonce.proto import predicates
from sumonce.spec.check import run_all
from sumonce.spec.properties import Kind, all_properties

HELPER = predicates.should_skip_post_experts_all_reduce
KINDS = {Kind.LEMMA, Kind.DRIFT, Kind.REFACTOR, Kind.ONCE}


def _terms(tree):
    """Every boolean leaf (a name or a call) in the helper's conditions and return value."""
    body = tree.body[0].body
    out = []
    for node in ast.walk(ast.Module(body=[s for s in body if not isinstance(s, ast.Expr)], type_ignores=[])):
        if isinstance(node, ast.BoolOp):
            out += [v for v in node.values if isinstance(v, (ast.Name, ast.Call))]
        elif isinstance(node, ast.If) and isinstance(node.test, (ast.Name, ast.Call)):
            out.append(node.test)
    return out


def mutants():
    source = textwrap.dedent(inspect.getsource(HELPER))
    count = len(_terms(ast.parse(source)))
    for index in range(count):
        for how in ("delete", "negate"):
            yield index, how, _mutate(source, index, how)


class _Mutator(ast.NodeTransformer):
    def __init__(self, target, how):
        self.target, self.how = target, how

    def visit_BoolOp(self, node):
        self.generic_visit(node)
        if self.how == "delete" and any(v is self.target for v in node.values):
            rest = [v for v in node.values if v is not self.target]
            return rest[0] if len(rest) == 1 else ast.BoolOp(op=node.op, values=rest)
        return node

    def visit(self, node):
        if node is self.target and self.how == "negate":
            return ast.UnaryOp(op=ast.Not(), operand=node)
        if node is self.target and self.how == "delete":  # a whole `if` test: the clause never fires
            return ast.Constant(value=False)
        return super().visit(node)


def _mutate(source, index, how):
    tree = ast.parse(source)
    target = _terms(tree)[index]
    tree = ast.fix_missing_locations(_Mutator(target, how).visit(tree))
    text = ast.unparse(tree)
    name = f"<mutant-{index}-{how}>"
    linecache.cache[name] = (len(text), None, text.splitlines(True), name)
    namespace = dict(vars(predicates))
    exec(compile(text, name, "exec"), namespace)
    return text, namespace[HELPER.__name__]


def _install(monkeypatch, fn):
    for mod in list(sys.modules.values()):
        name = getattr(mod, "__name__", "")
        if name.startswith(("sumonce.proto", "sumonce.spec")):
            for attr, value in list(vars(mod).items()):
                if value is HELPER:
                    monkeypatch.setattr(mod, attr, fn)


def test_the_helper_has_five_terms():
    assert len(list(mutants())) == 10


@pytest.mark.parametrize("index,how,mutant", list(mutants()), ids=lambda v: str(v) if not isinstance(v, tuple) else "")
def test_mutant_is_caught(monkeypatch, index, how, mutant):
    text, fn = mutant
    _install(monkeypatch, fn)
    results = run_all([p for p in all_properties(era="0.5.11") if p.kind in KINDS], timeout_ms=10_000)
    caught = [r.prop.name for r in results if not r.passed]
    assert caught, f"no property catches this mutant:\n{text}"


def test_unmutated_helper_passes_the_same_properties():
    results = run_all([p for p in all_properties(era="0.5.11") if p.kind in KINDS], timeout_ms=10_000)
    assert [r.prop.name for r in results if not r.passed] == []
