"""Every MoE model file gets a row: where its experts' partial sums are completed, with the evidence.

A MoE model file (docs/eras.json's rule, refined here): a top-level `models/*.py` that names
`get_moe_impl_class`, `FusedMoE`, `EPMoE` or `DeepEPMoE`, or calls a fused-experts kernel
(`fused_moe`), or holds a post-experts all-reduce site. Each gets one row, in this order:
- *sites*: the audit's site verdicts for it (its own sites, or a block of another file it builds
  whose sites the audit judged within this file's decoder);
- *delegated to the layer boundary*: the decoder declares stage boundaries, the release's boundary
  sums the FFN's output (`sum_post_experts_output` in utils.py, 0.5.22+), and the MoE block returns
  the output unreduced (it has no site, or sums only when built with reduce_results=True and this
  file builds it with False);
- *no post-experts reduce needed*: the experts layer is built with reduce_results=True (FusedMoE
  all-reduces inside it);
- a file whose MoE layers are another MoE file's (a class imported from it, built or subclassed
  here) takes that file's kind, saying so;
- *unaccounted*: none of these. A failure of the audit (exit 1), never silence.
"""
from __future__ import annotations

import ast
from collections import Counter

from . import coverage_facts as cf
from .coverage_facts import unjudged as _unjudged, why_unaccounted as _why_unaccounted
from .coverage_rows import Coverage, Evidence, Row, RowKind, stem

__all__ = ["Coverage", "Evidence", "Row", "RowKind", "cover", "forget", "stem"]

BOUNDARY_SUMS = "def sum_post_experts_output"
_READ: dict[tuple[str, str], cf.Facts | None] = {}
"""A model file's facts by (path, text): they depend on nothing else, and most files are the same
text from one release to the next (`--history` audits many releases in one process)."""
_READ_MAX = 4096


def forget() -> None:
    """Drop the facts read so far (bench/audit_speed.py: each run as a fresh process)."""
    _READ.clear()


def cover(src, sites, trees: dict | None = None) -> Coverage:
    """One row per MoE model file of src, from the audit's judged sites and the files' syntax
    (trees: those the audit already parsed, by relative path)."""
    return _Cover(src, sites, trees or {}).run()


class _Cover:
    def __init__(self, src, sites, trees):
        self.src, self.sites, self.trees = src, sites, trees
        self.boundary_sums = BOUNDARY_SUMS in (src.utils() or "")
        self.facts: dict[str, cf.Facts] = {}
        self.rels = {stem(r): r for r in src.models()}
        self.rows: dict[str, Row] = {}
        self.busy: set[str] = set()
        self.carry: dict[str, set[str]] = {}
        own = {s.file for s in sites}
        self.marked = {r for r in src.models() if cf.names_experts(src.files[r])}
        self.candidates = own | self.marked | \
            {r for r in src.models() if any(k + "(" in src.files[r] for k in cf.KERNELS)}

    def run(self) -> Coverage:
        own = {s.file for s in self.sites}
        moe = [r for r in sorted(self.candidates)
               if r in own or r in self.marked or cf.is_moe_file(self.src.files[r], self._facts(r))]
        return Coverage([self.row(r) for r in moe])

    def _facts(self, rel: str) -> cf.Facts | None:
        if rel not in self.facts:
            text = self.src.files[rel]
            found = _READ.get((rel, text), _READ)
            if found is _READ:
                try:
                    found = cf.read(rel, self.trees.get(rel) or ast.parse(text))
                except (SyntaxError, ValueError, RecursionError, MemoryError):
                    found = None
                if len(_READ) >= _READ_MAX:
                    _READ.clear()
                _READ[(rel, text)] = found
            self.facts[rel] = found
        return self.facts[rel]

    def row(self, rel: str) -> Row:
        if rel not in self.rows:
            if rel in self.busy:  # an import cycle: this file's own row is still being made
                return Row(stem(rel), rel, RowKind.UNACCOUNTED, "its MoE layers come back to it through imports")
            self.busy.add(rel)
            self.rows[rel] = self._classify(rel)
            self.busy.discard(rel)
        return self.rows[rel]

    def _classify(self, rel: str) -> Row:
        f, name = self._facts(rel), stem(rel)
        if f is None:
            return Row(name, rel, RowKind.UNACCOUNTED, "does not parse (see the files not audited)")
        mine = [s for s in self.sites if s.file == rel]
        built = [s for s in self.sites if s.file != rel and name in s.callers]  # callers: stems
        for attempt in (self._boundary, self._sites, self._inside, self._borrowed):
            got = attempt(rel, f, mine, built)
            if got is not None:
                return got
        return Row(name, rel, RowKind.UNACCOUNTED, self._unaccounted_via(rel, f) or _why_unaccounted(f))

    def _unaccounted_via(self, rel, f) -> str:
        """An import of an unaccounted MoE file's classes: this file's MoE layers are probably its."""
        for name, (mod, line) in sorted(f.imports.items(), key=lambda x: x[1][1]):
            other = self.rels.get(mod)
            if other in self.candidates and other != rel and other not in self.busy and \
                    f.original.get(name, name) in self._carrying(other) and \
                    self.row(other).kind is RowKind.UNACCOUNTED:
                return f"imports {name} from {mod} (line {line}), which is unaccounted"
        return ""

    def _sites(self, rel, f, mine, built) -> Row | None:
        if not (mine or built):
            return None
        own = f"{_verdicts(mine)}" if mine else ""
        other = sorted({stem(s.file) for s in built})
        via = f"builds {', '.join(other)}'s block: {_verdicts(built)}, judged within this decoder" if built else ""
        ev = [Evidence(s.file, s.line, f"{s.method}: {s.verdict}") for s in mine + built]
        return Row(stem(rel), rel, RowKind.SITES, "; ".join(x for x in (own, via) if x), ev)

    def _declared(self, rel, f) -> list[Evidence]:
        """Where this file declares its stage boundaries and its FFN stage (itself, or through a
        function of another top-level model file: nemotron_h's make_stage_boundary)."""
        if f.stages and f.sparse_ffn:
            return [Evidence(rel, f.stages[0], "declares stage boundaries (append_stages)"),
                    Evidence(rel, f.sparse_ffn[0], "declares the FFN stage (declare_ffn)")]
        for name, calls in f.built_with.items():
            mod, _line = f.imports.get(name, (None, 0))
            other = self.rels.get(mod)
            # NOTE: a file without the text declare_ffn declares no FFN stage: not parsed for it
            g = self._facts(other) if other and "declare_ffn" in self.src.files[other] else None
            if g and name in g.stage_defs and g.sparse_ffn:
                return [Evidence(rel, calls[0][0], f"declares its stage boundary through {stem(other)}.{name}"),
                        Evidence(other, g.sparse_ffn[0], "declares the FFN stage (declare_ffn)")]
        return []

    def _boundary(self, rel, f, mine, built) -> Row | None:
        declared = self._declared(rel, f) if self.boundary_sums and not built else []
        if not declared:
            return None
        blocks = self._borrowed_blocks(rel, f)
        theirs = [s for s in self.sites if (s.file, s.method.split(".")[0]) in blocks]
        local = {(s.file, s.method.split(".")[0]): blocks[(s.file, s.method.split(".")[0])] for s in theirs}
        quiet = _built_unreduced(f, mine + theirs, {k[1]: v for k, v in local.items()})
        if (mine or theirs) and quiet is None:
            return None
        if not (f.experts or f.kernels or blocks):
            return None
        if any(_reduces(f, b)[0] is not False for b in f.experts) or _unjudged(f, mine):
            return None
        ev = list(declared)
        ev += [Evidence(rel, ln, "the FFN boundary completes the MoE output") for ln in f.ffn_exits[:2]]
        ev += [Evidence(rel, f.imports[n][1], f"builds {stem(o)}'s MoE block {f.original.get(n, n)}")
               for (o, _c), n in sorted(blocks.items())]
        summary = "the decoder declares stage boundaries; the MoE block returns its output unreduced"
        if mine or theirs:
            ev += quiet
            summary += (f" ({len(mine + theirs)} site(s) run only when the block is built with reduce_results=True;"
                        " it is not)")
        return Row(stem(rel), rel, RowKind.BOUNDARY, summary, ev)

    def _borrowed_blocks(self, rel, f) -> dict[tuple[str, str], str]:
        """(file, class) of another file's MoE block (a class that builds experts there) that this
        file builds or subclasses -> its name here."""
        out = {}
        for name, (mod, _line) in f.imports.items():
            other = self.rels.get(mod)
            g = self._facts(other) if other in self.candidates and other != rel else None
            orig = f.original.get(name, name)
            if g and orig in {b.cls for b in g.experts} and \
                    (name in f.built_with or any(name in bases for bases, _l, _fw in f.bases.values())):
                out[(other, orig)] = name
        return out

    def _inside(self, rel, f, mine, built) -> Row | None:
        got = [_reduces(f, b) for b in f.experts]
        if not f.experts or any(v is not True for v, _e in got) or _unjudged(f, mine):
            return None
        ev = [e for _v, es in got for e in es]
        return Row(stem(rel), rel, RowKind.NOT_NEEDED,
                   "the experts layer is built with reduce_results=True: FusedMoE all-reduces its output inside", ev)

    def _borrowed(self, rel, f, mine, built) -> Row | None:
        """MoE layers that are another MoE file's: a class imported from it and built or subclassed here."""
        if f.kernels or _unjudged(f, mine):
            return None
        used = {}
        for name, (mod, line) in f.imports.items():
            other = self.rels.get(mod)
            if other is None or other == rel or other not in self.candidates:
                continue
            if f.original.get(name, name) not in self._carrying(other):
                continue
            if name in f.built_with or any(name in bases for bases, _l, _fw in f.bases.values()):
                used.setdefault(other, []).append((name, line))
        if not used or not self._inherits_forward(f, {n for names in used.values() for n, _l in names}):
            return None
        rows = {other: self.row(other) for other in used}
        blocks = self._borrowed_blocks(rel, f)
        if blocks and any(r.kind is RowKind.BOUNDARY for r in rows.values()):
            names = ", ".join(sorted(blocks.values()))
            own = (f"declares stage boundaries (line {f.stages[0]}) but no FFN stage the audit can read "
                   "(no declare_ffn here or in a top-level model file)") if f.stages else \
                "its own decoder declares no stage boundary"
            return Row(stem(rel), rel, RowKind.UNACCOUNTED,
                       f"builds another file's MoE block ({names}) whose sum is the layer boundary's; {own}",
                       [Evidence(rel, f.stages[0], "append_stages")] if f.stages else [])
        kinds = {r.kind for r in rows.values()}
        kind = RowKind.UNACCOUNTED if RowKind.UNACCOUNTED in kinds else \
            kinds.pop() if len(kinds) == 1 else RowKind.SITES
        parts = [f"{stem(o)} ({', '.join(n for n, _l in used[o])}): "
                 f"{r.kind.value if r.kind is not RowKind.SITES else r.summary}" for o, r in rows.items()]
        ev = [Evidence(rel, ln, f"imports {n} from {stem(o)}") for o in used for n, ln in used[o]]
        ev += [e for r in rows.values() for e in r.evidence[:2]]
        summary = "its MoE layers are another file's: " + "; ".join(parts)
        if blocks and kind is RowKind.SITES:
            summary += ("; this file builds the block in its own decoder, and the sites were judged within "
                        f"{', '.join(sorted({stem(o) for o, _c in blocks}))}'s decoders")
        return Row(stem(rel), rel, kind, summary, ev, sorted(stem(o) for o in used))


    def _carrying(self, rel: str) -> set[str]:
        """The classes of rel that hold its MoE layers: those that build experts or hold a site,
        those that build or subclass one of them, and those it takes from other files that do."""
        if rel in self.carry:
            return self.carry[rel]
        self.carry[rel] = set()  # an import cycle sees nothing
        f = self._facts(rel)
        if f is None:
            return set()
        held = {b.cls for b in f.experts} | {s.method.split(".")[0] for s in self.sites if s.file == rel}
        for name, (mod, _l) in f.imports.items():
            other = self.rels.get(mod)
            if other in self.candidates and other != rel and f.original.get(name, name) in self._carrying(other):
                held.add(name)
        while True:
            more = {c for n in held for c in f.refs.get(n, ())} | \
                {c for c, (bases, _l, _fw) in f.bases.items() if set(bases) & held}
            if more <= held:
                break
            held |= more
        held.discard("")
        self.carry[rel] = held
        return held

    @staticmethod
    def _inherits_forward(f, names: set[str]) -> bool:
        """Every class here that builds experts runs them through a forward inherited from one of
        names (glm4_moe_lite's block subclasses deepseek_v2's DeepseekV2MoE)."""
        for b in f.experts:
            bases, _line, has_forward = f.bases.get(b.cls, ([], 0, True))
            if has_forward or not set(bases) & names:
                return False
        return True


def _reduces(f: cf.Facts, b: cf.Built) -> tuple[object, list[Evidence]]:
    """What reduce_results the experts built at b get (True, False, or None when unknown), with
    the lines that say so: the keyword, or the builder's parameter and every call of the builder."""
    rr = b.reduce_results
    if rr is True or rr is False:
        return rr, [Evidence(f.rel, b.line, f"{b.cls} builds the experts with reduce_results={rr}")]
    if rr is None:
        return False, [Evidence(f.rel, b.line, f"{b.cls} builds the experts without reduce_results (FusedMoE: False)")]
    if not (isinstance(rr, tuple) and b.cls):
        return None, []
    default = f.params.get(b.cls, {}).get(rr[1], "?")
    calls = f.built_with.get(b.cls, [])
    values = {default if v is None else v for _l, v in calls}
    if len(values) != 1 or values & {"?"} or not calls or any(isinstance(v, tuple) for v in values):
        return None, []
    value = values.pop()
    ev = [Evidence(f.rel, b.line, f"{b.cls} passes its reduce_results (default {default}) to the experts")]
    ev += [Evidence(f.rel, ln, f"{b.cls} built with reduce_results={default if v is None else v}") for ln, v in calls]
    return value, ev


def _verdicts(sites) -> str:
    c = Counter(s.verdict.value for s in sites)
    return ", ".join(f"{v} ({n} site{'s' if n > 1 else ''})" for v, n in sorted(c.items()))


def _built_unreduced(f: cf.Facts, sites, local: dict[str, str] | None = None) -> list[Evidence] | None:
    """Evidence that every site runs only under `self.reduce_results` and this file builds each
    of those blocks (named here as local says) with reduce_results=False; None otherwise."""
    ev = []
    for s in sites:
        if "self.reduce_results" not in s.reach:
            return None
        cls = s.method.split(".")[0]
        calls = f.built_with.get((local or {}).get(cls, cls), [])
        if not calls or any(v is not False for _l, v in calls):
            return None
        ev += [e for e in (Evidence(f.rel, ln, f"{cls} built with reduce_results=False") for ln, _v in calls)
               if e not in ev]
        ev.append(Evidence(s.file, s.line, f"{s.method} sums only when reduce_results"))
    return ev
