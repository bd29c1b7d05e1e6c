"""Every MoE model file gets a row: where its experts' partial sums are completed, with the evidence.

A MoE model file (docs/eras.json's rule, refined here): a top-level `models/*.py` that names
`get_moe_impl_class`, `FusedMoE`, `EPMoE` or `DeepEPMoE`, or calls a fused-experts kernel
(`fused_moe`), or holds a post-experts all-reduce site. Each gets one row, in this order:
- *sites*: the audit's site verdicts for it (its own sites, or a block of another file it builds
  whose sites the audit judged within this file's decoder);
- *delegated to the layer boundary*: the decoder declares stage boundaries, the release's boundary
  sums the FFN's output (`sum_post_experts_output` in utils.py, 0.5.22+), and the MoE block returns
  the output unreduced (it has no site, or sums only when built with reduce_results=True and this
  file builds it with False, or switches it off after construction, or at every call of a
  sub-package block), or sums it itself where the FFN stage is declared output_complete
  (audit/coverage_boundary.py, audit/coverage_decoders.py; read per decoder where they differ);
- *no post-experts reduce needed*: the experts layer is built with reduce_results=True (FusedMoE
  all-reduces inside it);
- a file whose MoE layers are another MoE file's (a class imported from it, built or subclassed
  here) takes that file's kind, saying so;
- *unaccounted*: none of these. A failure of the audit (exit 1), never silence; the reason names
  what was read (a sum made twice or never, collectives the audit does not judge, an all-reduce
  patched in at run time: audit/coverage_patch.py).
"""
from __future__ import annotations

from . import coverage_facts as cf
from . import memo
from .coverage_boundary import BoundaryRules, reduces, verdicts
from .coverage_facts import unjudged as _unjudged, why_unaccounted as _why_unaccounted
from .coverage_patch import patched_reduce
from .source import MODELS_DIR
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


def cover(src, sites, trees: dict | None = None, read: dict | None = None) -> Coverage:
    """One row per MoE model file of src, from the audit's judged sites and the files' syntax
    (trees: those the audit already parsed, by relative path; read: facts already read, by
    relative path, audit/prefetch.py)."""
    return _Cover(src, sites, trees or {}, read or {}).run()


def _read(rel: str, tree, text: str) -> cf.Facts | None:
    """rel's facts (None where its text does not parse)."""
    try:
        return cf.read(rel, tree or memo.parse(text))
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None


class _Cover(BoundaryRules):
    def __init__(self, src, sites, trees, read):
        self.src, self.sites, self.trees, self.read = src, sites, trees, read
        self.boundary_sums = BOUNDARY_SUMS in (src.utils() or "")
        self.facts: dict[str, cf.Facts] = {}
        self.rels = {stem(r): r for r in src.models()}
        self.subs = set(src.subpackages())
        """Sub-package modules (`inkling_common.moe`): read where a model file takes its MoE block from one."""
        self.rels.update({r[len(MODELS_DIR):-3].replace("/", "."): r for r in self.subs})
        self.rows: dict[str, Row] = {}
        self.busy: set[str] = set()
        self.why: dict[str, str] = {}
        """rel -> why a rule that nearly held did not (read for its unaccounted row)."""
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
                found = self.read[rel] if rel in self.read else _read(rel, self.trees.get(rel), text)
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
        return Row(name, rel, RowKind.UNACCOUNTED,
                   self.why.get(rel) or self._unaccounted_via(rel, f) or self._patched(rel, f, mine) or
                   self._sub_block_why(rel, f) or self._sums_elsewhere(f) or _why_unaccounted(f))

    def _sums_elsewhere(self, f) -> str:
        """A function of another model module, called here, that all-reduces: the sum may be there."""
        if not f.experts:
            return ""
        for name, calls in sorted(f.built_with.items()):
            mod, _line = f.imports.get(name, (None, 0))
            other = self.rels.get(mod)
            text = self.src.files.get(other, "") if other else ""
            orig = f.original.get(name, name)
            at = text.find(f"def {orig}(")
            end = text.find("\ndef ", at + 1)
            body = text[at:end if end > 0 else len(text)] if at >= 0 else ""
            hit = next((c for c in cf.REDUCE_CALLS if c + "(" in body), None)
            if hit:
                line = text.count("\n", 0, at) + 1
                return (f"builds experts (line {f.experts[0].line}) with reduce_results False and calls {name} "
                        f"(line {calls[0][0]}), a function of models/{other[len(MODELS_DIR):]} (line {line}) that "
                        f"calls {hit}: the audit does not follow a sum into another module's function, so whether "
                        "it sums the experts' output once is not judged here")
        return ""

    def _patched(self, rel, f, mine) -> str:
        """An all-reduce of the MoE block that runs only from a class patched in at run time."""
        for line, _call, cls in _unjudged(f, mine):
            why = patched_reduce(self._tree(rel), cls, line)
            if why:
                return why
        return ""

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
        own = f"{verdicts(mine)}" if mine else ""
        other = sorted({stem(s.file) for s in built})
        via = f"builds {', '.join(other)}'s block: {verdicts(built)}, judged within this decoder" if built else ""
        ev = [Evidence(s.file, s.line, f"{s.method}: {s.verdict}") for s in mine + built]
        return Row(stem(rel), rel, RowKind.SITES, "; ".join(x for x in (own, via) if x), ev)

    def _borrowed_blocks(self, rel, f) -> dict[tuple[str, str], str]:
        """(file, class) of another file's MoE block (a class that builds experts there) that this
        file builds or subclasses -> its name here."""
        out = {}
        for name, (mod, _line) in f.imports.items():
            other = self.rels.get(mod)
            g = self._facts(other) if other != rel and (other in self.candidates or other in self.subs and
                                                        cf.names_experts(self.src.files[other])) else None
            orig = f.original.get(name, name)
            if g and orig in {b.cls for b in g.experts} and \
                    (name in f.built_with or any(name in bases for bases, _l, _fw in f.bases.values())):
                out[(other, orig)] = name
        return out

    def _inside(self, rel, f, mine, built) -> Row | None:
        got = [reduces(f, b) for b in f.experts]
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
            kept = self._as_built(rel, f, blocks)
            if kept is not None:
                return kept
            names = ", ".join(sorted(blocks.values()))
            own = (f"declares stage boundaries (line {f.stages[0]}) but no FFN stage the audit can read "
                   "(no declare_ffn here or in a top-level model file)") if f.stages else \
                "its own decoder declares no stage boundary"
            return Row(stem(rel), rel, RowKind.UNACCOUNTED, self.why.get(rel) or
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
