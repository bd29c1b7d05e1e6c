"""The coverage facts of the model files the audit itself does not parse, read in a forked child
while the audit judges its sites (a second core: `sumonce audit` of one release).

Coverage (audit/coverage.py) needs the facts of every MoE model file; most of them hold no site, so
the audit proper never parses them. Their facts (audit/coverage_facts.py: a pure function of a
file's path and text) are read in a child forked at the audit's start and sent back when coverage
asks; a file the child did not read (or a child that failed) is read in the audit's process as
before, so the rows are the same either way. Used only where forking is safe and the machine has a
second core; `--history` workers already keep every core busy and never start one.
"""
from __future__ import annotations

import multiprocessing
import os

from sumonce.procs import fork_is_safe

from . import coverage_facts as cf
from . import memo

MIN_FILES = 8
"""Fewer files than this are read in the audit's process (a fork costs more than they do)."""


def wanted(src, parsed: set[str]) -> list[str]:
    """The model and sub-package files whose facts coverage may ask for (they name an experts
    layer or call a fused-experts kernel), less those the audit parses itself."""
    rels = [*src.models(), *src.subpackages()]
    return [r for r in rels if r not in parsed and
            (cf.names_experts(src.files[r]) or any(k + "(" in src.files[r] for k in cf.KERNELS))]


def usable() -> bool:
    """Forking is safe, a second core exists, and this is no daemonic worker (which may not start
    children)."""
    return fork_is_safe() and len(os.sched_getaffinity(0)) > 1 and not multiprocessing.current_process().daemon


class Prefetch:
    """A forked child reading the facts of rels; facts() waits for them ({} if the child failed)."""

    def __init__(self, src, rels: list[str]):
        ctx = multiprocessing.get_context("fork")
        self.receive, send = ctx.Pipe(duplex=False)
        self.child = ctx.Process(target=_read, args=({r: src.files[r] for r in rels}, send), daemon=True)
        self.child.start()
        send.close()
        self.got: dict | None = None

    def facts(self) -> dict:
        if self.got is None:
            try:
                self.got = self.receive.recv()
            except (EOFError, OSError):
                self.got = {}  # NOTE: what the child did not send is read here, as without it
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
    return Prefetch(src, rels) if len(rels) >= MIN_FILES and usable() else None


def _read(files: dict[str, str], send) -> None:
    import gc
    gc.disable()  # NOTE: the child lives for one pass and frees nothing before it ends
    out = {}
    for rel, text in files.items():
        try:
            out[rel] = cf.read(rel, memo.parse(text))
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            out[rel] = None
    send.send(out)
    send.close()
