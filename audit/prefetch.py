"""The coverage facts of the model files, read in a forked child while the audit judges its sites
(a second core: `sumonce audit` of one release).

Coverage (audit/coverage.py) needs the facts of every MoE model file; most of them hold no site, so
the audit proper never parses them. Their facts (audit/coverage_facts.py: a pure function of a
file's path and text) are read in a child forked at the audit's start and sent back when coverage
asks. The child first reads the files only it would parse (the MoE files the audit does not parse,
and the files their decoders take stage declarations from), then the files the audit parses itself;
when coverage asks, the audit's process reads the files the child has not reached yet, from the end
of the same list (its own files first: their trees are in hand), so the two finish about together
(Prefetch says how they share the list). A file neither read (or a child that failed) is read by
coverage as before, so the rows are the same either way. Used only where forking is safe and the machine has a second core;
`--history` workers already keep every core busy and never start one.
"""
from __future__ import annotations

import multiprocessing
import os

from sumonce.procs import fork_is_safe

from . import coverage_facts as cf
from . import memo
from .source import MODELS_DIR

MIN_FILES = 8
"""Fewer files than this are read in the audit's process (a fork costs more than they do)."""


def wanted(src, parsed: set[str]) -> list[str]:
    """The model and sub-package files whose facts coverage asks for, less those the audit parses
    itself: those that name an experts layer or call a fused-experts kernel."""
    return [r for r in (*src.models(), *src.subpackages()) if r not in parsed and
            (cf.names_experts(src.files[r]) or any(k + "(" in src.files[r] for k in cf.KERNELS))]


def declaring(src, taken: set[str]) -> list[str]:
    """The other model files that declare an FFN stage: a decoder may take its stage declarations
    from one (coverage_boundary's _declared reads its facts). The child reads those a file it
    has imports from (imported(), a text search it makes, not the audit)."""
    return [r for r in (*src.models(), *src.subpackages()) if r not in taken and "declare_ffn" in src.files[r]]


def imported(rel: str, texts) -> bool:
    """Does one of the texts import from the model module `rel` (by its dotted name)?"""
    name = rel[len(MODELS_DIR):-3].replace("/", ".")
    head, _, last = name.rpartition(".")
    forms = (f"models.{name} import", f"models{'.' + head if head else ''} import {last}")
    return any(form in t for t in texts for form in forms)


def usable() -> bool:
    """Forking is safe, a second core exists, and this is no daemonic worker (which may not start
    children)."""
    return fork_is_safe() and len(os.sched_getaffinity(0)) > 1 and not multiprocessing.current_process().daemon


class Prefetch:
    """A forked child reading facts, the audit's process taking its share when it asks (facts()).

    The child first reads those of `declare` that one of `rels` or `shared` imports from; then it
    walks the list `rels` + `shared` from the front, marking each file in a shared byte array
    before it reads it, and stops at a file already marked. facts() walks the same list from the
    back, marking and reading each file not yet marked (the audit's own files first: their trees
    are in hand), until it meets one the child marked; then it waits for what the child read ({}
    if the child failed: coverage reads the rest). The facts are a pure function of a file's path
    and text, so a file both happen to read gives the same facts twice, and no lock is needed."""

    def __init__(self, src, rels: list[str], shared: list[str] = (), declare: list[str] = ()):
        ctx = multiprocessing.get_context("fork")
        self.receive, send = ctx.Pipe(duplex=False)
        self.files = [(r, src.files[r]) for r in (*rels, *shared)]
        self.marks = ctx.RawArray("b", len(self.files))
        self.child = ctx.Process(target=_read, daemon=True, args=(
            self.files, self.marks, send, {r: src.files[r] for r in declare}))
        self.child.start()
        send.close()
        self.got: dict | None = None

    def facts(self) -> dict:
        if self.got is None:
            mine = {}
            for i in reversed(range(len(self.files))):
                if self.marks[i]:
                    break
                self.marks[i] = 2
                rel, text = self.files[i]
                mine[rel] = _facts(rel, text)
            try:
                self.got = self.receive.recv()
            except (EOFError, OSError):
                self.got = {}  # NOTE: what neither read is read by coverage, as without a child
            self.got.update(mine)
            self.receive.close()
            self.child.join()
        return self.got

    def close(self) -> None:
        """Ends the child if its facts were never asked for (the audit stopped early)."""
        if self.got is None:
            self.child.terminate()
            self.child.join()
            self.receive.close()
            self.got = {}


def start(src, parsed: set[str]) -> Prefetch | None:
    rels = wanted(src, parsed)
    if len(rels) < MIN_FILES or not usable():
        return None
    try:
        return Prefetch(src, rels, sorted(parsed), declaring(src, set(rels) | parsed))
    except OSError:  # NOTE: no shared memory or no process to be had: every file is read here
        return None


def _read(files: list[tuple[str, str]], marks, send, declare: dict[str, str] | None = None) -> None:
    import gc
    gc.disable()  # NOTE: the child lives for one pass and frees nothing before it ends
    texts = [text for _rel, text in files]
    out = {r: _facts(r, t) for r, t in (declare or {}).items() if imported(r, texts)}
    for i, (rel, text) in enumerate(files):
        if marks[i]:
            break
        marks[i] = 1
        out[rel] = _facts(rel, text)
    send.send(out)
    send.close()


def _facts(rel: str, text: str):
    try:
        return cf.read(rel, memo.parse(text))
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None
