"""proto.eras and the 0.5.23 era's facts, spot-checked against the cached wheels.

Every Fact's file:line must still say what proto encodes (its text is on that line of the wheel);
the 0.5.23 decoder facts (which models declare stage boundaries) are re-read from the wheel; the
0.5.23 functions are exercised on concrete configurations against what the wheel's code says.
Wheels are read from ~/.cache/sumonce/sglang/ (no download); a missing wheel fails, it is not
skipped: the era rests on it.
"""
import re
import zipfile
from pathlib import Path

import pytest

from sumonce.proto import boundary as b
from sumonce.proto import models_0523 as m23
from sumonce.proto.catalogue import MODELS
from sumonce.proto.config import BoundaryReduction, DpPaddingMode, ForwardState, MoeA2ABackend, ServerConfig
from sumonce.proto.eras import ERAS, RELEASE_ERA, Era, accepts, era_of, era_of_release, refusal
from sumonce.proto.predicates import should_use_dp_reduce_scatterv as V11
from sumonce.proto.sites import Group
from sumonce.proto.validation import validate

CACHE = Path.home() / ".cache" / "sumonce" / "sglang"


def wheel_lines(release: str, path: str) -> list[str]:
    wheels = sorted(CACHE.glob(f"sglang-{release}-*.whl"))
    assert wheels, f"no cached wheel for sglang {release} under {CACHE}"
    with zipfile.ZipFile(wheels[0]) as z:
        return z.read(path).decode().splitlines()


@pytest.mark.parametrize("era", list(Era))
def test_every_fact_is_on_its_cited_line(era):
    facts = ERAS[era]
    assert facts.era == era and facts.facts
    for f in facts.facts:
        release = f.release or era.value
        assert not f.release or RELEASE_ERA[f.release] == era, f"{f.release} is not in era {era.value}"
        lines = wheel_lines(release, f.file)
        assert f.text in lines[f.line - 1], f"{release} {f.file}:{f.line} no longer says {f.text!r}"


def test_boundary_decoders_declare_stages_and_hunyuan_does_not():
    """14 of the 15 models append stage boundaries at the cited line; hunyuan_v3 has none and still
    calls post_experts_all_reduce in its block."""
    assert len(m23.MODELS_0523) == 15
    for name, (file, line) in m23.BOUNDARY_LINES.items():
        text = wheel_lines("0.5.23", f"sglang/srt/models/{file}.py")
        assert "append_stages(" in text[line - 1], f"models/{file}.py:{line}"
    hunyuan = wheel_lines("0.5.23", "sglang/srt/models/hunyuan_v3.py")
    assert not any("append_stages(" in t for t in hunyuan)
    assert not any("dp_gather" in t for t in hunyuan)
    assert sum("post_experts_all_reduce(final_hidden_states)" in t for t in hunyuan) == 2
    by_name = {m.name: m for m in m23.MODELS_0523}
    assert by_name["hunyuan_v3"].sums_at == m23.SumsAt.BLOCK and not by_name["hunyuan_v3"].gathers_for_dp_attention
    assert sum(m.sums_at == m23.SumsAt.BOUNDARY for m in m23.MODELS_0523) == 14


def test_the_context_has_no_fusion_flag_in_0_5_23():
    """runtime_context.py's flag list (line 695) has mlp_reduce_scatter and no fuse_mlp_allreduce;
    proto's ForwardContext likewise."""
    text = "\n".join(wheel_lines("0.5.23", "sglang/srt/runtime_context.py"))
    assert '"mlp_reduce_scatter": False' in text and "fuse_mlp_allreduce" not in text
    assert [f for f in b.ForwardContext.__dataclass_fields__] == ["mlp_reduce_scatter"]


def test_complete_terms_follow_the_wheel():
    """post_experts_output_is_complete's body: dwdp, then Q (no is_tp_path test), then the a2a
    combines; the wheel's function body names each, and proto agrees on concrete configurations."""
    lines = wheel_lines("0.5.23", "sglang/srt/layers/moe/utils.py")
    body = "\n".join(lines[760:783])
    assert "is_tp_path" not in body.split('"""')[-1]
    for backend in ("is_flashinfer()", "is_pplx()", "is_flashinfer_megamoe()"):
        assert backend in body
    q = ServerConfig(tp_size=4, dp_size=4, ep_size=4, enable_dp_attention=True, quantization="modelopt_fp4",
                     moe_runner_backend="flashinfer_cutlass")
    for c in (q, ServerConfig(tp_size=4, dwdp_size=2), ServerConfig(tp_size=4, ep_size=4, moe_a2a_backend="pplx")):
        validate(c)
        assert b.post_experts_output_is_complete(c, is_tp_path=False) and b.post_experts_output_is_complete(c, is_tp_path=True)
    deepep = ServerConfig(tp_size=4, ep_size=4, moe_a2a_backend="deepep")
    assert not b.post_experts_output_is_complete(deepep, is_tp_path=True)
    assert b.is_moe_input_scattered_across_dp_ranks(deepep)  # the boundary declares it complete


def test_v_needs_attention_tp_1_in_0_5_23_only():
    c = ServerConfig(tp_size=4, dp_size=2, ep_size=2, enable_dp_attention=True)
    assert V11(c) and not b.should_use_dp_reduce_scatterv(c)
    c = ServerConfig(tp_size=2, dp_size=2, ep_size=2, enable_dp_attention=True)
    assert V11(c) and b.should_use_dp_reduce_scatterv(c)


def test_reduction_group_and_exit():
    """utils.py:900-910: TP when mergeable, else EP, else MoE-TP; the exit's choices."""
    assert b.post_experts_reduction_group(ServerConfig(tp_size=4, ep_size=2)) == Group.TP
    assert b.post_experts_reduction_group(ServerConfig(tp_size=4, ep_size=4)) == Group.EP
    assert b.post_experts_reduction_group(ServerConfig(tp_size=4)) == Group.MOE_TP
    dp = ServerConfig(tp_size=2, dp_size=2, ep_size=2, enable_dp_attention=True)
    assert b.ffn_exit(dp, ForwardState()) == b.Exit.REDUCE_SCATTERV
    ar = ServerConfig(tp_size=2, dp_size=2, ep_size=2, enable_dp_attention=True, boundary_reduction=BoundaryReduction.AR)
    assert b.ffn_exit(ar, ForwardState()) == b.Exit.DEFERRED_FUSED
    assert b.ffn_exit(ar, ForwardState(dp_padding_mode=DpPaddingMode.MAX_LEN)) == b.Exit.DEFERRED_FUSED
    assert b.ffn_exit(dp, ForwardState(dp_padding_mode=DpPaddingMode.MAX_LEN)) == b.Exit.REDUCE_SCATTERV
    assert b.ffn_exit(ServerConfig(tp_size=4), ForwardState(is_last_layer=True)) == b.Exit.SUM_NOW
    assert b.ffn_exit(ServerConfig(tp_size=4), ForwardState(next_norm_fused=False)) == b.Exit.DEFERRED_ALL_REDUCE
    linear = ServerConfig(architecture="BailingMoeV2_5ForCausalLM")
    assert linear.resolved_boundary_reduction == BoundaryReduction.RSV and not b.may_reduce_scatter(linear)


def test_hunyuan_v3_mixes_tokens_under_dp_attention_and_boundary_models_do_not():
    c = ServerConfig(tp_size=2, dp_size=2, ep_size=2, enable_dp_attention=True, architecture="HYV3ForCausalLM")
    hy = next(m for m in m23.MODELS_0523 if m.name == "hunyuan_v3")
    assert m23.mixes_tokens(c, hy) and not m23.exactly_once(c, ForwardState(), hy)
    qwen = next(m for m in m23.MODELS_0523 if m.name == "qwen3_moe")
    assert m23.exactly_once(ServerConfig(tp_size=2, dp_size=2, ep_size=2, enable_dp_attention=True), ForwardState(), qwen)


def test_accepts_and_era_names():
    assert not accepts(Era.V0_5_11, ServerConfig(dwdp_size=2))
    assert not accepts(Era.V0_5_11, ServerConfig(tp_size=2, ep_size=2, moe_a2a_backend=MoeA2ABackend.PPLX))
    assert not accepts(Era.V0_5_23, ServerConfig(dwdp_size=2))  # handle_dwdp: dwdp_size == tp_size
    assert accepts(Era.V0_5_23, ServerConfig(tp_size=2, dp_size=2, ep_size=2, enable_dp_attention=True, dwdp_size=2))
    assert not accepts(Era.V0_5_23, ServerConfig(tp_size=2, dwdp_size=2))  # handle_dwdp resolves DP attention, ep
    assert era_of("0.5.23") == Era.V0_5_23
    assert era_of("0.5.17") == Era.V0_5_17
    with pytest.raises(ValueError, match="known: 0.5.10.post1, 0.5.11, .*0.5.23, all"):
        era_of("0.5.18")  # a release, not an era's name


def test_every_release_has_one_era():
    """The 17 registry releases 0.5.10.post1 - 0.5.23 (docs/eras.json) each map to one era."""
    import json
    doc = json.loads((Path(__file__).parents[2] / "docs" / "eras.json").read_text())
    assert sorted(RELEASE_ERA) == sorted(doc["releases"])
    assert len(RELEASE_ERA) == 17 and era_of_release("0.5.18") == Era.V0_5_17
    with pytest.raises(ValueError, match="no era for sglang 0.6.0; known releases: 0.5.10.post1"):
        era_of_release("0.6.0")


def test_every_catalogued_model_has_a_0_5_23_entry():
    assert [m.name for m in m23.MODELS_0523] == [m.name for m in MODELS]
    assert set(m23.BOUNDARY_LINES) | set(m23.BLOCK_SUMS) == {m.name for m in MODELS}
    for m in m23.MODELS_0523:
        assert re.fullmatch(r"models/\w+\.py:\d+.*", m.cite)


def test_refusal_names_a_reason_exactly_when_the_era_refuses():
    """proto.eras.refusal (the one-line reason run prints) says None exactly where accepts holds."""
    import itertools
    from sumonce.proto.config import MoeRunnerBackend
    n = 0
    for era, a2a, dwdp, br, dpa, pp in itertools.product(
            list(Era), list(MoeA2ABackend), (1, 2, 4), list(BoundaryReduction), (False, True), (1, 2)):
        c = ServerConfig(tp_size=2, ep_size=2, dp_size=2 if dpa else 1, enable_dp_attention=dpa, pp_size=pp,
                         moe_a2a_backend=a2a, dwdp_size=dwdp, boundary_reduction=br,
                         moe_runner_backend=MoeRunnerBackend.AUTO)
        assert (refusal(era, c) is None) == accepts(era, c), (era, c)
        n += refusal(era, c) is not None
    assert n > 100


def test_refusal_lines_name_the_setting_the_era_and_what_is_allowed():
    """proto.eras.RULES gives each refusal its line: a setting an era lacks names the era it comes
    in; a condition names what is allowed (run prints these lines)."""
    pplx = dict(tp_size=2, ep_size=2, moe_a2a_backend=MoeA2ABackend.PPLX)
    assert refusal(Era.V0_5_11, ServerConfig(**pplx)) == \
        "--moe-a2a-backend pplx exists from the 0.5.17 era on (this is 0.5.11)"
    assert refusal(Era.V0_5_17, ServerConfig(**pplx)) == (
        "--moe-a2a-backend pplx needs --enable-dp-attention with --dp-size 2 or more, --pp-size 1 and "
        "--moe-runner-backend deep_gemm or auto")
    assert refusal(Era.V0_5_17, ServerConfig(tp_size=2, ep_size=2, moe_a2a_backend=MoeA2ABackend.FLASHINFER_MEGAMOE)) \
        == "--moe-a2a-backend flashinfer_megamoe exists from the 0.5.20 era on (this is 0.5.17)"
    assert refusal(Era.V0_5_16, ServerConfig(dwdp_size=2)) == \
        "--dwdp-size other than 1 exists from the 0.5.17 era on (this is 0.5.16)"
    assert refusal(Era.V0_5_23, ServerConfig(dwdp_size=2)) == \
        ("--dwdp-size needs --dwdp-size = --tp-size, --pp-size 1 and no speculative decoding, and runs "
         "with --enable-dp-attention, --dp-size and --ep-size = --dwdp-size, moe_dp 1, --moe-a2a-backend none")
    assert refusal(Era.V0_5_20, ServerConfig(boundary_reduction=BoundaryReduction.RS)) == \
        "--boundary-reduction other than auto exists from the 0.5.21 era on (this is 0.5.20)"
    assert refusal(Era.V0_5_21, ServerConfig(boundary_reduction=BoundaryReduction.RS)) is None
