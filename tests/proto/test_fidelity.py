"""Issue 11: proto as SGLang 0.5.11 really runs. Each test names the wheel's file and line it rests
on; each failed on proto before issue 11. `wheel_text` re-reads the fact from the cached wheel
(skipped where the wheel is not cached) so that a later wheel read differently fails here."""
from __future__ import annotations

import glob
import os
import zipfile

import pytest

from sumonce.proto import ForwardState as S, ServerConfig as C, catalogue, semantics, validate
from sumonce.proto.config import DpPaddingMode, GpuArch, MoeRunnerBackend, Quantization
from sumonce.proto.semantics import After, Outcome, after_experts, layer_outcome
from sumonce.proto.sites import Version

H = Version.HELPER
WHEELS = os.path.expanduser("~/.cache/sumonce/sglang")


def wheel_text(version: str, path: str) -> list[str]:
    found = glob.glob(f"{WHEELS}/sglang-{version}-*.whl")
    if not found:
        pytest.skip(f"sglang {version} wheel not cached")
    with zipfile.ZipFile(found[0]) as z:
        return z.read(f"sglang/srt/{path}").decode().splitlines()


def outcome(model, c, s=S(num_tokens=5), version=H):
    m = catalogue.model(model)
    validate(c)
    assert semantics.forward_state_valid(c, s)
    return layer_outcome(c, s, m, m.variants[0], version)


# --- 1. token alignment under DP attention ---------------------------------------------------


def test_decoders_without_a_dp_gather_match_the_wheel():
    """exaone_moe.py:511-535 and hunyuan_v3.py:386-408 call the MoE right after the norm: no
    LayerCommunicator, no dp_gather, in the whole file; every other catalogued decoder has one."""
    for name, model in catalogue.MODELS_BY_NAME.items():
        path = "models/mimo_v2.py" if name == "mimo_v2_flash" else f"models/{name}.py"
        text = "\n".join(wheel_text("0.5.11", path))
        gathers = "LayerCommunicator(" in text or "dp_gather" in text
        assert model.decoder.gathers_for_dp_attention == gathers, name
    hunyuan = wheel_text("0.5.11", "models/hunyuan_v3.py")
    assert "tp_size = get_tensor_model_parallel_world_size()" in hunyuan[260]  # attention over all TP


@pytest.mark.parametrize("model", ["exaone_moe", "hunyuan_v3"])
def test_dp_attention_without_a_gather_mixes_tokens_before_and_after_23732(model):
    c = C(tp_size=4, dp_size=2, ep_size=2, enable_dp_attention=True, architecture=catalogue.model(model).architectures[0])
    assert outcome(model, c, version=Version.PRE_23732) == Outcome.MIXES_TOKENS
    # after #23732 the sites skip under V and nothing at all sums: still not "exactly once"
    assert outcome(model, c) == Outcome.MISSING
    assert not semantics.model_supports(c, catalogue.model(model))


def test_gathering_decoder_under_dp_attention_sums_aligned_tokens_once():
    c = C(tp_size=4, dp_size=4, ep_size=1, enable_dp_attention=True, architecture="MiniMaxM2ForCausalLM")
    assert outcome("minimax_m2", c) == Outcome.ONCE


# --- 2. witnesses SGLang cannot reach --------------------------------------------------------


def test_v_with_attention_tp_crashes():
    """communicator.py:1215-1220 passes one size per DP rank; parallel_state.py:783 asserts one per
    TP rank; 0.5.23's V needs tp == attn_dp (layers/moe/utils.py:742-748)."""
    assert "assert len(sizes) == world_size" in wheel_text("0.5.11", "distributed/parallel_state.py")[782]
    assert "sizes=get_dp_global_num_tokens()" in wheel_text("0.5.11", "layers/communicator.py")[1218]
    assert any("tp_size == get_parallel().attn_dp_size" in l for l in wheel_text("0.5.23", "layers/moe/utils.py")[740:750])
    crash = C(tp_size=4, dp_size=2, ep_size=2, enable_dp_attention=True)
    assert outcome("qwen3_moe", crash) == Outcome.CRASH
    fine = C(tp_size=2, dp_size=2, ep_size=2, enable_dp_attention=True)
    assert outcome("qwen3_moe", fine) == Outcome.ONCE


def test_attn_tp_input_scattered_only_for_deepseek_with_piecewise_graph_off():
    """communicator.py:260-272 (q_lora_rank, not NSA, disable_piecewise_cuda_graph); its only
    caller is DeepseekV2Model (deepseek_v2.py:2226)."""
    lines = wheel_text("0.5.11", "layers/communicator.py")
    assert "q_lora_rank is not None" in lines[264] and "disable_piecewise_cuda_graph" in lines[270]
    s = S(num_tokens=4, attn_tp_input_scattered=True)
    qwen = C(tp_size=2, enable_attn_tp_input_scattered=True, disable_piecewise_cuda_graph=True)
    assert not semantics.forward_state_valid(qwen, s)
    ds = C(tp_size=2, enable_attn_tp_input_scattered=True, architecture="DeepseekV3ForCausalLM")
    assert not semantics.forward_state_valid(ds, s)  # piecewise CUDA graph on
    assert semantics.forward_state_valid(C(tp_size=2, enable_attn_tp_input_scattered=True,
                                           disable_piecewise_cuda_graph=True,
                                           architecture="DeepseekV3ForCausalLM"), s)


# --- 3. the fused path's real fallbacks ------------------------------------------------------


def test_cuda_fused_kernel_declining_leaves_no_allreduce():
    """layernorm.py:157-172: flashinfer's None falls through to the plain norm (no all-reduce);
    0.5.23 all-reduces there first (layernorm.py:256-264)."""
    lines = wheel_text("0.5.11", "layers/layernorm.py")
    assert "if fused_result[0] is not None" in lines[163] and "_use_aiter" in lines[167]
    assert "norm_module.forward(x, residual, post_residual_addition)" in lines[171]
    c = C(tp_size=2, ep_size=1, enable_flashinfer_allreduce_fusion=True)
    s = S(num_tokens=5, next_norm_fused=False)
    assert after_experts(c, s, catalogue.model("qwen3_moe")) == After.NEXT_LAYER_DECLINED
    assert outcome("qwen3_moe", c, s) == Outcome.MISSING


def test_past_the_token_limit_the_kernel_asserts_and_f_never_gets_there():
    """The issue reads 'declines past its token limit'; 0.5.11 asserts there instead
    (flashinfer_comm_fusion.py:650), and F is off past 2048 tokens (communicator.py:164)."""
    assert "assert input_tensor.shape[0] <= max_token_num" in wheel_text("0.5.11", "layers/flashinfer_comm_fusion.py")[649]
    c = C(tp_size=2, enable_flashinfer_allreduce_fusion=True)
    assert not semantics.decoder_fusion(c, S(num_tokens=2049), catalogue.model("qwen3_moe"))


def test_amd_aiter_sums_the_whole_tp_group_or_only_moe_tp_past_its_limits():
    """layernorm.py:150-170 (aiter fused or fallback: TP group); communicator.py:528-533 (the
    tensor past apply_aiter_all_reduce_fusion's limits: MoE-TP all-reduce)."""
    c = C(tp_size=4, ep_size=2, gpu_arch=GpuArch.GFX942, enable_aiter_allreduce_fusion=True)
    assert outcome("qwen3_moe", c) == Outcome.ONCE  # both axes in one TP all-reduce
    assert outcome("qwen3_moe", c, S(num_tokens=5, next_norm_fused=False)) == Outcome.MISSING
    cuda = C(tp_size=4, ep_size=2, enable_flashinfer_allreduce_fusion=True)
    assert outcome("qwen3_moe", cuda) == Outcome.MISSING  # EP group only: MoE-TP left partial


# --- 4. pipeline parallelism -----------------------------------------------------------------


def test_stage_boundary_drops_the_fusion_mark():
    """qwen3_moe.py:803 (is_last_layer is the model's), :852-853 (the mark), qwen2_moe.py:813-819
    (PPProxyTensors carry the tensor, not the mark)."""
    assert "num_hidden_layers - 1" in wheel_text("0.5.11", "models/qwen3_moe.py")[802]
    assert "PPProxyTensors(" in wheel_text("0.5.11", "models/qwen2_moe.py")[813]
    c = C(tp_size=2, pp_size=2, enable_flashinfer_allreduce_fusion=True)
    assert outcome("qwen3_moe", c) == Outcome.ONCE
    assert outcome("qwen3_moe", c, S(num_tokens=5, is_stage_last_layer=True)) == Outcome.MISSING
    assert not semantics.forward_state_valid(C(tp_size=2), S(is_stage_last_layer=True))


# --- 5. smaller facts ------------------------------------------------------------------------


def test_fusion_auto_enable_skips_h20():
    """server_args.py:2327-2353."""
    assert "not is_h20_device" in wheel_text("0.5.11", "server_args.py")[2349]
    assert C(tp_size=2).allreduce_fusion_enabled
    assert not C(tp_size=2, h20_device=True).allreduce_fusion_enabled
    assert C(tp_size=2, h20_device=True, enable_flashinfer_allreduce_fusion=True).allreduce_fusion_enabled


def test_q_ep_allreduce_after_the_combine_mixes_tokens():
    """Under Q each rank holds its own tokens after the combine; qwen3_moe's EP all-reduce (no Q
    term, moe/utils.py should_skip_post_experts_all_reduce) sums them across DP ranks."""
    c = C(tp_size=2, dp_size=2, ep_size=2, enable_dp_attention=True, quantization=Quantization.MODELOPT_FP4,
          moe_runner_backend=MoeRunnerBackend.FLASHINFER_CUTLASS)
    assert outcome("qwen3_moe", c, S(num_tokens=5, dp_padding_mode=DpPaddingMode.SUM_LEN)) == Outcome.MIXES_TOKENS


def test_shared_expert_facts_match_the_wheel():
    """The actors' old list had mimo_v2_flash (mimo_v2.py has no shared expert) and lacked
    exaone_moe (exaone_moe.py:202) and llada2 (llada2.py:289)."""
    for name in ("exaone_moe", "llada2"):
        assert catalogue.model(name).shared_expert
    assert not catalogue.model("mimo_v2_flash").shared_expert
    assert not any("shared_expert" in l for l in wheel_text("0.5.11", "models/mimo_v2.py"))


def test_which_groups_span_attention_dp_ranks_agrees_with_the_rank_layout():
    """proto.alignment.group_spans_dp_ranks (stated on sizes for z3) against the groups that
    proto.layout builds, rank by rank, for every valid DP-attention layout up to 16 GPUs."""
    from sumonce.proto.alignment import group_spans_dp_ranks
    from sumonce.proto.layout import attn_dp_rank, group_ranks
    from sumonce.proto.sites import Group
    from sumonce.proto.validation import violations
    checked = 0
    for tp in range(2, 17):
        for ep in range(1, tp + 1):
            for dp in range(2, tp + 1):
                c = C(tp_size=tp, ep_size=ep, dp_size=dp, enable_dp_attention=True)
                if violations(c):
                    continue
                for g in Group:
                    spans = any(len({attn_dp_rank(q, c.attn_tp_size)
                                     for q in group_ranks(g, r, tp, c.moe_tp_size, c.attn_tp_size)}) > 1
                                for r in range(tp))
                    assert spans == group_spans_dp_ranks(c, g), (tp, ep, dp, g)
                checked += 1
    assert checked > 100


def test_f_needs_the_fused_allreduce_available():
    """communicator.py:167: apply_flashinfer_allreduce_fusion also needs
    `not is_flashinfer_allreduce_unavailable()` (comm API present, workspace created:
    flashinfer_comm_fusion.py:105-116, :364-372); ServerConfig.flashinfer_available stands for it."""
    assert "not is_flashinfer_allreduce_unavailable()" in wheel_text("0.5.11", "layers/communicator.py")[166]
    m = catalogue.model("qwen3_moe")
    on = C(tp_size=2, enable_flashinfer_allreduce_fusion=True)
    assert semantics.decoder_fusion(on, S(num_tokens=5), m)
    off = C(tp_size=2, enable_flashinfer_allreduce_fusion=True, flashinfer_available=False)
    assert not semantics.decoder_fusion(off, S(num_tokens=5), m)


def test_moe_dp_size_decides_the_moe_cp_allgather():
    """dp_attention.py:599-604: the MoE-CP all-gather is attn_cp_size > moe_dp_size (not > 1)."""
    assert "return sa.attn_cp_size > sa.moe_dp_size" in wheel_text("0.5.11", "layers/dp_attention.py")[603]
    assert C(tp_size=4, attn_cp_size=2).moe_cp_allgather
    assert not C(tp_size=4, attn_cp_size=2, moe_dp_size=2).moe_cp_allgather
    validate(C(tp_size=4, attn_cp_size=2, moe_dp_size=2))


# --- attention TP under attention CP (found wrong in the sixth session) --------------------------


@pytest.mark.parametrize("version, path, line", [
    ("0.5.10.post1", "layers/dp_attention.py", 241), ("0.5.11", "layers/dp_attention.py", 244),
    ("0.5.15", "layers/dp_attention.py", 249), ("0.5.23", "runtime_context.py", 76)])
def test_attention_tp_size_divides_by_attention_cp(version, path, line):
    """SGLang's attention TP size is tp // attn_dp // attn_cp; proto's attn_tp_size was tp // attn_dp
    (the ranks of one attention-DP rank), so a witness with --attn-cp-size 2 printed attn_tp 2 where
    SGLang runs attention TP 1 (finding moe-cp-allgather-under-v: tp 4, dp 2, cp 2)."""
    text = wheel_text(version, path)[line - 1]
    assert "tp_size // attn_dp_size // attn_cp_size" in text
    cp = C(tp_size=4, dp_size=2, ep_size=2, enable_dp_attention=True, attn_cp_size=2)
    validate(cp)
    assert (cp.attn_dp_size, cp.attn_cp_size, cp.attn_tp_size) == (2, 2, 1)
    assert C(tp_size=4, dp_size=2, enable_dp_attention=True).attn_tp_size == 2
    assert C(tp_size=4, attn_cp_size=2).attn_tp_size == 2
