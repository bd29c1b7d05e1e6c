"""A corpus of rewrites of real SGLang 0.5.23 model files (the one-argument helper reading the
per-forward context, reduce_moe_output and post_experts_all_reduce, models delegating their sum
to the layer boundary, and the unguarded or hand-guarded sites judged "equivalent in effect" or
"differs"), each labelled by what it does to "every partial sum is reduced exactly once":

- PASS: the same configurations sum exactly once as before: the rewritten file's sites keep their
  verdicts (or the ones `expect` names, where the rewrite changes how many sites there are or
  spells the helper out), no site is "not understood", and the coverage rows of the file and of
  the files that use its blocks keep their kind;
- FLAG: some configuration in scope now sums an axis twice or never: a site of the file now
  "differs" where none more did before, and none is "not understood";
- FIXED: a site that differed, rewritten as the helper would guard it: the verdicts `expect` names.

The rewrite is applied at test time to the file read from the cached wheel (never kept in the
repository; tests/audit/rewrites_0523.py has the edit helpers); the audit reads it with the
release's other files.
"""
from __future__ import annotations

import dataclasses
import importlib.util
import textwrap
from collections import Counter
from functools import cache
from pathlib import Path

import pytest

from sumonce.audit.source import MODELS_DIR, Source
from sumonce.audit.verdict import SiteVerdict as SV


def _helpers():
    # NOTE: importlib mode puts no test folder on sys.path; load the sibling module by its path.
    spec = importlib.util.spec_from_file_location("audit_rewrites_0523", Path(__file__).with_name("rewrites_0523.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


rw = _helpers()
block, both, before, after = rw.block, rw.both, rw.before, rw.after
pytestmark = pytest.mark.sglang
FLAG, PASS, FIXED = "flag", "pass", "fixed"
HELPER = "should_skip_post_experts_all_reduce"
CALLS, EQ, IN_EFFECT, DIFF = SV.HELPER, SV.EQUIVALENT, SV.EQUIVALENT_HERE, SV.DIFFERS


@cache
def release() -> Source:
    from sumonce.audit.source import load
    return load("sglang==0.5.23")


def _related(src: Source, stem: str) -> set[str]:
    """The model files that import from `stem` or that `stem` imports from (one step each way)."""
    text = src.files[f"{MODELS_DIR}{stem}.py"]
    out = set()
    for p, t in src.files.items():
        other = p[len(MODELS_DIR):-3].replace("/", ".")
        if p.startswith(MODELS_DIR) and (f"sglang.srt.models.{stem} import" in t
                                          or f"sglang.srt.models.{other} import" in text
                                          or f"sglang.srt.models.{other.split('.')[0]} import" in text):
            out.add(p)
    return out


def subset(stem: str, text: str) -> Source:
    """The rewritten file, the release's files outside models/, and the model files it is read with."""
    src, rel = release(), f"{MODELS_DIR}{stem}.py"
    keep = {p: t for p, t in src.files.items() if not p.startswith(MODELS_DIR) or p in _related(src, stem)}
    return dataclasses.replace(src, label=f"{stem} (rewritten)", files={**keep, rel: text})


def reading(stem: str, text: str):
    """(the file's site verdicts, the coverage rows of the file and its users, the sites' details)."""
    from sumonce.audit.audit import audit
    rep = audit(subset(stem, text), prefetch=False)
    assert not rep.unparsed, rep.unparsed
    mine = [s for s in rep.sites if s.file.endswith(f"/{stem}.py")]
    users = {p[len(MODELS_DIR):-3] for p in _related(release(), stem)}
    rows = {r.model: r.kind.value for r in rep.coverage.rows if r.model == stem or r.model in users}
    return Counter(s.verdict for s in mine), rows, [(s.method, s.line, s.verdict.value, s.detail) for s in mine]


@cache
def original(stem: str):
    return reading(stem, release().files[f"{MODELS_DIR}{stem}.py"])


CORPUS = []


def case(stem, label, edit, reason, expect=None):
    CORPUS.append((stem, label, edit, reason, expect))


# --- beam: two helper sites (EP, MoE-TP) in BeamMoE.forward ----------------------------------------
EP_IF = f"""
if self.ep_size > 1 and not {HELPER}(
    is_tp_path=False
):
    output = moe_expert_parallel_all_reduce(output)
"""
TP_IF = f"""
if self.tp_size > 1 and not {HELPER}(
    is_tp_path=True
):
    output = moe_tensor_model_parallel_all_reduce(output)
"""
case("beam", PASS, block(EP_IF, f"""
skip_ep = {HELPER}(is_tp_path=False)
if self.ep_size > 1 and not skip_ep:
    output = moe_expert_parallel_all_reduce(output)
"""), "the helper's answer held in a local first")
case("beam", PASS, block(TP_IF, f"""
if not {HELPER}(is_tp_path=True) and 1 < self.tp_size:
    output = moe_tensor_model_parallel_all_reduce(output)
"""), "terms reordered, the size comparison flipped (1 < x)")
case("beam", PASS, block(EP_IF, f"""
if not (self.ep_size <= 1 or {HELPER}(is_tp_path=False)):
    output = moe_expert_parallel_all_reduce(output)
"""), "De Morgan: not (size <= 1 or skip)")
case("beam", PASS, block(TP_IF, f"""
if self.tp_size > 1:
    if not {HELPER}(is_tp_path=True):
        output = moe_tensor_model_parallel_all_reduce(output)
"""), "nested ifs are a conjunction")
case("beam", PASS, block(TP_IF + "return output", f"""
if self.tp_size <= 1 or {HELPER}(is_tp_path=True):
    return output
output = moe_tensor_model_parallel_all_reduce(output)
return output
"""), "early return on the branch that skips, then the reduce unconditionally")
case("beam", PASS, block(EP_IF, f"""
output = (
    moe_expert_parallel_all_reduce(output)
    if self.ep_size > 1 and not {HELPER}(is_tp_path=False)
    else output
)
"""), "the guarded reduce written as a conditional expression")
case("beam", PASS, block(EP_IF, f"""
if self.ep_size <= 1:
    pass
elif {HELPER}(is_tp_path=False):
    pass
else:
    output = moe_expert_parallel_all_reduce(output)
"""), "an elif chain whose last branch reduces")
case("beam", PASS, block(EP_IF, f"""
if self.ep_size > 1 and {HELPER}(is_tp_path=False) is False:
    output = moe_expert_parallel_all_reduce(output)
"""), "`is False` for not on the helper's bool answer")
case("beam", PASS, block(EP_IF, """
ep_all_reduce = moe_expert_parallel_all_reduce
if self.ep_size > 1 and not should_skip_post_experts_all_reduce(is_tp_path=False):
    output = ep_all_reduce(output)
"""), "the collective called through a local alias")
case("beam", PASS, both(
    block(EP_IF, "if self._reduces(self.ep_size, False):\n    output = moe_expert_parallel_all_reduce(output)"),
    block(TP_IF, "if self._reduces(size=self.tp_size, is_tp_path=True):\n    output = moe_tensor_model_parallel_all_reduce(output)"),
    before("def _router_logits(self, hidden_states: torch.Tensor) -> torch.Tensor:", f"""
def _reduces(self, size, is_tp_path):
    return size > 1 and not {HELPER}(is_tp_path=is_tp_path)
""")), "the guards computed by a method, called with positional and keyword arguments")
case("beam", PASS, both(
    block(TP_IF, f"""
if self.tp_size > 1 and not moe_utils.{HELPER}(is_tp_path=True):
    output = moe_tensor_model_parallel_all_reduce(output)
"""), before("from sglang.srt.layers.moe import (", "import sglang.srt.layers.moe.utils as moe_utils")),
    "the helper called through a module-qualified name")
case("beam", PASS, block(EP_IF, EP_IF.replace("is_tp_path=False", "is_tp_path=True")),
     "is_tp_path=True on the EP reduce: in 0.5.23 the completing terms do not read it")
case("beam", PASS, block(EP_IF, """
if self.ep_size > 1 and not (should_skip_mlp_all_reduce() or post_experts_output_is_complete(is_tp_path=False)):
    output = moe_expert_parallel_all_reduce(output)
"""), "the helper spelled out as its two terms (both imported by beam), as the release defines them",
     expect={EQ: 1, CALLS: 1})
case("beam", FLAG, block(EP_IF, """
if self.ep_size > 1 and not should_skip_mlp_all_reduce():
    output = moe_expert_parallel_all_reduce(output)
"""), "the helper's completing term dropped: summed again where the combine or the FP4 all-gather completed it")
case("beam", PASS, block(EP_IF, """
forward_ctx = get_forward()
if self.ep_size > 1 and not (forward_ctx.mlp_reduce_scatter or post_experts_output_is_complete(is_tp_path=False)):
    output = moe_expert_parallel_all_reduce(output)
"""), "the helper spelled out, its per-forward context held in a local", expect={EQ: 1, CALLS: 1})
case("beam", PASS, block(TP_IF, f"""
if self.tp_size > 1 and not (skip_tp := {HELPER}(is_tp_path=True)):
    output = moe_tensor_model_parallel_all_reduce(output)
"""), "the helper's answer named by an assignment expression (:=)")
case("beam", PASS, block("if skip_all_reduce:\n    return output\n" + EP_IF.strip("\n") + "\n" + TP_IF.strip("\n"), f"""
if not skip_all_reduce:
    if self.ep_size > 1 and not {HELPER}(is_tp_path=False):
        output = moe_expert_parallel_all_reduce(output)
    if self.tp_size > 1 and not {HELPER}(is_tp_path=True):
        output = moe_tensor_model_parallel_all_reduce(output)
"""), "the early return on the caller's skip written as an if around both reduces")
case("beam", FLAG, block(EP_IF, f"""
if get_moe_a2a_backend().is_deepep():
    if self.ep_size > 1 and not {HELPER}(is_tp_path=False):
        output = moe_expert_parallel_all_reduce(output)
"""), "the EP reduce only under DeepEP: never runs with the standard dispatcher, the EP sum is missing")
case("beam", FLAG, block(EP_IF, f"""
if self.ep_size > 1 and {HELPER}(is_tp_path=False):
    output = moe_expert_parallel_all_reduce(output)
"""), "the helper's negation lost")
case("beam", FLAG, block(EP_IF, """
if self.ep_size > 1:
    output = moe_expert_parallel_all_reduce(output)
"""), "the helper dropped: summed again after the reduce-scatter or a combine that completed it")
case("beam", FLAG, both(block(TP_IF, f"""
if self.tp_size > 1 and not {HELPER}(is_tp_path=True):
    output = tensor_model_parallel_all_reduce(output)
"""), after("from sglang.srt.distributed import (", "    tensor_model_parallel_all_reduce,")), "the wrong collective: a TP all-reduce also sums the EP axis the EP reduce summed")
case("beam", FLAG, block(EP_IF, f"""
if self.ep_size > 1 and not {HELPER}(is_tp_path=False):
    pass
output = moe_expert_parallel_all_reduce(output)
"""), "the reduce moved out of its guard")
case("beam", FLAG, block(TP_IF, TP_IF + "output = moe_tensor_model_parallel_all_reduce(output)"),
     "the MoE-TP reduce duplicated after its guard")
case("beam", FLAG, block(EP_IF, f"""
if hidden_states.shape[0] > 0:
    if self.ep_size > 1 and not {HELPER}(is_tp_path=False):
        output = moe_expert_parallel_all_reduce(output)
else:
    output = moe_expert_parallel_all_reduce(output)
"""), "the helper skipped on one path: the other reduces unguarded")
case("beam", FLAG, block(EP_IF, f"""
skip_ep = {HELPER}(is_tp_path=False)
if self.ep_size > 1 and skip_ep:
    output = moe_expert_parallel_all_reduce(output)
"""), "the helper's answer held in a local, its negation lost")

# --- qwen2_moe: reduce_moe_output under self.reduce_results; its decoders delegate to the boundary ---
QWEN_RMO = """
if self.reduce_results:
    final_hidden_states = reduce_moe_output(final_hidden_states)
"""
QWEN_BUILT = """
self.mlp = Qwen2MoeSparseMoeBlock(
    layer_id=layer_id,
    config=config,
    quant_config=quant_config,
    alt_stream=alt_stream,
    prefix=add_prefix("mlp", prefix),
    reduce_results=False,
)
"""
case("qwen2_moe", PASS, block(QWEN_RMO, """
final_hidden_states = (
    reduce_moe_output(hidden_states=final_hidden_states) if self.reduce_results else final_hidden_states
)
"""), "a conditional expression, the tensor passed by keyword")
case("qwen2_moe", PASS, both(block(QWEN_RMO, """
if self.reduce_results:
    final_hidden_states = moe_utils.reduce_moe_output(final_hidden_states)
"""), before("from sglang.srt.layers.moe import get_moe_a2a_backend, reduce_moe_output",
             "import sglang.srt.layers.moe.utils as moe_utils")),
     "reduce_moe_output called through a module-qualified name")
case("qwen2_moe", PASS, block(QWEN_RMO + "\n# Debug removed - was causing issues during CUDA graph capture\n\n"
                             "return final_hidden_states.view(num_tokens, hidden_dim)", """
if not self.reduce_results:
    return final_hidden_states.view(num_tokens, hidden_dim)
final_hidden_states = reduce_moe_output(final_hidden_states)
return final_hidden_states.view(num_tokens, hidden_dim)
"""), "an early return where the block is built not to reduce")
case("qwen2_moe", PASS, block(QWEN_RMO, """
reduce_here = self.reduce_results
if reduce_here:
    final_hidden_states = reduce_moe_output(final_hidden_states)
"""), "the constructor's flag held in a local: the block still sums only where built to")
case("qwen2_moe", FLAG, block(QWEN_RMO, "final_hidden_states = reduce_moe_output(final_hidden_states)"),
     "the reduce_results guard dropped: the block sums, and the stage boundary its decoders declare sums again")
case("qwen2_moe", FLAG, block(QWEN_BUILT, QWEN_BUILT.replace("reduce_results=False", "reduce_results=True"), count=1),
     "the delegated decoder builds its block with reduce_results=True: the block and the boundary both sum")
case("qwen2_moe", FLAG, block(QWEN_RMO, """
if self.reduce_results:
    final_hidden_states = tensor_model_parallel_all_reduce(final_hidden_states)
"""), "reduce_moe_output replaced by a bare TP all-reduce: summed again after the reduce-scatter or a combine")

GLM_END = """
    torch.add(final_hidden_states, shared_output, out=final_hidden_states_out)
    final_hidden_states = final_hidden_states_out
return final_hidden_states
"""
case("glm4_moe", FLAG, both(
    block(GLM_END, GLM_END.replace("return final_hidden_states",
                                   "final_hidden_states = tensor_model_parallel_all_reduce(final_hidden_states)\n"
                                   "return final_hidden_states"), count=1),
    block("from sglang.srt.distributed import (\n    get_pp_indices,\n)",
          "from sglang.srt.distributed import (\n    get_pp_indices,\n    tensor_model_parallel_all_reduce,\n)")),
     "a delegated block (no site) now all-reduces its output too: summed by it and by the layer boundary")

# --- deepseek_v2: post_experts_all_reduce under self.reduce_results, three methods -----------------
DS_PEAR = """
if self.reduce_results:
    final_hidden_states = post_experts_all_reduce(final_hidden_states)
"""
case("deepseek_v2", PASS, block(DS_PEAR + "return final_hidden_states", """
if not self.reduce_results:
    return final_hidden_states
final_hidden_states = post_experts_all_reduce(final_hidden_states)
return final_hidden_states
"""), "forward_cpu: an early return where the block is built not to reduce")
case("deepseek_v2", PASS, block(DS_PEAR, """
reduce_output = post_experts_all_reduce
if self.reduce_results:
    final_hidden_states = reduce_output(final_hidden_states)
""", count=3), "post_experts_all_reduce called through a local alias (three methods)")
case("deepseek_v2", PASS, block(DS_PEAR, """
if self.reduce_results is True:
    final_hidden_states = post_experts_all_reduce(final_hidden_states)
""", count=3), "`is True` on the constructor's flag")
case("deepseek_v2", FLAG, block(DS_PEAR + "return final_hidden_states", """
if self.reduce_results:
    final_hidden_states = post_experts_all_reduce(final_hidden_states)
    final_hidden_states = post_experts_all_reduce(final_hidden_states)
return final_hidden_states
"""), "forward_cpu: the reduce duplicated")
case("deepseek_v2", FLAG, both(block(DS_PEAR + "return final_hidden_states", """
if self.reduce_results:
    final_hidden_states = tensor_model_parallel_all_reduce(final_hidden_states)
return final_hidden_states
"""), block("from sglang.srt.distributed import divide", "from sglang.srt.distributed import divide, tensor_model_parallel_all_reduce")),
     "forward_cpu: post_experts_all_reduce replaced by a bare TP all-reduce: the helper is lost")

# --- hunyuan_v3: post_experts_all_reduce, unconditional, in two methods ----------------------------
HY3 = "final_hidden_states = post_experts_all_reduce(final_hidden_states)"
case("hunyuan_v3", PASS, block(HY3, "final_hidden_states = post_experts_all_reduce(hidden_states=final_hidden_states)", count=2),
     "the tensor passed by keyword")
case("hunyuan_v3", PASS, both(block(HY3, "final_hidden_states = moe_layers.post_experts_all_reduce(final_hidden_states)", count=2),
                              block("from sglang.srt.layers.moe import post_experts_all_reduce",
                                    "import sglang.srt.layers.moe.utils as moe_layers")),
     "a module-qualified call, the module imported whole")
case("hunyuan_v3", PASS, block("""
current_stream.wait_stream(self.alt_stream)
final_hidden_states = final_hidden_states + shared_output

final_hidden_states = post_experts_all_reduce(final_hidden_states)
""", """
current_stream.wait_stream(self.alt_stream)
final_hidden_states = post_experts_all_reduce(final_hidden_states)
shared_output = post_experts_all_reduce(shared_output)
final_hidden_states = final_hidden_states + shared_output
"""), "the routed and the (TP-partial) shared outputs each reduced, then added: each summed once",
     expect={CALLS: 3})
case("hunyuan_v3", PASS, block("""
current_stream.wait_stream(self.alt_stream)
final_hidden_states = final_hidden_states + shared_output

final_hidden_states = post_experts_all_reduce(final_hidden_states)
""", """
current_stream.wait_stream(self.alt_stream)
with torch.no_grad():
    final_hidden_states = final_hidden_states + shared_output
    final_hidden_states = post_experts_all_reduce(final_hidden_states)
"""), "the add and the reduce inside a with block (its body runs once)")
case("hunyuan_v3", FLAG, both(block(HY3, "final_hidden_states = moe_expert_parallel_all_reduce(final_hidden_states)", count=2, only=0),
                              after("from sglang.srt.layers.moe import post_experts_all_reduce",
                                    "from sglang.srt.distributed import moe_expert_parallel_all_reduce")),
     "the wrapper replaced by the EP all-reduce alone: the MoE-TP axis is never summed, the helper is lost")
case("hunyuan_v3", FLAG, block(HY3, HY3 + "\n" + HY3, count=2, only=1), "the wrapper called twice")

# --- deepseek_v4_mhc, iquest_q1: post_experts_all_reduce in a function / under reduce_results --------
case("deepseek_v4_mhc", PASS, both(
    block("from sglang.srt.layers.moe import post_experts_all_reduce", "from sglang.srt.layers import moe as moe_layers"),
    block("out = post_experts_all_reduce(pieces.get_merged())", "out = moe_layers.post_experts_all_reduce(pieces.get_merged())")),
     "a function-local import of the package, the wrapper called through it")
case("deepseek_v4_mhc", FLAG, block("out = post_experts_all_reduce(pieces.get_merged())",
                                    "out = post_experts_all_reduce(post_experts_all_reduce(pieces.get_merged()))"),
     "the wrapper applied twice")
IQ = """
if self.reduce_results:
    output = post_experts_all_reduce(output)
"""
case("iquest_q1", PASS, block(IQ, """
if not self.reduce_results:
    pass
else:
    output = post_experts_all_reduce(output)
"""), "the reduce on the else branch of the negated test")
case("iquest_q1", PASS, block(IQ, """
if getattr(self, "reduce_results", True):
    output = post_experts_all_reduce(output)
"""), "the constructor's flag read through getattr")
case("iquest_q1", FLAG, both(block(IQ, """
if self.reduce_results:
    output = moe_tensor_model_parallel_all_reduce(output)
"""), after("from sglang.srt.layers.moe import post_experts_all_reduce",
            "from sglang.srt.distributed import moe_tensor_model_parallel_all_reduce")),
     "the wrapper replaced by the MoE-TP all-reduce alone: the EP axis is never summed")

# --- the unguarded or size-guarded sites judged "equivalent in effect" ----------------------------
HY_IF = """
if self.tp_size > 1:
    final_hidden_states = tensor_model_parallel_all_reduce(final_hidden_states)
"""
case("hunyuan", PASS, block(HY_IF + "\nreturn final_hidden_states.view(orig_shape)", """
if self.tp_size <= 1:
    return final_hidden_states.view(orig_shape)
final_hidden_states = tensor_model_parallel_all_reduce(final_hidden_states)
return final_hidden_states.view(orig_shape)
"""), "an early return where there is one rank")
case("hunyuan", PASS, block(HY_IF, """
if not self.tp_size > 1:
    pass
else:
    final_hidden_states = tensor_model_parallel_all_reduce(final_hidden_states)
"""), "the reduce on the else branch of the negated test")
case("hunyuan", PASS, block(HY_IF, """
if self.tp_size != 1:
    final_hidden_states = tensor_model_parallel_all_reduce(final_hidden_states)
"""), "> 1 written as != 1 (a size is at least 1)")
case("hunyuan", FLAG, block(HY_IF, """
if self.tp_size == 1:
    final_hidden_states = tensor_model_parallel_all_reduce(final_hidden_states)
"""), "the size test negated: the sum never runs where there is more than one rank")
ER_IF = HY_IF
case("ernie4", PASS, block(ER_IF, """
tp_size = self.tp_size
if tp_size > 1:
    final_hidden_states = tensor_model_parallel_all_reduce(final_hidden_states)
"""), "the size held in a local")
case("ernie4", FLAG, block(ER_IF, ER_IF + "final_hidden_states = tensor_model_parallel_all_reduce(final_hidden_states)"),
     "a second, unguarded reduce after the guarded one")
AF = "final_hidden_states = tensor_model_parallel_all_reduce(final_hidden_states)"
case("afmoe", PASS, block(AF + "\nreturn final_hidden_states.view(num_tokens, hidden_dim)",
                          "return tensor_model_parallel_all_reduce(final_hidden_states).view(num_tokens, hidden_dim)"),
     "the reduce inside the return expression")
case("afmoe", PASS, block(AF, "final_hidden_states = tensor_model_parallel_all_reduce(input_=final_hidden_states)"),
     "the tensor passed by its keyword")
case("afmoe", FLAG, block(AF, AF + "\n" + AF), "the reduce duplicated")
case("xverse_moe", PASS, block(AF, """
final_hidden_states = (
    tensor_model_parallel_all_reduce(final_hidden_states) if get_parallel().tp_size > 1 else final_hidden_states
)
"""), "a conditional expression on the TP size: one rank sums nothing")
case("xverse_moe", PASS, block(AF, """
parallel = get_parallel()
if parallel.tp_size > 1:
    final_hidden_states = tensor_model_parallel_all_reduce(final_hidden_states)
"""), "the parallel state held in a local, the size tested through it")
case("xverse_moe", FLAG, both(block(AF, "final_hidden_states = moe_expert_parallel_all_reduce(final_hidden_states)"),
                              after("from sglang.srt.distributed import (", "    moe_expert_parallel_all_reduce,")),
     "the TP all-reduce made an EP one: the MoE-TP axis is never summed")
case("deepseek", PASS, block(AF, "final_hidden_states = tensor_model_parallel_all_reduce(input_=final_hidden_states)"),
     "the tensor passed by its keyword")
case("mixtral_quant", PASS, block("return tensor_model_parallel_all_reduce(final_hidden_states)", """
summed = tensor_model_parallel_all_reduce(final_hidden_states)
return summed
"""), "the reduced tensor held in a local before the return")
case("grok", PASS, block("if get_parallel().tp_size > 1:\n    self.ffn = lambda x: tensor_model_parallel_all_reduce(",
                        "if not get_parallel().tp_size <= 1:\n    self.ffn = lambda x: tensor_model_parallel_all_reduce("),
     "the size test negated twice, around the lambda that reduces")
case("grok", FLAG, block("self.ffn = lambda x: tensor_model_parallel_all_reduce(\n    self.moe_with_rmoe(x)\n)",
                         "self.ffn = lambda x: tensor_model_parallel_all_reduce(\n    tensor_model_parallel_all_reduce(self.moe_with_rmoe(x))\n)"),
     "the lambda reduces twice")
CO = "if self.tp_size > 1:\n    combined = tensor_model_parallel_all_reduce(combined)"
case("grok", PASS, both(
    block("self.ffn = lambda x: tensor_model_parallel_all_reduce(\n    self.moe_with_rmoe(x)\n)", "self.ffn = self._ffn_reduced"),
    before("def moe_with_rmoe(self, x):", "def _ffn_reduced(self, x):\n    return tensor_model_parallel_all_reduce(self.moe_with_rmoe(x))\n")),
     "the reducing lambda made a method of the layer")

case("cohere2_moe", PASS, block(CO, "if 1 < self.tp_size:\n    combined = tensor_model_parallel_all_reduce(combined)"),
     "the decoder-level reduce's comparison flipped")
case("cohere2_moe", PASS, block("combined = attn_out + mlp_out\n" + CO, """
combined = (
    tensor_model_parallel_all_reduce(attn_out + mlp_out) if self.tp_size > 1 else attn_out + mlp_out
)
"""), "the parallel block's sum and reduce as one conditional expression")
case("cohere2_moe", FLAG, block("combined = attn_out + mlp_out",
                                "if self.tp_size > 1:\n    mlp_out = tensor_model_parallel_all_reduce(mlp_out)\ncombined = attn_out + mlp_out"),
     "the MoE output reduced before the parallel block's own reduce: its axes summed twice")

# --- the sites that differ keep differing --------------------------------------------------------
case("dbrx", PASS, block(HY_IF, """
if 1 < self.tp_size:
    final_hidden_states = tensor_model_parallel_all_reduce(final_hidden_states)
"""), "still differs: the comparison flipped")
case("dbrx", FIXED, both(block(HY_IF, f"""
if self.tp_size > 1 and not {HELPER}(is_tp_path=True):
    final_hidden_states = tensor_model_parallel_all_reduce(final_hidden_states)
"""), before("from sglang.srt.runtime_context import get_parallel", f"from sglang.srt.layers.moe.utils import {HELPER}")),
     "the fix: the helper guards the TP all-reduce (no sum twice under the FP4 all-gather)", expect={CALLS: 1})
MS_DP = "if self.tp_size > 1 and (not _is_cpu or self.moe_tp_size == 1):"
case("muse_spark", PASS, block(MS_DP, "if self.tp_size > 1 and not (_is_cpu and self.moe_tp_size != 1):"),
     "still differs: De Morgan inside the guard")
MS_RU = """
if (
    self.tp_size > 1
    and self.moe_tp_size == 1
    and not getattr(get_forward(), "sp_active", False)
    and not already_reduced
):
"""
case("muse_spark", PASS, block(MS_RU, """
if not (
    self.tp_size <= 1
    or self.moe_tp_size != 1
    or getattr(get_forward(), "sp_active", False)
    or already_reduced
):
"""), "still differs: the whole guard by De Morgan")


@pytest.mark.parametrize("stem, label, edit, reason, expect", CORPUS,
                         ids=[f"{c[0]}-{c[1]}-{i}" for i, c in enumerate(CORPUS)])
def test_rewrite(stem, label, edit, reason, expect):
    text = edit(release().files[f"{MODELS_DIR}{stem}.py"])
    verdicts, rows, detail = reading(stem, text)
    before_v, before_rows, _ = original(stem)
    assert not verdicts.get(SV.NOT_UNDERSTOOD, 0) > before_v.get(SV.NOT_UNDERSTOOD, 0), (reason, detail)
    if label == FLAG:
        assert verdicts.get(SV.DIFFERS, 0) > before_v.get(SV.DIFFERS, 0), (reason, detail, rows)
    elif label == FIXED:  # a site that differed, rewritten as the helper would have it
        assert before_v.get(SV.DIFFERS) and verdicts == Counter(expect), (reason, detail)
    else:
        assert verdicts == (Counter(expect) if expect else before_v), (reason, detail)
        assert rows == before_rows, (reason, rows, before_rows)


def test_corpus_covers_both_labels_and_many_files():
    assert len(CORPUS) >= 30 and len({c[0] for c in CORPUS}) >= 10
    assert {c[1] for c in CORPUS} == {FLAG, PASS, FIXED}


def _guard_method(body: str):
    """beam's EP guard computed by a method `_reduces(size, is_tp_path)` whose body is `body`."""
    return both(
        block(EP_IF, "if self._reduces(self.ep_size, False):\n    output = moe_expert_parallel_all_reduce(output)"),
        before("def _router_logits(self, hidden_states: torch.Tensor) -> torch.Tensor:",
               "def _reduces(self, size, is_tp_path):\n" + textwrap.indent(textwrap.dedent(body).strip("\n"), "    ") + "\n"))


def test_a_guard_method_not_lifted_is_named_and_its_forward_not_counted():
    """A guard computed by a method whose body the Lifter cannot lift (a loop on a condition)
    stays not understood, the reason naming the method, its line and why; the forward's other site
    keeps its own verdict (before, the forward was counted without the site not understood, and
    the other site was blamed for an EP axis "summed not at all")."""
    edit = _guard_method(f"""
        while size > 64:
            size //= 2
        return size > 1 and not {HELPER}(is_tp_path=is_tp_path)
    """)
    verdicts, _rows, detail = reading("beam", edit(release().files[f"{MODELS_DIR}beam.py"]))
    assert verdicts == Counter({SV.NOT_UNDERSTOOD: 1, CALLS: 1}), detail
    reason = next(d[3] for d in detail if d[2] == SV.NOT_UNDERSTOOD.value)
    assert "_reduces (line " in reason and "could not be lifted" in reason and "While" in reason, reason


def test_a_guard_method_that_logs_is_read_without_its_log_lines():
    """Logging statements (audit/inert.py) change nothing a guard method returns: the guard with a
    `logger.debug` line, and with one inside an if, calls the helper as without them."""
    for body in (f"""
        logger.debug("post-experts reduce over %d ranks", size)
        return size > 1 and not {HELPER}(is_tp_path=is_tp_path)
    """, f"""
        if size > 1:
            logger.info("reducing")
            return not {HELPER}(is_tp_path=is_tp_path)
        print("nothing to reduce")
        return False
    """):
        verdicts, _rows, detail = reading("beam", _guard_method(body)(release().files[f"{MODELS_DIR}beam.py"]))
        assert verdicts == Counter({CALLS: 2}), detail
