"""Audit one SGLang release: every model file's post-experts all-reduce sites, judged in the
semantics of that release (its own Q, V and helper), against the absorbers its decoder has.
"""
from __future__ import annotations

import ast
import time
from dataclasses import dataclass, field

from sumonce.proto import catalogue

from .atoms import PARALLEL_FIELDS, SIZE_GETTERS
from .decoder import architectures_of, decoder_of, mismatches
from .effect import build_model, effect
from .extract import ALL_REDUCES, sites_in
from .helper import Release, read_release
from .judge import DIFFERS, Verdict, judge, unknown_verdict
from .source import UTILS, Source
from sumonce.spec.readable import Unknown
from .world import AuditWorld

V_DEF = "def should_use_dp_reduce_scatterv"


@dataclass
class Report:
    label: str
    root: str
    release: Release
    sites: list[Verdict] = field(default_factory=list)
    files: int = 0
    unparsed: list[dict] = field(default_factory=list)
    decoders: list[dict] = field(default_factory=list)
    seconds: float = 0.0


def class_sizes(tree: ast.Module, wanted: set[str]) -> dict[str, dict]:
    """Per class: self.<attr> -> the group its size is (tp, ep, moe_tp), or None where the
    attribute is assigned from something other than a parallel-state getter."""
    out = {}
    for cls in (n for n in ast.walk(tree) if isinstance(n, ast.ClassDef) and n.name in wanted):
        sizes: dict = {}
        for n in ast.walk(cls):
            if not (isinstance(n, ast.Assign) and len(n.targets) == 1):
                continue
            t = n.targets[0]
            if isinstance(t, ast.Attribute) and isinstance(t.value, ast.Name) and t.value.id == "self" \
                    and t.attr.endswith("_size"):
                kind = _size_kind(n.value)
                sizes[t.attr] = kind if sizes.get(t.attr, kind) == kind else None
        out[cls.name] = sizes
    return out


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


def audit(src: Source) -> Report:
    start = time.perf_counter()
    text = src.utils()
    w = AuditWorld(has_v=text is not None and V_DEF in text)
    try:
        release = read_release(w, text)
    except (SyntaxError, ValueError, RecursionError, MemoryError) as e:
        release, text = read_release(w, None), None
        src.unread[UTILS] = f"does not parse ({getattr(e, 'msg', None) or type(e).__name__})"
    rep = Report(src.label, src.root, release)
    # NOTE: a file not read is a failure of the audit, reported beside the files that do not parse
    rep.unparsed += [{"file": rel, "line": 0, "error": why} for rel, why in sorted(src.unread.items())]
    for rel in src.models():
        rep.files += 1
        body = src.files[rel]
        if not any(name + "(" in body for name in ALL_REDUCES):
            continue
        try:
            _audit_file(w, rep, rel, body)
        except (RecursionError, MemoryError):
            rep.unparsed.append({"file": rel, "line": 0, "error": "nested too deeply to audit"})
    rep.seconds = time.perf_counter() - start
    return rep


def _audit_file(w, rep: Report, rel: str, body: str):
    stem = rel.rsplit("/", 1)[-1][:-3]
    try:
        tree = ast.parse(body)
    except SyntaxError as e:
        rep.unparsed.append({"file": rel, "line": e.lineno or 0, "error": e.msg})
        return
    except ValueError as e:  # e.g. a NUL byte, on Pythons that do not call it a SyntaxError
        rep.unparsed.append({"file": rel, "line": 0, "error": str(e)})
        return
    raw = [s for s in sites_in(tree, body) if s.after_experts]
    if not raw:
        return
    sizes = class_sizes(tree, {s.cls.split(".")[-1] for s in raw})
    archs = architectures_of(tree)
    found, cat = decoder_of(tree), catalogued(stem, archs)
    entry = {"model": stem, "decoder": found.__dict__ | {"block_F": found.block_F.value}}
    if cat is not None:
        entry["catalogued_as"] = cat.name
        entry["mismatches"] = mismatches(found, cat.decoder)
    rep.decoders.append(entry)
    verdicts = []
    for s in raw:
        v = judge(w, rep.release, s, sizes.get(s.cls.split(".")[-1], {}), stem)
        v.file = rel
        verdicts.append(v)
    _effects(w, rep, stem, archs or (cat.architectures if cat else ()), found, verdicts)
    rep.sites += verdicts


def _effects(w, rep, stem, archs, decoder, verdicts):
    judged = [v for v in verdicts if v.formula is not None and v.path in ("ep", "tp")
              and v.group in ("tp", "ep", "moe_tp")]
    if not any(v.verdict == DIFFERS for v in judged):
        return
    real = build_model(w, stem, archs, decoder, judged, lambda v: v.formula)
    helper = build_model(w, stem, archs, decoder, judged, lambda v: v.expected)
    for v in judged:
        if v.verdict != DIFFERS:
            continue
        try:
            text, v.witness = effect(w, v, real, helper, [])
            v.detail = "; ".join(x for x in (v.detail, text) if x)
        except Unknown as e:
            unknown_verdict(v, e)
