"""Scan cached SGLang wheels for the shape of the post-experts all-reduce decision.

Reads each wheel in the cache directly (zipfile + ast, stdlib only) and prints, per
release, the facts that docs/eras.json records under "releases": the decision's shape,
the helper's signature and line, the predicates' lines, which model files call each
decision function, and which model files hold a MoE layer.

    python tools/eras_scan.py [CACHE_DIR] > /tmp/releases.json

This is a research aid for docs/ERAS.md; it reads SGLang source but copies none.
"""

from __future__ import annotations

import ast
import json
import re
import sys
import zipfile
from pathlib import Path

CACHE = Path.home() / ".cache" / "sumonce" / "sglang"
UTILS = "sglang/srt/layers/moe/utils.py"
MODELS = "sglang/srt/models/"
HELPER = "should_skip_post_experts_all_reduce"
# Functions of layers/moe/utils.py whose definition line and callers are recorded.
DECISION_FUNCS = (
    HELPER,
    "should_skip_mlp_all_reduce",
    "post_experts_output_is_complete",
    "reduce_moe_output",
    "should_add_replicated_moe_output",
    "adds_replicated_output_to_partial",
    "post_experts_all_reduce",
    "sum_post_experts_output",
    "post_experts_reduction_group",
    "post_experts_sum_is_one_all_reduce",
    "can_merge_post_experts_all_reduce",
    "deferred_post_experts_all_reduce",
    "should_use_flashinfer_cutlass_moe_fp4_allgather",
    "should_use_dp_reduce_scatterv",
)
# A model file "holds a MoE layer" when it names one of these experts classes or
# the experts-class factory (a textual test; see docs/ERAS.md, "MoE model files").
MOE_MARK = re.compile(r"\b(get_moe_impl_class|FusedMoE|EPMoE|DeepEPMoE)\b")
# Per-forward flags a decoder may publish (get_forward().scoped(name=...)): F and R.
CONTEXT_FLAGS = {"F": "fuse_mlp_allreduce", "R": "mlp_reduce_scatter"}
VERSION = re.compile(r"^sglang-(?P<v>[0-9][^-]*)-")


def version_key(version: str) -> tuple:
    base, _, post = version.partition(".post")
    return tuple(int(x) for x in base.split(".")) + (int(post or 0),)


def wheels(cache: Path) -> dict[str, Path]:
    found = {}
    for path in cache.glob("sglang-*.whl"):
        match = VERSION.match(path.name)
        if match:
            found[match["v"]] = path
    return dict(sorted(found.items(), key=lambda kv: version_key(kv[0])))


def functions(source: str) -> dict[str, ast.FunctionDef]:
    tree = ast.parse(source)
    return {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)}


def params(fn: ast.FunctionDef) -> dict:
    """Positional and keyword-only parameter names, with their defaults as text."""
    a = fn.args
    kw_defaults = [None if d is None else ast.unparse(d) for d in a.kw_defaults]
    return {
        "positional": [p.arg for p in a.posonlyargs + a.args],
        "keyword_only": [p.arg for p in a.kwonlyargs],
        "keyword_defaults": dict(zip([p.arg for p in a.kwonlyargs], kw_defaults)),
    }


def called_names(fn: ast.FunctionDef) -> list[str]:
    """Names of functions and methods called in fn's body, in source order."""
    names = []
    for node in ast.walk(fn):
        if isinstance(node, ast.Call):
            f = node.func
            name = f.id if isinstance(f, ast.Name) else getattr(f, "attr", None)
            if name and name not in names:
                names.append(name)
    return names


def shape(defs: dict) -> str:
    if HELPER not in defs:
        return "no_helper"
    p = params(defs[HELPER])
    if "use_reduce_scatter" in p["keyword_only"]:
        return "keyword_helper"
    if "post_experts_output_is_complete" not in defs:
        return "context_helper"
    if "sum_post_experts_output" not in defs:
        return "complete_predicate_models_reduce"
    return "complete_predicate_boundary_sums"


def callers(zf: zipfile.ZipFile, names: list[str]) -> dict:
    """Per decision function: model file -> number of call expressions."""
    out = {f: {} for f in DECISION_FUNCS + ("SGLANG_SHARED_EXPERT_TP1", "context_publishers")}
    moe = []
    for name in names:
        text = zf.read(name).decode()
        stem = name[len(MODELS):-3]
        if MOE_MARK.search(text):
            moe.append(stem)
        for func in DECISION_FUNCS:
            n = len(re.findall(rf"\b{func}\s*\(", text))
            if n:
                out[func][stem] = n
        published = [k for k, flag in CONTEXT_FLAGS.items() if re.search(rf"\b{flag}\s*=", text)]
        if published:
            out["context_publishers"][stem] = published
        if "SGLANG_SHARED_EXPERT_TP1" in text:
            out["SGLANG_SHARED_EXPERT_TP1"][stem] = text.count("SGLANG_SHARED_EXPERT_TP1")
    return {"moe_model_files": sorted(moe), "callers": {k: v for k, v in out.items() if v}}


def scan(path: Path) -> dict:
    with zipfile.ZipFile(path) as zf:
        utils = zf.read(UTILS).decode()
        defs = functions(utils)
        models = sorted(
            n for n in zf.namelist()
            if n.startswith(MODELS) and n.endswith(".py") and n.count("/") == 3
        )
        found = callers(zf, models)
    helper = defs.get(HELPER)
    return {
        "shape": shape(defs),
        "helper": None if helper is None else {
            "file": UTILS, "line": helper.lineno, **params(helper),
            "calls": called_names(helper),
        },
        "utils_defs": {f: defs[f].lineno for f in DECISION_FUNCS if f in defs},
        "model_files": len(models),
        **found,
    }


def main(argv: list[str]) -> int:
    cache = Path(argv[1]) if len(argv) > 1 else CACHE
    if not cache.is_dir():
        print(f"eras_scan: {cache} is not a directory (give the wheel cache)", file=sys.stderr)
        return 2
    print(json.dumps({v: scan(p) for v, p in wheels(cache).items()}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
