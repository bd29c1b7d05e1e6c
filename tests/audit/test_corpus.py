"""A corpus of guard rewrites of real SGLang 0.5.11 model files, each labelled by what it does to
"every partial sum is reduced exactly once": FLAG (some configuration in scope now sums an axis
twice or never, where the release summed it once) or PASS (the same configurations sum exactly
once). The rewrite is applied at test time to the file read from the cached wheel; the audit reads
the rewritten file with the release's utils and the files that build its blocks.

A file is flagged when the rewrite adds a site the audit says differs; it passes when no site
differs or is not understood beyond what the unmodified file already had.
"""
from __future__ import annotations

import importlib.util
from collections import Counter
from functools import lru_cache
from pathlib import Path

import pytest

from sumonce.audit.audit import audit
from sumonce.audit.source import MODELS_DIR, Source, load
from sumonce.audit.verdict import SiteVerdict as SV

def _rewrites():
    # NOTE: importlib mode puts no test folder on sys.path; load the sibling module by its path.
    spec = importlib.util.spec_from_file_location("audit_rewrites", Path(__file__).with_name("rewrites.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


rw = _rewrites()
Q, V = rw.Q, rw.V

pytestmark = pytest.mark.sglang
FLAG, PASS = "flag", "pass"
DEEPEP = "get_moe_a2a_backend().is_deepep()"
TP = "tensor_model_parallel_all_reduce"


@lru_cache(maxsize=None)
def release() -> Source:
    return load("sglang==0.5.11")


def subset(stem: str, text: str) -> Source:
    """The rewritten file, the release's utils, and the model files that import from it."""
    src, rel = release(), f"{MODELS_DIR}{stem}.py"
    users = {p: t for p, t in src.files.items()
             if p.startswith(MODELS_DIR) and f"sglang.srt.models.{stem} import" in t}
    files = {p: t for p, t in src.files.items() if not p.startswith(MODELS_DIR)} | users | {rel: text}
    return Source(f"{stem} (rewritten)", files, src.root)


def bad_counts(stem: str, text: str) -> tuple[Counter, list]:
    rep = audit(subset(stem, text))
    mine = [s for s in rep.sites if s.file.endswith(f"/{stem}.py")]
    assert not rep.unparsed, rep.unparsed
    return Counter(s.verdict for s in mine if s.verdict.bad), mine


@lru_cache(maxsize=None)
def original(stem: str) -> Counter:
    return bad_counts(stem, release().files[f"{MODELS_DIR}{stem}.py"])[0]


def _dup(test, call, body, nxt):
    return f"if {test}:\n    {body}\nif {test}:\n    {body}"


CORPUS = [
    # --- PASS: the same configurations sum exactly once --------------------------------------
    ("qwen3_moe", 1, rw.with_test(lambda t, c: f"self.tp_size > 1 and not (should_allreduce_fusion or "
                                                f"use_reduce_scatter or {V} or {Q})"), PASS,
     "De Morgan: not helper(TP) expands to not (F or R or V or Q)"),
    ("bailing_moe", 0, rw.with_test(lambda t, c: f"self.tp_size > 1 and not should_allreduce_fusion and not "
                                                  f"use_reduce_scatter and not {V} and not {Q}"), PASS,
     "the helper's TP skip set, term by term, negated"),
    ("glm4_moe", 0, rw.with_test(lambda t, c: f"not {c} and self.tp_size > 1"), PASS,
     "terms reordered"),
    ("mimo_v2", 0, rw.with_block(lambda t, c, b, n: f"skip_reduce = {c}\nif self.tp_size > 1 and not skip_reduce:\n    {b}"),
     PASS, "the helper's answer held in a local first"),
    ("sdar_moe", 0, rw.with_block(lambda t, c, b, n: f"if self.tp_size > 1:\n    if not {c}:\n        {b}"), PASS,
     "nested ifs are a conjunction"),
    ("minimax_m2", 0, rw.with_test(lambda t, c: f"self.tp_size > 1 and self.tp_size >= 1 and not {c}"), PASS,
     "an implied term added"),
    ("llada2", 0, rw.with_block(lambda t, c, b, n: f"if not ({t}):\n    {rw.ret(n)}\n{b}"), PASS,
     "early return on the branch that skips, then the reduce unconditionally"),
    ("llama4", 0, rw.with_block(lambda t, c, b, n: f"if {t}:\n    {b}\nelse:\n    {rw.ret(n)}"), PASS,
     "early return on the else branch"),
    ("step3p5", 0, rw.with_test(lambda t, c: "self.tp_size > 1 and not should_allreduce_fusion"), PASS,
     "its decoder always passes should_allreduce_fusion=True: both guards never run the reduce"),
    ("bailing_moe_linear", 0, rw.call_without("use_reduce_scatter"), PASS,
     "its communicator is built without allow_reduce_scatter: R is never true"),
    ("hunyuan_v3", 1, rw.with_test(lambda t, c: f"self.tp_size > 1 and not {V} and not {Q}"), PASS,
     "a block that receives neither F nor R: the helper is V or Q on the TP path"),
    ("qwen3_moe", 0, rw.rename_block_params({"use_reduce_scatter": "rs", "should_allreduce_fusion": "fuse"}),
     PASS, "parameters renamed; the decoder passes them positionally"),
    ("bailing_moe", 0, rw.rename_block_params({"use_reduce_scatter": "rs", "should_allreduce_fusion": "fuse"},
                                              swap_order=True), PASS,
     "renamed and swapped: each receives the other flag, and the helper skips on F or R alike"),
    ("glm4_moe", 1, rw.with_block(lambda t, c, b, n: f"if {t}:\n    {b}\n{rw.ret(n)}\n{b}"), PASS,
     "a second reduce after the function's return is dead code"),
    ("mimo_v2", 0, rw.with_block(lambda t, c, b, n: rw.nested("not " + DEEPEP, t, b)), PASS,
     "reached when the a2a backend is not DeepEP: always, in scope"),
    ("sdar_moe", 0, rw.with_test(lambda t, c: f"not {c}"), PASS,
     "no size test: an all-reduce over one rank sums nothing"),
    ("minimax_m2", 0, rw.with_test(lambda t, c: t.replace("self.tp_size > 1", "self.tp_size >= 2")), PASS,
     "> 1 written as >= 2"),
    ("exaone_moe", 0, rw.with_block(lambda t, c, b, n: f"if hidden_states.shape[0] > 0:\n    if {t}:\n        {b}\n"
                                                       f"else:\n    if {t}:\n        {b}"), PASS,
     "the same guarded reduce on both branches of a test proto has no word for: one runs"),
    ("llama4", 0, rw.with_block(lambda t, c, b, n: f"run_reduce = {t}\nif run_reduce:\n    {b}"), PASS,
     "the whole condition held in a local"),
    ("qwen2_moe", 0, rw.with_test(lambda t, c: f"not {c} and self.tp_size > 1"), PASS,
     "terms reordered in a block three models build"),
    ("mimo_v2", 0, rw.with_block(lambda t, c, b, n: rw.as_ifexp(b, t)), PASS,
     "the guarded reduce written as a conditional expression"),
    ("minimax_m2", 0, rw.with_block(lambda t, c, b, n: f"skip_reduce = True\nif self.tp_size > 1:\n"
                                                       f"    skip_reduce = {c}\nif not skip_reduce:\n    {b}"), PASS,
     "the skip decided in a branch: True where tp_size == 1, the helper's answer elsewhere"),
    ("sdar_moe", 0, rw.with_test(lambda t, c: f"{t} and hidden_states.shape[0] > 0"), PASS,
     "a conjunct proto has no word for is a reach condition, as if it were an enclosing if"),
    ("glm4_moe", 1, rw.into_method, PASS, "the guarded reduce moved into a method the forward calls with F and R"),
    ("qwen3_moe", 0, rw.guard_in_method(), PASS, "the guard computed by a method the forward calls with F and R"),
    ("bailing_moe", 0, rw.with_block(lambda t, c, b, n: f"if {t}:\n    {b.replace(TP, 'moe_expert_parallel_all_reduce')}"
                                                       f"\n    {b.replace(TP, 'moe_tensor_model_parallel_all_reduce')}"), PASS,
     "the TP all-reduce split into its EP and MoE-TP all-reduces, under the same guard"),
    ("mimo_v2", 0, rw.with_test(lambda t, c: f"not (self.tp_size > 1 and {c})"), PASS,
     "the negation pulled out: runs also where tp_size == 1, an all-reduce over one rank"),
    ("bailing_moe", 0, rw.with_test(lambda t, c: t.replace("use_reduce_scatter=use_reduce_scatter", "use_reduce_scatter=F_")
                                    .replace("should_allreduce_fusion=should_allreduce_fusion", "should_allreduce_fusion=use_reduce_scatter")
                                    .replace("=F_", "=should_allreduce_fusion")), PASS,
     "F and R passed to each other's keyword: the helper skips on either alike"),
    # --- FLAG: some configuration now sums an axis twice or never ------------------------------
    ("minimax_m2", 0, rw.with_test(lambda t, c: f"{t} and get_moe_runner_backend().is_flashinfer_cutlass()"), FLAG,
     "reduce only under one runner backend: the sum is missing under the others"),
    ("bailing_moe", 0, rw.with_test(lambda t, c: t.replace("is_tp_path=True", "is_tp_path=False")), FLAG,
     "is_tp_path=False on the TP all-reduce: summed again after the FP4 all-gather's combine (Q)"),
    ("mimo_v2", 0, rw.with_block(lambda t, c, b, n: f"if {t}:\n    {b.replace(TP, 'moe_expert_parallel_all_reduce')}"),
     FLAG, "the TP all-reduce made an EP one: the MoE-TP axis is never summed"),
    ("sdar_moe", 0, rw.guard_in_method(lambda t, c: "self.tp_size > 1 and not should_allreduce_fusion"), FLAG,
     "a guard method that forgets R, V and Q"),
    ("bailing_moe", 0, lambda text, nth: rw.into_method(text, nth, keep=True), FLAG,
     "the guarded reduce copied into a method the forward also calls: two reduces in one forward"),
    ("mimo_v2", 0, rw.with_test(lambda t, c: "self.tp_size > 1 and hidden_states.shape[0] > 0"), FLAG,
     "the helper dropped beside a reach conjunct: summed again after F, R, V or Q"),
    ("glm4_moe", 0, rw.with_block(lambda t, c, b, n: rw.as_ifexp(b, "self.tp_size > 1")), FLAG,
     "a conditional expression that tests only the size: summed again after F, R, V or Q"),
    ("llada2", 0, rw.with_block(lambda t, c, b, n: f"skip_reduce = False\nif use_reduce_scatter:\n"
                                                   f"    skip_reduce = True\nif self.tp_size > 1 and not skip_reduce:\n    {b}"),
     FLAG, "the skip decided in a branch on R alone: V and Q lost"),
    ("qwen3_moe", 0, rw.call_without("use_reduce_scatter"), FLAG,
     "EP reduce without R: summed again after the communicator's reduce-scatter (as before #23734)"),
    ("bailing_moe", 0, rw.with_test(lambda t, c: "self.tp_size > 1 and not use_reduce_scatter"), FLAG,
     "drops F, V and Q: summed again by the next layer's fused all-reduce"),
    ("glm4_moe", 1, rw.with_block(lambda t, c, b, n: f"if {t}:\n    {b}\n    {b}"), FLAG,
     "the all-reduce call duplicated"),
    ("mimo_v2", 0, rw.with_block(_dup), FLAG, "the guarded block duplicated: two helper-guarded reduces"),
    ("sdar_moe", 0, rw.with_block(lambda t, c, b, n: f"if {t}:\n    pass\n{b}"), FLAG,
     "the reduce moved out of its if"),
    ("minimax_m2", 0, rw.with_block(lambda t, c, b, n: f"{rw.ret(n)}\nif {t}:\n    {b}"), FLAG,
     "an early return before the reduce: it is dead, the sum is missing"),
    ("llama4", 0, rw.with_block(lambda t, c, b, n: rw.nested(DEEPEP, t, b)), FLAG,
     "reduce only under DeepEP: never runs in scope, the sum is missing"),
    ("qwen2_moe", 0, rw.call_without("should_allreduce_fusion"), FLAG,
     "harmless for qwen2_moe's decoder (never passes F), double for qwen3_next's (fuses the next layer)"),
    ("glm4_moe", 0, rw.with_block(lambda t, c, b, n: f"if {t}:\n    {rw.ret(n)}\n{b}"), FLAG,
     "early return on the wrong branch: the reduce runs exactly where the helper skips"),
    ("exaone_moe", 0, rw.with_block(lambda t, c, b, n: f"if self.tp_size > 1:\n    if {c}:\n        {b}"), FLAG,
     "nested if with the negation lost"),
    ("hunyuan_v3", 1, rw.with_test(lambda t, c: t.replace("not ", "", 1)), FLAG, "the helper's negation dropped"),
    ("minimax_m2", 0, rw.with_test(lambda t, c: f"self.tp_size > 1 or not {c}"), FLAG, "and written as or"),
    ("llada2", 0, rw.with_test(lambda t, c: "self.tp_size > 1 and not use_reduce_scatter"), FLAG,
     "drops V and Q: summed twice under DP attention's reduce-scatterv or the FP4 all-gather"),
    ("qwen3_moe", 1, rw.with_block(lambda t, c, b, n: f"if {t}:\n    "
                                   + b.replace("moe_tensor_model_parallel_all_reduce", "tensor_model_parallel_all_reduce")),
     FLAG, "the MoE-TP reduce made a TP reduce: the EP axis is summed by it and by the EP reduce"),
    ("sdar_moe", 0, rw.with_block(lambda t, c, b, n: f"if {t}:\n    {b}\nif self.alt_stream is not None:\n"
                                                     f"    if {t}:\n        {b}"), FLAG,
     "a second guarded reduce under a test proto has no word for: both can run"),
    ("bailing_moe_linear", 0, rw.with_test(lambda t, c: "self.tp_size > 1 and not should_allreduce_fusion"), FLAG,
     "drops V and Q (R is never true here, F is): summed twice under V or Q"),
]


@pytest.mark.parametrize("stem, nth, edit, label, reason", CORPUS,
                         ids=[f"{c[0]}-{c[3]}-{i}" for i, c in enumerate(CORPUS)])
def test_rewrite(stem, nth, edit, label, reason):
    text = edit(release().files[f"{MODELS_DIR}{stem}.py"], nth)
    bad, sites = bad_counts(stem, text)
    before = original(stem)
    new = {k: n - before.get(k, 0) for k, n in bad.items() if n > before.get(k, 0)}
    detail = [(s.method, s.line, s.verdict.value, s.detail) for s in sites]
    if label == FLAG:
        assert new.get(SV.DIFFERS), (reason, detail)
        assert not new.get(SV.NOT_UNDERSTOOD), (reason, detail)
    else:
        assert not new, (reason, detail)


def test_corpus_covers_ten_files_and_both_labels():
    assert len(CORPUS) >= 30 and len({c[0] for c in CORPUS}) >= 10
    assert {c[3] for c in CORPUS} == {FLAG, PASS}


def test_harmful_for_one_caller_names_both():
    text = rw.call_without("should_allreduce_fusion")(release().files[f"{MODELS_DIR}qwen2_moe.py"])
    _bad, sites = bad_counts("qwen2_moe", text)
    site = next(s for s in sites if s.verdict == SV.DIFFERS)
    assert "qwen3_next" in site.detail and "harmless within" in site.detail and "qwen2_moe" in site.detail
