"""proto.models_0521 against the 0.5.21 wheel (cached under ~/.cache/sumonce/sglang/; a missing
wheel fails): every model fact is re-read on its cited line, the boundary facts the exit rests on
too, and the layer's counts on concrete configurations say what those lines do."""
import pytest

from sumonce.proto import boundary as b
from sumonce.proto import models_0521 as m21
from sumonce.proto.boundary import Exit
from sumonce.proto.config import DpPaddingMode, ForwardState, ServerConfig
from sumonce.proto.eras import Era, accepts
from sumonce.proto.validation import validate

from .test_eras import wheel_lines

R = "0.5.21"
U = "sglang/srt/layers/moe/utils.py"
LB = "sglang/srt/layers/layer_boundary/"
CALL = {m21.SumsIn.REDUCE_MOE_OUTPUT: "reduce_moe_output(", m21.SumsIn.POST_EXPERTS_ALL_REDUCE: "post_experts_all_reduce("}


def model_lines(file: str) -> list[str]:
    return wheel_lines(R, f"sglang/srt/models/{file}.py")


def cfg(**kw) -> ServerConfig:
    return validate(ServerConfig(**kw))


@pytest.mark.parametrize("name", sorted(m21.FACTS))
def test_each_model_fact_is_on_its_line(name):
    """The sum on the cited lines (step3p5: F forced around the MoE, then the decoder's TP
    all-reduce); make_stages and the FFN exit where proto says the decoder has a boundary, and no
    stage declaration anywhere in the file where it says none."""
    sums_in, file, sums, stages = m21.FACTS[name]
    text = model_lines(file)
    if sums_in == m21.SumsIn.DECODER:
        assert "scoped(fuse_mlp_allreduce=True)" in text[sums[0] - 1]
        assert "tensor_model_parallel_all_reduce(" in text[sums[1] - 1]
        assert "not ffn_exit.fuse_mlp_allreduce and not ffn_exit.mlp_reduce_scatter" in text[sums[1] - 2]
    else:
        for n in sums:
            assert CALL[sums_in] in text[n - 1], (name, n)
        other = CALL[m21.SumsIn.POST_EXPERTS_ALL_REDUCE if sums_in == m21.SumsIn.REDUCE_MOE_OUTPUT
                     else m21.SumsIn.REDUCE_MOE_OUTPUT]
        assert not any(other in t and "import" not in t for t in text), name
    if stages:
        assert "make_stages(" in text[stages[0] - 1] and "ffn_boundary.exit(" in text[stages[1] - 1], name
    else:
        assert not any("make_stages(" in t or "ffn_boundary" in t or "dp_gather" in t for t in text), name
    assert m21.era_model(name).boundary == bool(stages)


def test_the_boundary_facts_are_on_their_lines():
    """The helper and reduce_moe_output, the exit's publishing and deferral, the next input's
    unfused completion, to_pp's completion and the rank-local rows owing nothing."""
    u, ex = wheel_lines(R, U), wheel_lines(R, LB + "exit.py")
    fac, prep = wheel_lines(R, LB + "factories.py"), wheel_lines(R, LB + "prepare.py")
    out, batch = wheel_lines(R, LB + "output.py"), wheel_lines(R, LB + "residual/batch.py")
    assert "def reduce_moe_output(" in u[771] and "tp_size > 1 and not should_skip_post_experts_all_reduce(" in u[778]
    assert "return should_skip_mlp_all_reduce() or post_experts_output_is_complete(" in u[766]
    assert "def post_experts_sum_is_one_all_reduce()" in u[856] and "def post_experts_reduction_group()" in u[844]
    assert "fuse_mlp_allreduce = defer_moe_finalize or self._ffn_sum_moves_to_next_layer(" in ex[204]
    assert "and not self.plan.terminal" in ex[329] and "and not mlp_reduce_scatter" in ex[332]
    assert "and not can_merge_post_experts_all_reduce()" in ex[303] and "is_eagle()" in ex[310]
    assert "if post_experts_sum_is_one_all_reduce():" in ex[355]
    assert ex[517].strip() == "self._scope = get_forward().scoped(" and "mlp_reduce_scatter=self.mlp_reduce_scatter" in ex[519]
    assert "is_moe_input_scattered_across_dp_ranks()" in fac[99] and "if on_local" in fac[162]
    assert "and not terminal" in fac[167]
    assert "hidden_states = reduce_output(owed)" in prep[289] and "return hidden_states.group.all_reduce(" in out[80]
    assert "current(forward_batch).finish(" in batch[119]
    norm, fusion = wheel_lines(R, "sglang/srt/layers/layernorm.py"), wheel_lines(R, "sglang/srt/layers/flashinfer_comm_fusion.py")
    assert "x = deferred_post_experts_all_reduce(x)" in norm[256] and "return post_experts_reduction_group().all_reduce(" in u[882]
    assert "group = post_experts_reduction_group()" in fusion[680]
    ds = model_lines("deepseek_v2")
    assert "and not should_skip_post_experts_all_reduce(is_tp_path=True)" in ds[1061]
    assert "all_reduce_done = True" in ds[1201]


def test_the_exit_publishes_and_the_file_sums_once():
    """qwen2_moe at tp 4: the exit defers to the next input (F), reduce_moe_output skips, the
    MoE-TP group sums once; the last layer keeps its sum in reduce_moe_output."""
    m, c = m21.era_model("qwen2_moe"), cfg(tp_size=4, architecture="Qwen2MoeForCausalLM")
    s = ForwardState()
    assert m21.ffn_exit(c, s) == Exit.DEFERRED_FUSED and m21.published(c, s, m) == (True, False)
    assert not m21.reduce_moe_output_runs(c, True, False) and m21.sum_counts(c, s, m) == b.SumCounts(0, 1)
    last = ForwardState(is_last_layer=True)
    assert m21.ffn_exit(c, last) == Exit.SUM_NOW and m21.published(c, last, m) == (False, False)
    assert m21.sum_counts(c, last, m) == b.SumCounts(1, 1) and m21.exactly_once(c, last, m)


def test_a_stage_s_last_layer_defers_where_0_5_23_sums_now():
    """0.5.21 defers across a pipeline hand-off (to_pp completes it unfused); 0.5.23 sums now."""
    c = cfg(tp_size=2, pp_size=2, architecture="Qwen2MoeForCausalLM")
    s = ForwardState(is_stage_last_layer=True)
    assert m21.ffn_exit(c, s) == Exit.DEFERRED_ALL_REDUCE and b.ffn_exit(c, s) == Exit.SUM_NOW
    assert m21.exactly_once(c, s, m21.era_model("qwen2_moe"))


def test_dp_attention_reduce_scatterv_publishes_r():
    c = cfg(tp_size=2, dp_size=2, ep_size=2, enable_dp_attention=True)
    s, m = ForwardState(), m21.era_model("qwen3_moe")
    assert m21.ffn_exit(c, s) == Exit.REDUCE_SCATTERV and m21.published(c, s, m) == (False, True)
    assert m21.sum_counts(c, s, m) == b.SumCounts(1, 1) and m21.exactly_once(c, s, m)
    ar = cfg(tp_size=2, dp_size=2, ep_size=2, enable_dp_attention=True, boundary_reduction="ar")
    assert m21.ffn_exit(ar, s) != Exit.REDUCE_SCATTERV and m21.exactly_once(ar, s, m)


def test_hybrid_is_summed_by_the_block_merged():
    """tp 4, ep 2: not one TP all-reduce (hybrid), so no deferral; post_experts_all_reduce sums
    both axes (merged into one TP all-reduce, utils.py:835-836)."""
    c, s, m = cfg(tp_size=4, ep_size=2), ForwardState(), m21.era_model("qwen3_moe")
    assert m21.ffn_exit(c, s) == Exit.SUM_NOW and m21.sum_counts(c, s, m) == b.SumCounts(1, 1)


def test_the_known_findings_on_concrete_configurations():
    """Q: qwen3_moe's EP sum on top of the FP4 combine (utils.py:751); step3p5 with the flashinfer
    a2a: its decoder all-reduces a complete output; exaone_moe under DP attention mixes tokens."""
    q = cfg(tp_size=2, dp_size=2, ep_size=2, enable_dp_attention=True, moe_runner_backend="flashinfer_cutlass",
            quantization="modelopt_fp4")
    s = ForwardState()
    n = m21.sum_counts(q, s, m21.era_model("qwen3_moe"))
    assert (n.ep, m21.mixes_tokens(q, s, m21.era_model("qwen3_moe"))) == (2, True)
    assert m21.exactly_once(q, s, m21.era_model("qwen2_moe"))
    a2a = cfg(tp_size=2, ep_size=2, moe_a2a_backend="flashinfer", moe_runner_backend="flashinfer_cutlass",
              architecture="Step3p5ForCausalLM")
    assert accepts(Era.V0_5_21, a2a)
    assert m21.sum_counts(a2a, s, m21.era_model("step3p5")) == b.SumCounts(2, 2)
    assert m21.sum_counts(a2a, s, m21.era_model("qwen2_moe")) == b.SumCounts(1, 1)
    dp = cfg(tp_size=2, dp_size=2, enable_dp_attention=True, architecture="ExaoneMoEForCausalLM")
    assert m21.mixes_tokens(dp, s, m21.era_model("exaone_moe")) and not m21.model_supports(dp, m21.era_model("exaone_moe"))


def test_max_len_padding_reduce_scatters():
    c = cfg(tp_size=4, dp_size=2, ep_size=4, enable_dp_attention=True)
    s = ForwardState(dp_padding_mode=DpPaddingMode.MAX_LEN)
    assert m21.ffn_exit(c, s) == Exit.DP_REDUCE_SCATTER and m21.exactly_once(c, s, m21.era_model("glm4_moe"))
