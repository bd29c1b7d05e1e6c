"""Issue 13's six MoE model files of 0.5.23, each a code pattern the audit reads (docs/AUDIT.md,
"Coverage"): the real file from the cached wheel, then rewrites of it (renamed, the reduce moved
into a helper, into a sub-package module, written differently, and look-alikes that sum twice or
never), each audited as a tree under the 0.5.23 era fixture. Lines cite the 0.5.23 wheel.

- cohere2_moe: a parallel block. Cohere2MoeSparseMoeBlock builds FusedMoE with reduce_results=False
  (cohere2_moe.py:290) and returns its output unreduced (:363-364); the attention's o_proj is built
  unreduced too (:168); Cohere2MoeDecoderLayer adds both (:451) and sums them with one TP all-reduce
  under `self.tp_size > 1` (:452-453): a decoder-level post-experts site (audit/moe_flow.py).
- kimi_k3: the FFN stage is declared output_complete for a latent MoE (kimi_k3.py:2506); KimiK3MoE
  then sums its latent and shared outputs itself (_reduce_shared :1019, _reduce_latent_and_shared
  :1023, _reduce_latent :1030, the latter under `_routed_needs_reduce` = tp > 1 and no a2a, :761-763).
- inkling: InklingMoE (inkling_common/moe.py) builds FusedMoE unreduced (:830-837) and sums only when
  forward's `reduce` is true (`if not reduce: ... return`, :1063-1080; symm_mem_all_reduce :1088);
  InklingDecoderLayer calls it with reduce=False (inkling.py:619-621) inside the FFN boundary's
  exit, the stages declared by inkling_stages (declare_ffn :326) and append_stages (:504).
- deepseek_v4: DeepseekV4DecoderLayerBase builds deepseek_v2.DeepseekV2MoE (deepseek_v4.py:3155;
  reduce_results defaults to True, deepseek_v2.py:663); DeepseekV4CudaDecoderLayer switches it off
  (:3559) and declares its stages (append_stages :3561) with deepseek_v4_boundary.stages
  (declare_ffn deepseek_v4_boundary.py:451); DeepseekV4PlatformDecoderLayer (:3740) keeps it, so
  deepseek_v2's helper-guarded sites sum (deepseek_v2.py:1293, 1452, 1521). deepseek_v4_dspark
  subclasses both decoders (deepseek_v4_dspark.py:657, 676).
- transformers: the all-reduce (transformers.py:387, under `self.tp_size > 1`, the experts'
  moe_tp_size :377) runs only from a class made at run time (:1248-1251) and patched into the MLP
  (`mlp.__class__ = MLPWithAllReduce` :1253) where `not reduce_results and (tp > 1 or ep > 1)`
  (:1297-1300): unaccounted, both tests named.
"""
from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

import pytest

from sumonce.audit.coverage import RowKind
from sumonce.audit.extract import sites_in
from sumonce.audit.verdict import SiteVerdict


def _trees():
    # NOTE: importlib mode puts no test folder on sys.path; load the sibling module by its path.
    spec = importlib.util.spec_from_file_location("coverage_trees", Path(__file__).with_name("coverage_trees.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_t = _trees()
MODELS, edit, rows_of, tree, wheel = _t.MODELS, _t.edit, _t.rows_of, _t.tree, _t.wheel

BOUNDARY, SITES, NOT_NEEDED, UNACCOUNTED = (RowKind.BOUNDARY, RowKind.SITES, RowKind.NOT_NEEDED,
                                            RowKind.UNACCOUNTED)


def real(name: str) -> str:
    return wheel()[MODELS + name]


def cites(row, text: str) -> bool:
    return any(text == f"{e.file.rsplit('/', 1)[-1]}:{e.line}" for e in row.evidence)


def audit_files(tmp_path, files: dict[str, str], era: str = "0.5.23"):
    return rows_of(tree(tmp_path / "t", files, era))


# ---------------------------------------------------------------- the real 0.5.23 rows

def test_0523_rows_of_the_six(release_reports):
    r = {x.model: x for x in release_reports["0.5.23"].coverage.rows}
    assert r["cohere2_moe"].kind is SITES and cites(r["cohere2_moe"], "cohere2_moe.py:453")
    site = next(s for s in release_reports["0.5.23"].sites if s.model == "cohere2_moe")
    assert (site.method, site.line, site.verdict) == ("Cohere2MoeDecoderLayer.forward", 453,
                                                      SiteVerdict.EQUIVALENT_HERE)
    assert r["kimi_k3"].kind is BOUNDARY and "output_complete" in r["kimi_k3"].summary
    assert all(cites(r["kimi_k3"], f"kimi_k3.py:{n}") for n in (2506, 1019, 1023, 1030, 2638))
    assert r["inkling"].kind is BOUNDARY
    assert all(cites(r["inkling"], x) for x in ("inkling.py:504", "inkling.py:326", "inkling.py:619", "moe.py:1088"))
    assert r["deepseek_v4"].kind is SITES
    assert all(cites(r["deepseek_v4"], x) for x in ("deepseek_v4.py:3559", "deepseek_v4.py:3561",
                                                     "deepseek_v4_boundary.py:451", "deepseek_v2.py:1293"))
    assert r["deepseek_v4"].summary.startswith("DeepseekV4PlatformDecoderLayer: the block as built sums through "
                                               "deepseek_v2's sites, calls the helper (3 sites)")
    assert r["deepseek_v4_dspark"].kind is SITES and r["deepseek_v4_dspark"].via == ["deepseek_v4"]
    assert r["transformers"].kind is UNACCOUNTED
    assert "patched into a module (`mlp.__class__ = MLPWithAllReduce`, line 1253)" in r["transformers"].summary


# ---------------------------------------------------------------- parallel block (cohere2_moe)

PARALLEL_TAIL = """        combined = attn_out + mlp_out
        if self.tp_size > 1:
            combined = tensor_model_parallel_all_reduce(combined)
        return residual + combined
"""
BLOCK_RETURN = """        # Returned un-reduced: the decoder layer folds attn + MoE TP-partials
        # into a single all-reduce.
        return final_hidden_states.view(orig_shape)"""
EXPERTS_UNREDUCED = """            intermediate_size=config.intermediate_size,
            reduce_results=False,
            quant_config=quant_config,
            layer_id=layer_id,"""


def _renamed(text: str) -> str:
    for old, new in (("self.mlp", "self.ffn_block"), ("Cohere2MoeDecoderLayer", "Cohere2ParallelLayer"),
                     ("Cohere2MoeSparseMoeBlock", "Cohere2Routed"), ("combined", "summed")):
        assert old in text
        text = text.replace(old, new)
    return text


PARALLEL = {
    # (rewrite, row kind, [(site method, verdict)])
    "as shipped": (lambda t: t, SITES, [("Cohere2MoeDecoderLayer.forward", SiteVerdict.EQUIVALENT_HERE)]),
    # no name says decoder, MoE or mlp: the data flow does
    "renamed": (_renamed, SITES, [("Cohere2ParallelLayer.forward", SiteVerdict.EQUIVALENT_HERE)]),
    "reduce in a helper method": (lambda t: edit(t, (PARALLEL_TAIL, """        return residual + self._sum_parallel(attn_out + mlp_out)

    def _sum_parallel(self, partial):
        if self.tp_size > 1:
            partial = tensor_model_parallel_all_reduce(partial)
        return partial
""")), SITES, [("Cohere2MoeDecoderLayer._sum_parallel", SiteVerdict.EQUIVALENT_HERE)]),
    "one expression": (lambda t: edit(t, (PARALLEL_TAIL, """        return residual + (tensor_model_parallel_all_reduce(attn_out + mlp_out)
                           if self.tp_size > 1 else attn_out + mlp_out)
""")), SITES, [("Cohere2MoeDecoderLayer.forward", SiteVerdict.EQUIVALENT_HERE)]),
    # the block sums too: the decoder's all-reduce sums the experts' output a second time
    "sums twice": (lambda t: edit(t, (BLOCK_RETURN, """        if self.tp_size > 1:
            final_hidden_states = tensor_model_parallel_all_reduce(final_hidden_states)
        return final_hidden_states.view(orig_shape)""")), SITES,
                   [("Cohere2MoeSparseMoeBlock.forward", SiteVerdict.EQUIVALENT_HERE),
                    ("Cohere2MoeDecoderLayer.forward", SiteVerdict.DIFFERS)]),
    # nothing sums the experts' output
    "never sums": (lambda t: edit(t, (PARALLEL_TAIL, "        return residual + attn_out + mlp_out\n")),
                   UNACCOUNTED, []),
    # the decoder all-reduces the attention output only; the experts sum inside FusedMoE
    "reduces attention only": (lambda t: edit(t, (PARALLEL_TAIL, """        if self.tp_size > 1:
            attn_out = tensor_model_parallel_all_reduce(attn_out)
        return residual + attn_out + mlp_out
"""), (EXPERTS_UNREDUCED, EXPERTS_UNREDUCED.replace("reduce_results=False", "reduce_results=True"))),
                               NOT_NEEDED, []),
}


@pytest.mark.parametrize("case", PARALLEL)
def test_parallel_block(tmp_path, case):
    rewrite, kind, sites = PARALLEL[case]
    rows, rep = audit_files(tmp_path, {"cohere2_moe.py": rewrite(real("cohere2_moe.py"))})
    assert rows["cohere2_moe"].kind is kind
    assert [(s.method, s.verdict) for s in rep.sites] == sites
    if case == "never sums":
        assert "summed not at all" in rows["cohere2_moe"].summary


def _block_moved(text: str) -> dict[str, str]:
    """Cohere2MoeSparseMoeBlock moved into a sub-package module, imported under another name."""
    a, b = text.index("class Cohere2MoeSparseMoeBlock(nn.Module):"), text.index("class Cohere2MoeDecoderLayer(nn.Module):")
    head = text[:text.index("\n\n\n", text.index("from sglang.srt.utils import"))]
    decoder = edit(text[:a] + text[b:], ("self.mlp = Cohere2MoeSparseMoeBlock(", "self.mlp = RoutedBlock("),
                   ("from sglang.srt.layers.logits_processor import LogitsProcessor\n",
                    "from sglang.srt.layers.logits_processor import LogitsProcessor\nfrom sglang.srt.models."
                    "cohere2_parts.routed import Cohere2MoeSparseMoeBlock as RoutedBlock\n"))
    return {"cohere2_moe.py": decoder, "cohere2_parts/routed.py": head + "\n\n\n" + text[a:b]}


SUM_FN = '''from sglang.srt.distributed import get_tensor_model_parallel_world_size, tensor_model_parallel_all_reduce


def sum_parallel(x):
    if get_tensor_model_parallel_world_size() > 1:
        x = tensor_model_parallel_all_reduce(x)
    return x
'''


def test_parallel_block_across_modules(tmp_path):
    """The block moved into a sub-package module: the decoder's all-reduce still sums its output
    (moe_flow.imported_blocks). The all-reduce moved into a function of another module: not
    followed, and the row says so instead of claiming the experts are never summed."""
    rows, rep = audit_files(tmp_path, _block_moved(real("cohere2_moe.py")))
    assert rows["cohere2_moe"].kind is SITES
    assert [(s.method, s.verdict) for s in rep.sites] == [("Cohere2MoeDecoderLayer.forward",
                                                           SiteVerdict.EQUIVALENT_HERE)]
    moved = edit(real("cohere2_moe.py"), (PARALLEL_TAIL, "        return residual + sum_parallel(attn_out + mlp_out)\n"),
                 ("from sglang.srt.layers.logits_processor import LogitsProcessor\n",
                  "from sglang.srt.layers.logits_processor import LogitsProcessor\n"
                  "from sglang.srt.models.cohere2_parts.comm import sum_parallel\n"))
    rows, rep = audit_files(tmp_path, {"cohere2_moe.py": moved, "cohere2_parts/comm.py": SUM_FN})
    why = rows["cohere2_moe"].summary
    assert rows["cohere2_moe"].kind is UNACCOUNTED and not rep.sites
    assert "calls sum_parallel (line 452), a function of models/cohere2_parts/comm.py" in why
    assert "not judged here" in why and "summed not at all" not in why


ATTN_THEN_MOE = '''
class Routed:
    def __init__(self):
        self.experts = FusedMoE(num_experts=8, top_k=2)

    def forward(self, x):
        return self.experts(x)


class Layer:
    def __init__(self):
        self.block = Routed()

    def forward(self, x):
        h = self.block(x)
        h = self.attn(x)
        return tensor_model_parallel_all_reduce(h)
'''


def test_a_name_reassigned_from_something_else_no_longer_carries_the_block_output():
    (site,) = sites_in(ast.parse(ATTN_THEN_MOE), ATTN_THEN_MOE)
    assert (site.sums_block, site.after_experts) == (False, False)
    carried = ATTN_THEN_MOE.replace("h = self.attn(x)", "h = h + self.attn(x)")
    (site,) = sites_in(ast.parse(carried), carried)
    assert (site.method, site.sums_block, site.after_experts) == ("forward", True, True)


DENSE_ONLY = '''
class Routed:
    def __init__(self):
        self.experts = FusedMoE(num_experts=8, top_k=2)

    def forward(self, x):
        return self.experts(x)


class Layer:
    def __init__(self, sparse):
        self.is_layer_sparse = sparse
        if self.is_layer_sparse:
            self.mlp = Routed()
        else:
            self.mlp = DenseMLP()

    def forward(self, x):
        h = self.mlp(x)
        if not self.is_layer_sparse and self.tp_size > 1:
            h = tensor_model_parallel_all_reduce(h)
        return h
'''


def test_an_all_reduce_under_a_test_the_block_assignment_contradicts_sums_the_dense_mlp():
    """sarvam_moe 0.5.16-0.5.21 (SarvamMoEMLADecoderLayer.forward, 0.5.21 line 1097): the decoder
    all-reduces `self.mlp`'s output only `not self.is_layer_sparse`, and `self.mlp` is the MoE block
    only `if self.is_layer_sparse` (:1022-1023): not a post-experts site."""
    (site,) = sites_in(ast.parse(DENSE_ONLY), DENSE_ONLY)
    assert (site.sums_block, site.after_experts) == (False, False)
    both = DENSE_ONLY.replace("not self.is_layer_sparse and ", "")
    (site,) = sites_in(ast.parse(both), both)
    assert (site.sums_block, site.after_experts) == (True, True)


DENSE_WITH_FLAGS = DENSE_ONLY.replace(
    "    def forward(self, x):\n        h = self.mlp(x)\n        if not self.is_layer_sparse and self.tp_size > 1:",
    "    def forward(self, x, use_reduce_scatter, should_allreduce_fusion):\n        h = self.mlp(x)\n"
    "        if (not self.is_layer_sparse and self.attn_tp_size > 1\n"
    "                and not use_reduce_scatter and not should_allreduce_fusion):")


def test_a_dense_mlp_sum_whose_guard_reads_f_and_r_is_no_site():
    """sarvam_moe up to 0.5.15.post1 (0.5.11 sarvam_moe.py:1125-1131): the dense-layer all-reduce's
    guard also reads use_reduce_scatter and should_allreduce_fusion; the attribute is still the
    dense MLP there (the block is assigned only `if self.is_layer_sparse`, :1049-1050), so the
    flags do not make it a post-experts site. Without the contradiction it is one."""
    assert "use_reduce_scatter" in DENSE_WITH_FLAGS
    (site,) = sites_in(ast.parse(DENSE_WITH_FLAGS), DENSE_WITH_FLAGS)
    assert (site.sums_block, site.after_experts) == (False, False)
    both = DENSE_WITH_FLAGS.replace("not self.is_layer_sparse and ", "")
    (site,) = sites_in(ast.parse(both), both)
    assert (site.sums_block, site.after_experts) == (True, True)
    # the block assigned on both branches: no test contradicts it, the sum is the block's
    always = DENSE_WITH_FLAGS.replace("self.mlp = DenseMLP()", "self.mlp = Routed()")
    (site,) = sites_in(ast.parse(always), always)
    assert (site.sums_block, site.after_experts) == (True, True)


ONE_LINE = ("        if self.is_layer_sparse:\n            self.mlp = Routed()\n"
            "        else:\n            self.mlp = DenseMLP()\n")


@pytest.mark.parametrize("assignment, dense", [
    ("        self.mlp = Routed() if self.is_layer_sparse else DenseMLP()\n", True),
    ("        self.mlp = DenseMLP() if not self.is_layer_sparse else Routed()\n", True),
    ("        self.mlp = DenseMLP() if self.is_layer_sparse else Routed()\n", False),  # the sum is the block's
    ("        self.mlp = Routed() if self.is_layer_sparse else Routed()\n", False),
    ("        self.mlp = (Routed() if self.tp_size > 1 else Routed()) if self.is_layer_sparse else DenseMLP()\n", True),
])
def test_a_block_chosen_by_a_conditional_expression(assignment, dense):
    """The same layer with the choice written `Block(...) if test else Dense(...)`: the dense-layer
    all-reduce is still no site; where the block is the branch the all-reduce runs in, it is one."""
    assert ONE_LINE in DENSE_WITH_FLAGS
    text = DENSE_WITH_FLAGS.replace(ONE_LINE, assignment)
    (site,) = sites_in(ast.parse(text), text)
    assert (site.sums_block, site.after_experts) == ((False, False) if dense else (True, True))


@pytest.mark.parametrize("version", ["0.5.10.post1", "0.5.11", "0.5.15.post1"])
def test_sarvam_dense_sum_is_no_site_in_the_wheel(version):
    """The real file: only the MoE block's two helper calls are post-experts sites; the decoder's
    dense-layer all-reduce (1131 at 0.5.11) is found but is no site (it was 'not understood')."""
    import glob
    import os
    import zipfile
    found = glob.glob(os.path.expanduser(f"~/.cache/sumonce/sglang/sglang-{version}-*.whl"))
    if not found:
        pytest.skip(f"sglang {version} wheel not cached")
    text = zipfile.ZipFile(found[0]).read("sglang/srt/models/sarvam_moe.py").decode()
    sites = sites_in(ast.parse(text), text)
    dense = [s for s in sites if "DecoderLayer" in s.cls]
    assert len(dense) == 1 and not dense[0].after_experts
    assert any("not self.is_layer_sparse" in ln for ln in text.splitlines()[dense[0].line - 8:dense[0].line])
    assert [s.cls for s in sites if s.after_experts] == ["SarvamMoESparseMoeBlock"] * 2


ALIASED = {
    "forward reads a local": ("        h = self.mlp(x)\n        if (not self.is_layer_sparse",
                              "        sparse = self.is_layer_sparse\n        h = self.mlp(x)\n        if (not sparse"),
    "forward reads a negated local": ("        if (not self.is_layer_sparse and",
                                      "        if (dense and"),
    "__init__ stores a local": ("        self.is_layer_sparse = sparse\n        if self.is_layer_sparse:",
                                "        is_sparse = bool(sparse)\n        self.is_layer_sparse = is_sparse\n        if is_sparse:"),
}


@pytest.mark.parametrize("case", ALIASED)
def test_a_test_written_through_a_local(case):
    """The dense-layer sum with its tests written through locals that stand for the attribute
    (audit/aliases.py): still no site; the same local reassigned stands for nothing (a site)."""
    old, new = ALIASED[case]
    text = DENSE_WITH_FLAGS.replace(old, new)
    if case == "forward reads a negated local":
        text = text.replace("        h = self.mlp(x)\n", "        dense = not self.is_layer_sparse\n        h = self.mlp(x)\n")
    assert text != DENSE_WITH_FLAGS
    (site,) = sites_in(ast.parse(text), text)
    assert (site.sums_block, site.after_experts) == (False, False)
    name = {"forward reads a local": "sparse", "forward reads a negated local": "dense"}.get(case)
    if name:  # a second binding: the local no longer stands for the attribute
        twice = text.replace("        h = self.mlp(x)\n", f"        h = self.mlp(x)\n        {name} = x is None\n")
        (site,) = sites_in(ast.parse(twice), twice)
        assert (site.sums_block, site.after_experts) == (True, True)


# ---------------------------------------------------------------- output_complete (kimi_k3)

OUTPUT_COMPLETE = "            output_complete=is_moe and _uses_latent_moe(config),\n"
KIMI = {
    "as shipped": (lambda t: t, BOUNDARY),
    "declared complete always": (lambda t: edit(t, (OUTPUT_COMPLETE, "            output_complete=True,\n")),
                                 BOUNDARY),
    # the block sums itself and the boundary is not told: twice
    "not declared": (lambda t: edit(t, (OUTPUT_COMPLETE, "")), UNACCOUNTED),
    "declared incomplete": (lambda t: edit(t, (OUTPUT_COMPLETE, "            output_complete=False,\n")),
                            UNACCOUNTED),
}


@pytest.mark.parametrize("case", KIMI)
def test_output_complete(tmp_path, case):
    rewrite, kind = KIMI[case]
    rows, _rep = audit_files(tmp_path, {"kimi_k3.py": rewrite(real("kimi_k3.py"))})
    assert rows["kimi_k3"].kind is kind
    if kind is UNACCOUNTED:
        assert "line 1019" in rows["kimi_k3"].summary and "without output_complete" in rows["kimi_k3"].summary


# ---------------------------------------------------------------- switched off at the call (inkling)

INKLING_CALL = """                hidden_states = self.mlp(
                    hidden_states, forward_batch=forward_batch, reduce=False
                )"""
SUB = "inkling_common/moe.py"


def _inkling(decoder=lambda t: t, block=lambda t: t, sub=SUB) -> dict:
    files = {"inkling.py": decoder(real("inkling.py")), sub: block(real(SUB))}
    if sub != SUB:
        files["inkling.py"] = edit(files["inkling.py"], ("sglang.srt.models.inkling_common.moe import InklingMoE",
                                                         f"sglang.srt.models.{sub[:-3].replace('/', '.')} import "
                                                         "InklingMoE"))
    return files


INKLING = {
    "as shipped": (_inkling(), BOUNDARY, ""),
    "parameter renamed": (_inkling(lambda t: edit(t, (INKLING_CALL, INKLING_CALL.replace("reduce=", "sum_output="))),
                                   lambda t: edit(t, ("        reduce: bool = True,", "        sum_output: bool = True,"),
                                                  ("        if not reduce:", "        if not sum_output:"))),
                          BOUNDARY, ""),
    "block in another sub-package": (_inkling(sub="ink_parts/routed.py"), BOUNDARY, ""),
    # the decoder asks the block to sum, and the boundary sums again
    "called with reduce=True": (_inkling(lambda t: edit(t, (INKLING_CALL, INKLING_CALL.replace("=False", "=True")))),
                                UNACCOUNTED, "calls InklingMoE at line 619 without reduce=False"),
    "called without the argument": (_inkling(lambda t: edit(t, (INKLING_CALL, INKLING_CALL.replace(", reduce=False", "")))),
                                    UNACCOUNTED, "without reduce=False"),
    # a block whose sum no parameter switches off
    "block always sums": (_inkling(block=lambda t: edit(t, ("        if not reduce:", "        if not reduce and self.x:"))),
                          UNACCOUNTED, "on a path none of its parameters switches off"),
}


@pytest.mark.parametrize("case", INKLING)
def test_switched_off_at_the_call(tmp_path, case):
    files, kind, why = INKLING[case]
    rows, _rep = audit_files(tmp_path, files)
    assert rows["inkling"].kind is kind
    assert why in rows["inkling"].summary
    if kind is BOUNDARY:
        assert cites(rows["inkling"], "inkling.py:619")


# ---------------------------------------------------------------- reset after construction (deepseek_v4)

RESET = "        self.mlp.reduce_results = False\n"
PLATFORM_DOC = '    """Non-CUDA execution with platform mHC state and fusion."""\n'


def _deepseek(v4=lambda t: t) -> dict:
    files = {n: real(n) for n in ("deepseek_v2.py", "deepseek_v4_boundary.py", "deepseek_v4_dspark.py")}
    return files | {"deepseek_v4.py": v4(real("deepseek_v4.py"))}


def _renamed_v4(t: str) -> str:
    t = edit(t, ("import deepseek_v4_boundary as hc_boundary", "import deepseek_v4_boundary as stage_facts"),
             ("hc_boundary.stages(self.config", "stage_facts.stages(self.config"))
    return t.replace("self.mlp", "self.ffn_block")


DEEPSEEK = {
    "as shipped": (_deepseek(), SITES, "DeepseekV4CudaDecoderLayer: delegated to the layer boundary"),
    "renamed": (_deepseek(_renamed_v4), SITES, "DeepseekV4CudaDecoderLayer: delegated to the layer boundary"),
    # the CUDA decoder keeps the block's sum and declares its stages: the block and the boundary sum
    "no reset": (_deepseek(lambda t: edit(t, (RESET, ""))), UNACCOUNTED,
                 "DeepseekV4CudaDecoderLayer declares stage boundaries and keeps its block's own sum"),
    "reset of another layer": (_deepseek(lambda t: edit(t, (RESET, "        self.self_attn.reduce_results = False\n"))),
                               UNACCOUNTED, "both sum (twice)"),
    "reset to True": (_deepseek(lambda t: edit(t, (RESET, RESET.replace("False", "True")))), UNACCOUNTED,
                      "both sum (twice)"),
    # the platform decoder switches the sum off without a boundary: never summed
    "platform switches off": (_deepseek(lambda t: edit(t, (PLATFORM_DOC, PLATFORM_DOC + """
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.mlp.reduce_results = False
"""))), UNACCOUNTED, "DeepseekV4PlatformDecoderLayer switches its block's sum off"),
}


@pytest.mark.parametrize("case", DEEPSEEK)
def test_reset_after_construction(tmp_path, case):
    files, kind, why = DEEPSEEK[case]
    rows, _rep = audit_files(tmp_path, files)
    assert rows["deepseek_v4"].kind is kind and why in rows["deepseek_v4"].summary
    # deepseek_v4_dspark's decoders are deepseek_v4's: its row follows
    assert rows["deepseek_v4_dspark"].kind is kind and rows["deepseek_v4_dspark"].via == ["deepseek_v4"]


def test_0522_deepseek_v4_keeps_the_block_sum(tmp_path):
    """0.5.22 (era 0.5.23): DeepseekV4DecoderLayer builds deepseek_v2.DeepseekV2MoE without
    reduce_results (deepseek_v4.py:2768; its default is True, deepseek_v2.py:633) and declares no
    stage boundaries: deepseek_v2's helper-guarded sites sum. Built with reduce_results=False and
    still no boundary, nothing would."""
    files = {n: wheel("0.5.22")[MODELS + n] for n in ("deepseek_v2.py", "deepseek_v4.py", "deepseek_v4_dspark.py")}
    rows, _rep = audit_files(tmp_path, files)
    assert rows["deepseek_v4"].kind is SITES and rows["deepseek_v4"].via == ["deepseek_v2"]
    assert rows["deepseek_v4"].summary.endswith("deepseek_v2's sites, calls the helper (3 sites)")
    assert cites(rows["deepseek_v4"], "deepseek_v4.py:2768")
    assert rows["deepseek_v4_dspark"].kind is SITES
    off = edit(files["deepseek_v4.py"], ("        self.mlp = deepseek_v2.DeepseekV2MoE(\n",
                                         "        self.mlp = deepseek_v2.DeepseekV2MoE(\n            reduce_results=False,\n"))
    rows, _rep = audit_files(tmp_path, files | {"deepseek_v4.py": off})
    assert rows["deepseek_v4"].kind is UNACCOUNTED


@pytest.mark.parametrize("version, era, line", [("0.5.13", "0.5.11", 427), ("0.5.19", "0.5.17", 447)])
def test_older_parallel_blocks(tmp_path, version, era, line):
    """cohere2_moe from 0.5.13 on: the same parallel block (the all-reduce at 427 up to 0.5.18,
    447 from 0.5.19), judged in its release's era."""
    rows, rep = audit_files(tmp_path, {"cohere2_moe.py": wheel(version)[MODELS + "cohere2_moe.py"]}, era)
    assert rows["cohere2_moe"].kind is SITES
    assert [(s.method, s.line, s.verdict) for s in rep.sites] == [("Cohere2MoeDecoderLayer.forward", line,
                                                                  SiteVerdict.EQUIVALENT_HERE)]


def test_0516_inkling_sums_with_its_own_collectives(tmp_path):
    """0.5.16 - 0.5.22: no stage boundaries; InklingMoE sums with the model's own collectives
    (symm_mem_all_reduce, inkling_common/moe.py) unless called with reduce=False, when the next
    layer's fused kernel sums: unaccounted, the collectives named."""
    w = wheel("0.5.16")
    rows, _rep = audit_files(tmp_path, {"inkling.py": w[MODELS + "inkling.py"], SUB: w[MODELS + SUB]}, "0.5.16")
    why = rows["inkling"].summary
    assert rows["inkling"].kind is UNACCOUNTED
    assert "sums its output when forward's `reduce` is true" in why and "symm_mem_all_reduce line" in why
    assert "declares no stage boundaries" in why


# ---------------------------------------------------------------- patched at run time (transformers)

def test_a_sum_patched_in_at_run_time_stays_unaccounted_with_both_tests(tmp_path):
    rows, _rep = audit_files(tmp_path, {"transformers.py": real("transformers.py")})
    why = rows["transformers"].summary
    assert rows["transformers"].kind is UNACCOUNTED
    assert "line 387 under `self.tp_size > 1`" in why and "getattr(self.experts, 'moe_tp_size', 1)" in why
    assert "line 1300 under `not reduce_results and (fused_experts.tp_size > 1 or fused_experts.ep_size > 1)" in why
    # the patch function renamed: read from what it does, not its name
    renamed = real("transformers.py").replace("_add_all_reduce", "_wrap_mlp").replace("MLPWithAllReduce", "Summing")
    rows, _rep = audit_files(tmp_path, {"transformers.py": renamed})
    assert "patched into a module (`mlp.__class__ = Summing`, line 1253) by _wrap_mlp" in rows["transformers"].summary
