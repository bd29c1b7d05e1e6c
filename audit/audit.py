"""Audit one SGLang release: every model file's post-experts all-reduce sites, judged in the
semantics of that release (its own Q, V and helper), against the absorbers its decoder has.
"""
from __future__ import annotations

import ast
import time
from dataclasses import dataclass, field

from sumonce.proto import catalogue, models_0521, models_0523
from sumonce.proto.eras import Era
from sumonce.procs import cyclic_gc_off

from . import memo
from . import prefetch as prefetched
from .assess import judge_site, settle
from .atoms import PARALLEL_FIELDS, SIZE_GETTERS
from .binding import FLAG_CALLS, bindings
from .context import Caller, Context
from .coverage import Coverage, cover
from .decoder import architectures_of, boundary_mismatches, decoder_of, mismatches, mismatches_0521
from .era import UtilsUnparsable, detect
from .extract import REDUCE_CALLS, forward_roots, sites_in, walk
from .imports import canonical_source
from .moe_flow import imported_blocks
from .release import Release, read_release
from .source import UTILS, Source
from .verdict import AuditedSite
from .release_world import AuditWorld

V_DEF = "def should_use_dp_reduce_scatterv"


@dataclass
class Report:
    label: str
    root: str
    release: Release
    sites: list[AuditedSite] = field(default_factory=list)
    files: int = 0
    unparsed: list[dict] = field(default_factory=list)
    decoders: list[dict] = field(default_factory=list)
    seconds: float = 0.0
    era: Era | None = None
    """The era picked from the code (audit/era.py); None where layers/moe/utils.py could not be read."""
    era_reason: str = ""
    coverage: Coverage = field(default_factory=Coverage)
    """One row per MoE model file (audit/coverage.py)."""


def class_sizes(tree: ast.Module, wanted: set[str]) -> dict[str, dict]:
    """Per class: self.<attr> -> the group its size is (tp, ep, moe_tp), or None where the
    attribute is assigned from something other than a parallel-state getter."""
    out = {}
    for cls in _classes(tree, wanted):
        sizes: dict = {}
        for n in _statements(cls):
            if not (isinstance(n, ast.Assign) and len(n.targets) == 1):
                continue
            t = n.targets[0]
            if isinstance(t, ast.Attribute) and isinstance(t.value, ast.Name) and t.value.id == "self":
                kind = _size_kind(n.value)
                if kind is not None or t.attr.endswith("_size") or t.attr in sizes:
                    sizes[t.attr] = kind if sizes.get(t.attr, kind) == kind else None
        out[cls.name] = sizes
    return out


def _statements(node: ast.AST) -> list[ast.stmt]:
    """Every statement under node, in ast.walk's order (an assignment is never inside an expression)."""
    out, i = [node], 0
    while i < len(out):
        n = out[i]
        i += 1
        for f in ("body", "orelse", "handlers", "finalbody", "cases"):
            out += [x for x in getattr(n, f, ()) if isinstance(x, (ast.stmt, ast.excepthandler, ast.match_case))]
    return out


def _classes(tree: ast.Module, wanted: set[str]) -> list[ast.ClassDef]:
    """The classes named in `wanted`: at module level or inside classes; the whole tree is walked
    only where one is defined elsewhere (inside a function)."""
    todo = [n for n in tree.body if isinstance(n, ast.ClassDef)]
    for cls in todo:  # breadth first, as ast.walk
        todo += [n for n in cls.body if isinstance(n, ast.ClassDef)]
    found = [c for c in todo if c.name in wanted]
    if {c.name for c in found} >= wanted:
        return found
    return [n for n in walk(tree) if isinstance(n, ast.ClassDef) and n.name in wanted]


def _size_kind(v: ast.expr):
    """tp/ep/moe_tp for a parallel-state getter or get_parallel().<field>; None otherwise."""
    if isinstance(v, ast.Call) and isinstance(v.func, ast.Name):
        return SIZE_GETTERS.get(v.func.id)
    if isinstance(v, ast.Attribute) and v.attr in PARALLEL_FIELDS:
        base = v.value
        if (isinstance(base, ast.Call) and ast.unparse(base.func) == "get_parallel") or \
                (isinstance(base, ast.Name) and base.id == "parallel"):
            return PARALLEL_FIELDS[v.attr]
    return None


def catalogued(stem: str, archs: tuple[str, ...]):
    for m in catalogue.MODELS:
        if m.name == stem or set(archs) & set(m.architectures):
            return m
    return None


def audit(src: Source, prefetch: bool = True) -> Report:
    """prefetch: read the coverage facts of the files the audit does not parse in a forked child
    (audit/prefetch.py), where forking is safe and there is a second core; the report is the same."""
    src = canonical_source(src)  # NOTE: aliased SGLang imports read under their names (audit/imports.py)
    # NOTE: the audit allocates ASTs and z3 terms by the hundred thousand and frees nothing until
    # it ends: the cyclic collector's passes over them are a fifth of its time.
    with cyclic_gc_off():
        try:
            return _audit(src, prefetch)
        finally:
            memo.done()


def _audit(src: Source, prefetch: bool) -> Report:
    start = time.perf_counter()
    reducing = _reducing(src)
    parsed = {rel: rel in reducing for rel in src.models()
              if rel in reducing or _builds_blocks_of(src.files[rel], reducing)}
    helper = prefetched.start(src, set(parsed)) if prefetch else None
    try:
        return _judge(src, start, parsed, helper)
    finally:
        if helper is not None:
            helper.close()


def _judge(src: Source, start: float, parsed: dict[str, bool], helper) -> Report:
    era, reason = _era(src)
    text = src.utils()
    w = AuditWorld(has_v=text is not None and V_DEF in text, era=era)
    try:
        release = read_release(w, text)
    except (SyntaxError, ValueError, RecursionError, MemoryError) as e:
        release, text = read_release(w, None), None
        src.unread[UTILS] = f"does not parse ({getattr(e, 'msg', None) or type(e).__name__})"
    rep = Report(src.label, src.root, release, era=era, era_reason=reason)
    # NOTE: a file not read is a failure of the audit, reported beside the files that do not parse
    rep.unparsed += [{"file": rel, "line": 0, "error": why} for rel, why in sorted(src.unread.items())]
    trees = {}
    rep.files = len(src.models())
    for rel, reduces in parsed.items():
        body = src.files[rel]
        try:
            trees[rel] = memo.parse(body), body, reduces
        except SyntaxError as e:
            if reduces:
                rep.unparsed.append({"file": rel, "line": e.lineno or 0, "error": e.msg})
        except ValueError as e:  # e.g. a NUL byte, on Pythons that do not call it a SyntaxError
            if reduces:
                rep.unparsed.append({"file": rel, "line": 0, "error": str(e)})
        except (RecursionError, MemoryError):
            if reduces:
                rep.unparsed.append({"file": rel, "line": 0, "error": "nested too deeply to audit"})
    binds = bindings({rel: (t, b) for rel, (t, b, _r) in trees.items()})
    callers = _Callers(trees)
    judged = []
    for rel, (tree, body, reduces) in trees.items():
        if not reduces:
            continue
        try:
            judged += _audit_file(w, rep, rel, tree, body, binds, callers, imported_blocks(tree, src.files, trees))
        except (RecursionError, MemoryError):
            rep.unparsed.append({"file": rel, "line": 0, "error": "nested too deeply to audit"})
    settle(w, judged)
    rep.sites = [site for site, _o in judged]
    rep.coverage = cover(src, rep.sites, {rel: t for rel, (t, _b, _r) in trees.items()},
                         helper.facts() if helper else None)
    rep.seconds = time.perf_counter() - start
    return rep


def _era(src: Source) -> tuple[Era | None, str]:
    """The era (TargetError, exit 2, for a missing utils.py or a shape no era has); a utils.py that
    cannot be read or parsed is a file not audited (exit 4), judged in no era."""
    if UTILS in src.unread:
        return None, f"no era: {UTILS} could not be read ({src.unread[UTILS]})"
    try:
        return detect(src)
    except UtilsUnparsable as e:
        return None, f"no era: {e}"


def callables(tree: ast.Module) -> dict[str, dict]:
    """Per class ("" for none): what a guard may call and the audit may inline, by the text of the
    callee (`self.name` for the class's methods, `name` for the module's functions)."""
    module = {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)}
    out = {"": module}
    for cls in (n for n in tree.body if isinstance(n, ast.ClassDef)):
        out[cls.name] = module | {f"self.{f.name}": f for f in cls.body if isinstance(f, ast.FunctionDef)}
    return out


def _reducing(src: Source) -> set[str]:
    return {rel for rel in src.models() if any(name + "(" in src.files[rel] for name in REDUCE_CALLS)}


def _builds_blocks_of(body: str, reducing: set[str]) -> bool:
    """A decoder file that asks for F or R and imports from a model file with all-reduces: it may
    build that file's blocks (qwen3_next builds qwen2_moe's)."""
    if not any(name in body for name in FLAG_CALLS):
        return False
    return any(f"sglang.srt.models.{rel.rsplit('/', 1)[-1][:-3]} import" in body for rel in reducing)


class _Callers:
    """The Caller (decoder facts) of each model file, read once."""

    def __init__(self, trees):
        self.trees, self.known = trees, {}

    def __call__(self, rel: str) -> Caller:
        if rel not in self.known:
            tree = self.trees[rel][0]
            stem = rel.rsplit("/", 1)[-1][:-3]
            cat = catalogued(stem, architectures_of(tree))
            archs = architectures_of(tree) or (cat.architectures if cat else ())
            self.known[rel] = Caller(rel, stem, archs, decoder_of(tree, self.trees[rel][1]))
        return self.known[rel]


def _decoder_mismatches(era, found, cat, body: str) -> list[str]:
    """The decoder's facts against proto's for the era: the 0.5.11 catalogue's communicator facts
    up to 0.5.20; 0.5.21 its stage boundary and sum call (proto.models_0521); from 0.5.22 whether it
    sums at the stage boundary (proto.models_0523)."""
    if era == Era.V0_5_23:
        return boundary_mismatches(body, models_0523.era_model(cat.name).sums_at == models_0523.SumsAt.BOUNDARY)
    if era == Era.V0_5_21:
        m = models_0521.era_model(cat.name)
        return mismatches_0521(body, m.sums_in.name, m.boundary)
    return mismatches(found, cat.decoder)


def _audit_file(w, rep: Report, rel: str, tree, body: str, binds, callers, imported=frozenset()) -> list:
    stem = rel.rsplit("/", 1)[-1][:-3]
    # NOTE: a method the decoders pass F or R into is after the experts even if it calls none.
    raw = [s for s in sites_in(tree, body, frozenset(imported)) if s.after_experts or binds.of(rel, s.cls, s.method)]
    if not raw:
        return []
    sizes = class_sizes(tree, {s.cls.split(".")[-1] for s in raw})
    found, cat = callers(rel).decoder, catalogued(stem, architectures_of(tree))
    entry = {"model": stem, "decoder": found.__dict__ | {"block_F": found.block_F.value}}
    if cat is not None:
        entry["catalogued_as"] = cat.name
        entry["mismatches"] = _decoder_mismatches(w.era, found, cat, body)
    rep.decoders.append(entry)
    out, roots = [], forward_roots(tree, {s.cls.split('.')[-1] for s in raw})
    defs = callables(tree)
    for s in raw:
        s.callables = defs.get(s.cls.split(".")[-1], defs[""])
        bound = binds.of(rel, s.cls, s.method) if not Context.decoder_level(s) else []
        contexts = [Context(callers(b.file), b.flags) for b in bound] or [Context(callers(rel), None)]
        root = roots.get((s.cls.split(".")[-1], s.method), "")
        site, outcomes = judge_site(w, rep.release, s, sizes.get(s.cls.split(".")[-1], {}), stem, contexts, root)
        site.file = rel
        out.append((site, outcomes))
    return out
