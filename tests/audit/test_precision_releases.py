"""Real releases whose reports moved with the precision fixes of the 0.5.23 rewrite corpus
(docs/AUDIT.md, "Results"): each pinned here on the cached wheel."""
from __future__ import annotations

from functools import cache

import pytest

from sumonce.audit.verdict import SiteVerdict as SV

pytestmark = pytest.mark.sglang


@cache
def report(version: str):
    from sumonce.audit.audit import audit
    from sumonce.audit.source import load
    return audit(load(f"sglang=={version}"))


def test_0521_decoders_declaring_stage_boundaries_gather_for_dp_attention():
    """0.5.21's layer boundary gathers for DP attention (no LayerCommunicator in these files): the
    hand-written `if self.tp_size > 1` sums double under the FP4 all-gather, as in 0.5.20."""
    rep = report("0.5.21")
    got = {(s.model, s.line): s for s in rep.sites}
    for key in (("longcat_flash", 338), ("minimax_m3", 476), ("step3p5", 621)):
        site = got[key]
        assert site.verdict == SV.DIFFERS and "--enable-dp-attention" in site.witness, (key, site.detail)
    gathers = {d["model"]: d["decoder"]["gathers_for_dp_attention"] for d in rep.decoders}
    assert gathers["longcat_flash"] and gathers["qwen3_moe"]


@pytest.mark.parametrize("version, line", [("0.5.19", 824), ("0.5.20", 818)])
def test_qwen2_moe_guard_decided_by_a_default_is_read(version, line):
    """`if defer_finalize and num_tokens == 0: raise` with defer_finalize False where no caller binds
    it: False whatever num_tokens is, so the guard is read (it was not understood)."""
    site = next(s for s in report(version).sites if s.model == "qwen2_moe" and s.line == line)
    assert site.verdict == SV.HELPER, site.detail


def test_reach_prints_the_test_not_its_double_negation():
    site = next(s for s in report("0.5.21").sites if s.model == "kimi_k3" and s.line == 1226)
    assert "self.use_latent_moe" in site.reach and not any(r.startswith("not not") for r in site.reach)
