"""Aliased SGLang imports read under their own names (audit/imports.py): the audit's verdicts on a
real 0.5.23 file do not change when the file imports the helper, post_experts_all_reduce or
reduce_moe_output under another name (before, `beam`'s two helper calls read as a difference and
deepseek_v2's and qwen2_moe's sites vanished)."""
from __future__ import annotations

import dataclasses
from functools import cache

import pytest

from sumonce.audit.imports import canonical

M = "sglang/srt/models/"


@cache
def release():
    from sumonce.audit.source import load
    return load("sglang==0.5.23")


def verdicts(stem: str, text: str):
    from sumonce.audit.audit import audit
    src = release()
    rep = audit(dataclasses.replace(src, files={**src.files, M + stem + ".py": text}))
    sites = [(s.method, s.line, s.verdict.value) for s in rep.sites if s.file.endswith(f"/{stem}.py")]
    return sites, [r.kind.value for r in rep.coverage.rows if r.model == stem]


def _edit(text, *pairs):
    for old, new, count in pairs:
        assert text.count(old) == count, (old, text.count(old))
        text = text.replace(old, new)
    return text


REWRITES = {
    "beam: the helper as skip_ar": ("beam", (
        ("    should_skip_post_experts_all_reduce,\n", "    should_skip_post_experts_all_reduce as skip_ar,\n", 1),
        ("not should_skip_post_experts_all_reduce(", "not skip_ar(", 2),
        ("or should_skip_post_experts_all_reduce(", "or skip_ar(", 1))),
    "deepseek_v2: post_experts_all_reduce as pear": ("deepseek_v2", (
        ("    post_experts_all_reduce,\n", "    post_experts_all_reduce as pear,\n", 1),
        ("= post_experts_all_reduce(", "= pear(", 3))),
    "qwen2_moe: reduce_moe_output as rmo": ("qwen2_moe", (
        ("get_moe_a2a_backend, reduce_moe_output", "get_moe_a2a_backend, reduce_moe_output as rmo", 1),
        ("= reduce_moe_output(", "= rmo(", 1))),
    "qwen2_moe: through the module": ("qwen2_moe", (
        ("from sglang.srt.layers.moe import get_moe_a2a_backend, reduce_moe_output",
         "from sglang.srt.layers.moe import get_moe_a2a_backend; import sglang.srt.layers.moe as moe_layers", 1),
        ("= reduce_moe_output(", "= moe_layers.reduce_moe_output(", 1))),
    "hunyuan_v3: through the package": ("hunyuan_v3", (
        ("from sglang.srt.layers.moe import post_experts_all_reduce\n", "from sglang.srt.layers import moe as moe_layers\n", 1),
        ("= post_experts_all_reduce(", "= moe_layers.post_experts_all_reduce(", 2))),
    "hunyuan_v3: inside a function, as _sum": ("hunyuan_v3", (
        ("from sglang.srt.layers.moe import post_experts_all_reduce\n",
         "from sglang.srt.layers.moe import post_experts_all_reduce as _sum\n", 1),
        ("= post_experts_all_reduce(", "= _sum(", 2))),
}


@pytest.mark.sglang
@pytest.mark.parametrize("case", REWRITES)
def test_an_aliased_import_reads_as_the_name(case):
    stem, pairs = REWRITES[case]
    text = release().files[M + stem + ".py"]
    assert verdicts(stem, _edit(text, *pairs)) == verdicts(stem, text)


def test_only_the_names_change_never_a_line():
    text = ("from sglang.srt.layers.moe import (\n    reduce_moe_output as rmo,\n    get_moe_a2a_backend,\n)\n"
            "def f(x):\n    return rmo(x) + rmo(rmo(x))  # rmo\n")
    out = canonical(text)
    assert out == ("from sglang.srt.layers.moe import (\n    reduce_moe_output,\n    get_moe_a2a_backend,\n)\n"
                   "def f(x):\n    return reduce_moe_output(x) + reduce_moe_output(reduce_moe_output(x))  # rmo\n")
    feed = "from sglang.srt.layers.moe import reduce_moe_output as r\n\x0c\ny = r(1)  # \x0c\nz = r(2)\n"
    assert canonical(feed) == "from sglang.srt.layers.moe import reduce_moe_output\n\x0c\ny = reduce_moe_output(1)  # \x0c\nz = reduce_moe_output(2)\n"
    relative = "from ..layers.moe import reduce_moe_output as r\ny = r(1)\n"
    assert canonical(relative) == "from ..layers.moe import reduce_moe_output\ny = reduce_moe_output(1)\n"


def test_a_local_alias_of_a_reduce_reads_as_the_name():
    text = ("from sglang.srt.distributed import moe_expert_parallel_all_reduce\n"
            "def f(x):\n    ep_reduce = moe_expert_parallel_all_reduce\n    return ep_reduce(x)\n")
    assert canonical(text) == text.replace("return ep_reduce(x)", "return moe_expert_parallel_all_reduce(x)")


@pytest.mark.parametrize("text", [
    # a local alias bound twice, of a name the file also binds otherwise, or of a name not imported
    "from sglang.srt.distributed import tensor_model_parallel_all_reduce\n"
    "def f(x):\n    r = tensor_model_parallel_all_reduce\n    r = None\n    return r(x)\n",
    "from sglang.srt.distributed import tensor_model_parallel_all_reduce\n"
    "def f(x, tensor_model_parallel_all_reduce):\n    r = tensor_model_parallel_all_reduce\n    return r(x)\n",
    "def f(x, tensor_model_parallel_all_reduce):\n    r = tensor_model_parallel_all_reduce\n    return r(x)\n",
    # not a function the audit calls by name (an experts class)
    "from sglang.srt.layers.moe.fused_moe_triton.layer import FusedMoE\nExperts = FusedMoE\ny = Experts(1)\n",
])
def test_a_local_alias_left_as_written(text):
    assert canonical(text) == text


@pytest.mark.parametrize("text", [
    # not from SGLang
    "from torch.distributed import all_reduce as ar\ny = ar(1)\n",
    # the alias bound again: assigned, a parameter, imported twice as different names
    "from sglang.srt.layers.moe import reduce_moe_output as r\nr = None\ny = r(1)\n",
    "from sglang.srt.layers.moe import reduce_moe_output as r\ndef f(r):\n    return r(1)\n",
    "from sglang.srt.layers.moe import reduce_moe_output as r\nfrom sglang.x import other as r\ny = r(1)\n",
    # the original name bound too (a local function of that name)
    "from sglang.srt.layers.moe import reduce_moe_output as r\ndef reduce_moe_output(x):\n    return x\ny = r(1)\n",
    # used inside an f-string (columns there are not reliable before Python 3.12)
    "from sglang.srt.layers.moe import reduce_moe_output as r\ny = f'{r(1)}'\n",
    # no alias at all, and a file that does not parse
    "from sglang.srt.layers.moe import reduce_moe_output\ny = reduce_moe_output(1)\n",
    "from sglang.srt.layers.moe import reduce_moe_output as r\ny = r(1\n",
])
def test_left_as_written(text):
    assert canonical(text) == text
