"""The *delegated to the layer boundary* rule of audit/coverage.py (docs/AUDIT.md, "Coverage"), with
the per-decoder readings of audit/coverage_decoders.py: a block switched off after construction,
an FFN stage declared output_complete, a block whose sum is switched off at the call.
"""
from __future__ import annotations

import ast
from collections import Counter

from . import coverage_decoders as cd
from . import coverage_facts as cf
from . import memo
from .coverage_facts import unjudged as _unjudged
from .coverage_rows import Evidence, Row, RowKind, stem
from .verdict import SiteVerdict as SV


class BoundaryRules:
    """Mixed into audit/coverage.py's _Cover (self.src, self.sites, self.rels, self._facts, ...)."""

    def _declared(self, rel, f) -> tuple[list[Evidence], list[cf.Facts]]:
        """Where this file declares its stage boundaries and its FFN stage (itself, or through a
        function of another model module: nemotron_h's make_stage_boundary, deepseek_v4's
        `deepseek_v4_boundary.stages`), with the facts of the files that declare the FFN stage."""
        if f.stages and f.sparse_ffn:
            return [Evidence(rel, f.stages[0], "declares stage boundaries (append_stages)"),
                    Evidence(rel, f.sparse_ffn[0], "declares the FFN stage (declare_ffn)")], [f]
        for name, calls in f.built_with.items():
            mod, _line = f.imports.get(name, (None, 0))
            other, orig = self.rels.get(mod), f.original.get(name, name)
            # NOTE: a file without the text declare_ffn declares no FFN stage: not parsed for it
            g = self._facts(other) if other and "declare_ffn" in self.src.files[other] else None
            if g and orig in g.stage_defs and g.sparse_ffn:
                return [Evidence(rel, calls[0][0], f"declares its stage boundary through {stem(other)}.{orig}"),
                        Evidence(other, g.sparse_ffn[0], "declares the FFN stage (declare_ffn)")], [g]
            if g and f.stages and orig in g.ffn_defs:
                return [Evidence(rel, f.stages[0], "declares stage boundaries (append_stages)"),
                        Evidence(rel, calls[0][0], f"takes its stage declarations from {stem(other)}.{orig}"),
                        Evidence(other, g.ffn_defs[orig], "declares the FFN stage (declare_ffn)")], [g]
        return [], []

    def _boundary(self, rel, f, mine, built) -> Row | None:
        declared, declaring = self._declared(rel, f) if self.boundary_sums and not built else ([], [])
        if not declared:
            return None
        blocks = self._borrowed_blocks(rel, f)
        theirs = [s for s in self.sites if (s.file, s.method.split(".")[0]) in blocks]
        local = {k[1]: blocks[k] for k in {(s.file, s.method.split(".")[0]) for s in theirs}}
        quiet = built_unreduced(f, mine + theirs, local)
        if (mine or theirs) and quiet is None:
            return self._per_decoder(rel, f, mine + theirs, local, declared)
        if not (f.experts or f.kernels or blocks):
            return None
        if any(reduces(f, b)[0] is not False for b in f.experts):
            return None
        ev = list(declared)
        complete = [e for g in declaring for e in cd.completes_itself(g)]
        missed = _unjudged(f, mine)
        if missed and not complete:
            return None
        switched = self._switched_at_call(rel, f, blocks)
        if switched is None:
            return None
        ev += [Evidence(rel, ln, "the FFN boundary completes the MoE output") for ln in f.ffn_exits[:2]]
        ev += [Evidence(rel, f.imports[n][1], f"builds {_module(o)}'s MoE block {f.original.get(n, n)}")
               for (o, _c), n in sorted(blocks.items())]
        summary = "the decoder declares stage boundaries; the MoE block returns its output unreduced"
        if missed:
            ev += complete[:1] + [Evidence(rel, ln, f"{c} calls {call} (its own sum, under output_complete)")
                                  for ln, call, c in missed]
            summary = ("the decoder declares stage boundaries and its FFN stage output_complete: where that holds, "
                       f"the MoE block sums its output itself ({len(missed)} all-reduce(s) in "
                       f"{', '.join(sorted({c for _l, _n, c in missed}))}) and the boundary owes none; "
                       "elsewhere the block returns it unreduced and the boundary sums")
        if switched:
            ev += switched
            summary = ("the decoder declares stage boundaries; the MoE block sums its output only when a parameter "
                       "of its forward asks, and every call of it here passes False: the boundary sums")
        if mine or theirs:
            ev += quiet
            summary += (f" ({len(mine + theirs)} site(s) run only when the block is built with reduce_results=True;"
                        " it is not)")
        return Row(stem(rel), rel, RowKind.BOUNDARY, summary, ev)

    def _per_decoder(self, rel, f, sites, local, declared) -> Row | None:
        """Sites that run only under self.reduce_results, and decoders of the block that switch it off
        after construction (`self.mlp.reduce_results = False`) where they declare stage boundaries."""
        names = {local.get(s.method.split(".")[0], s.method.split(".")[0]) for s in sites}
        found = [cd.decoders_of(f, n) for n in sorted(names)]
        if not all(under_reduce_results(s) for s in sites):
            # NOTE: switching reduce_results off does not stop these: each decoder that declares stage boundaries sums twice
            summed_twice(rel, [s for s in sites if not under_reduce_results(s)],
                         [x for d in found for x in d.boundary + d.twice], "does not depend on reduce_results")
            return None
        off, kept = [x for d in found for x in d.boundary], [x for d in found for x in d.as_built]
        twice, never = [x for d in found for x in d.twice], [x for d in found for x in d.never]
        summed_twice(rel, sites, twice, "runs there: the block keeps reduce_results as built (True)")
        if twice or never:
            self.why[rel] = "; ".join(
                [f"{x} declares stage boundaries and keeps its block's own sum (reduce_results as built): the block's "
                 "sites and the boundary both sum (twice)" for x in twice] +
                [f"{x} switches its block's sum off (reduce_results = False) and declares no stage boundaries: "
                 "nothing sums the experts' output there" for x in never])
            return None
        if not off:
            return None
        ev = list(declared) + [e for d in found for e in d.evidence]
        ev += [Evidence(rel, ln, "the FFN boundary completes the MoE output") for ln in f.ffn_exits[:1]]
        summary = (f"{', '.join(off)}: delegated to the layer boundary (declares stage boundaries and switches "
                   "the block's reduce_results off)")
        if not kept:
            return Row(stem(rel), rel, RowKind.BOUNDARY, summary, ev)
        owners = sorted({_module(s.file) for s in sites})
        ev += [Evidence(s.file, s.line, f"{s.method}: {s.verdict}") for s in sites]
        summary = (f"{', '.join(kept)}: the block as built sums through {', '.join(owners)}'s sites, "
                   f"{verdicts(sites)}; " + summary)
        return Row(stem(rel), rel, RowKind.SITES, summary, ev)

    def _as_built(self, rel, f, blocks) -> Row | None:
        """Another file's block whose sites run only under self.reduce_results, built here with its
        reduce_results as it defaults (True) by decoders that neither declare stage boundaries nor
        switch it off: the block's own sites sum here (deepseek_v4 0.5.22, DeepseekV4DecoderLayer)."""
        sites = [s for s in self.sites if (s.file, s.method.split(".")[0]) in blocks]
        if not sites or not all(under_reduce_results(s) for s in sites):
            return None
        for (other, cls), name in blocks.items():
            g = self._facts(other)
            calls = f.built_with.get(name, [])
            if g is None or g.params.get(cls, {}).get("reduce_results") is not True or not calls or \
                    any(v not in (None, True) for _l, v in calls):
                return None
            d = cd.decoders_of(f, name)
            if d.boundary or d.twice or d.never or not d.as_built:
                return None
        ev = [Evidence(rel, ln, f"builds {name} with reduce_results as it defaults (True)")
              for (_o, _c), name in sorted(blocks.items()) for ln, _v in f.built_with[name][:1]]
        ev += [Evidence(s.file, s.line, f"{s.method}: {s.verdict}") for s in sites]
        owners = ", ".join(sorted({_module(s.file) for s in sites}))
        return Row(stem(rel), rel, RowKind.SITES,
                   f"its decoders keep the block's own sum (reduce_results True, no stage boundaries): {owners}'s "
                   f"sites, {verdicts(sites)}", ev, sorted({_module(s.file) for s in sites}))

    def _switched_at_call(self, rel, f, blocks) -> list[Evidence] | None:
        """A block from a sub-package (where the audit takes no sites): [] when its forward has no
        collective; the evidence that every call of it here switches its sum off; None otherwise
        (self.why[rel] says why)."""
        ev = []
        for (other, cls), name in sorted(blocks.items()):
            if other not in self.subs:
                continue
            block = _class(self._tree(other), cls)
            if block is None or not _collectives(block):
                continue
            switch, where = cd.sum_switch(block), f"models/{other[len('sglang/srt/models/'):]}"
            if switch is None:
                self.why[rel] = (f"{cls}.forward ({where}) sums its output on a path none of its parameters "
                                 "switches off, and this decoder declares stage boundaries, so the boundary sums "
                                 "it too: summed twice, unless that collective sums something else")
                return None
            param, lines = switch
            for decoder in sorted(f.builders.get(name, ())):
                attrs = {a for a, called in f.holds.get(decoder, {}).items() if name in called}
                node = _class(self._tree(rel), decoder)
                calls, bad = cd.calls_switch_off(node, attrs, name, param) if node is not None else ([], 0)
                if not calls:
                    self.why[rel] = (f"{decoder} calls {cls} at line {bad} without {param}=False" if bad else
                                     f"{decoder} builds {cls} but no call of it here can be read") + \
                        (f": the block sums its output ({where} line {lines[0]}) and the stage boundary "
                         "this decoder declares sums it again (twice)")
                    return None
                ev += [Evidence(other, lines[0], f"{cls}.forward sums only when {param}")]
                ev += [Evidence(rel, ln, f"{decoder} calls it with {param}=False") for ln in calls]
        return ev

    def _sub_block_why(self, rel, f) -> str:
        """Why a block from a sub-package that sums with collectives of its own leaves the row open."""
        for (other, cls), name in sorted(self._borrowed_blocks(rel, f).items()):
            block = _class(self._tree(other), cls) if other in self.subs else None
            sums = _collectives(block) if block is not None else []
            if not sums:
                continue
            switch = cd.sum_switch(block)
            when = f" when forward's `{switch[0]}` is true" if switch else ""
            return (f"its MoE block {cls} (models/{other[len('sglang/srt/models/'):]}, imported at line "
                    f"{f.imports[name][1]}) sums its output{when} with collectives the audit does not judge as "
                    f"sites ({', '.join(f'{c} line {ln}' for ln, c in sums[:3])})"
                    + ("" if f.stages else ", and this file declares no stage boundaries to delegate the sum to"))
        return ""

    def _tree(self, rel: str) -> ast.Module:
        if rel not in self.trees:
            self.trees[rel] = memo.parse(self.src.files[rel])
        return self.trees[rel]


def _class(tree: ast.Module, name: str) -> ast.ClassDef | None:
    return next((n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == name.rsplit(".", 1)[-1]), None)


def _collectives(cls: ast.ClassDef) -> list[tuple[int, str]]:
    """(line, name) of the collectives in the block's forward."""
    from .extract import call_name, walk
    fwd = [f for f in cls.body if isinstance(f, ast.FunctionDef) and f.name == "forward"]
    return sorted({(n.lineno, call_name(n)) for f in fwd for n in walk(f)
                   if isinstance(n, ast.Call) and cd.COLLECTIVE.search(call_name(n) or "")})


def _module(rel: str) -> str:
    """A model file's stem, or a sub-package module as `package.module`."""
    return ".".join(rel[:-3].split("/")[3:])


def reduces(f: cf.Facts, b: cf.Built) -> tuple[object, list[Evidence]]:
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


def verdicts(sites) -> str:
    c = Counter(s.verdict.value for s in sites)
    return ", ".join(f"{v} ({n} site{'s' if n > 1 else ''})" for v, n in sorted(c.items()))


REDUCE_RESULTS = ("self.reduce_results", "self.reduce_results is True", "self.reduce_results == True")
"""The reach conditions that hold only where the block's reduce_results is true (a bool: SGLang's
constructors take it as one)."""


def under_reduce_results(site) -> bool:
    """Does the site run only under `self.reduce_results` (however spelled, or held in a local)?"""
    return any(t in site.reach or t in site.tests for t in REDUCE_RESULTS)


def summed_twice(rel: str, sites, decoders: list[str], why: str) -> None:
    """Sites of a block whose decoders (in rel) declare stage boundaries and still run them: the FFN
    boundary sums the MoE output (sum_post_experts_output, over every axis its output owes) and the
    block's all-reduce sums it too, so an axis both sum is summed twice. Such a site differs, whatever
    its own guard reads (a helper-guarded one runs where the boundary sums: at R off, no completing
    combine). A site that cannot run in scope or is not understood keeps its verdict."""
    if not decoders:
        return
    entry = f"{stem(rel)}'s {', '.join(decoders)} ({why})"
    for s in sites:
        if s.verdict in (SV.CANNOT_RUN, SV.NOT_UNDERSTOOD):
            continue
        if s.verdict is SV.DIFFERS and s.detail.startswith(TWICE):
            head, alone = s.detail.split(" [judged alone: ", 1)
            s.detail = f"{head}; {entry} [judged alone: {alone}"
            continue
        s.verdict, s.detail = SV.DIFFERS, f"{TWICE}{entry} [judged alone: {s.verdict}: {s.detail}]"


TWICE = ("summed twice: the FFN stage boundary sums the MoE output (sum_post_experts_output) and this all-reduce "
         "sums it too, in decoders that declare stage boundaries: ")


def built_unreduced(f: cf.Facts, sites, local: dict[str, str] | None = None) -> list[Evidence] | None:
    """Evidence that every site runs only under `self.reduce_results` and this file builds each
    of those blocks (named here as local says) with reduce_results=False; None otherwise."""
    ev = []
    for s in sites:
        if not under_reduce_results(s):
            return None
        cls = s.method.split(".")[0]
        calls = f.built_with.get((local or {}).get(cls, cls), [])
        if not calls or any(v is not False for _l, v in calls):
            return None
        ev += [e for e in (Evidence(f.rel, ln, f"{cls} built with reduce_results=False") for ln, _v in calls)
               if e not in ev]
        ev.append(Evidence(s.file, s.line, f"{s.method} sums only when reduce_results"))
    return ev
