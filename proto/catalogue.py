"""The 22 post-experts all-reduce sites of 15 SGLang model files (at da175b96 and after #23748),
their history, and what each model's decoder does around them. Facts: shared/SGLANG_FACTS.md,
checked against the 0.5.11 wheel's source (which the audit reads the same way).
"""
from __future__ import annotations

from dataclasses import replace

from . import guards as g
from .config import MoeA2ABackend as B
from .sites import BlockFlag, Decoder, Group, Level, Model, Path, Site, Version

H, L = Version.HELPER, Version.LEGACY
P31, P34, P32 = Version.PRE_23731, Version.PRE_23734, Version.PRE_23732

# Decoders. FUSING: owns a communicator, allows reduce-scatter, hands F to the block and, when F,
# leaves the sum to the next layer's fused kernel.
FUSING = Decoder(communicator=True, allow_reduce_scatter=True, computes_fusion=True,
                 fuses_next_layer=True, block_F=BlockFlag.COMPUTED, passes_R=True)
R_ONLY = Decoder(communicator=True, allow_reduce_scatter=True, computes_fusion=False,
                 fuses_next_layer=False, block_F=BlockFlag.ABSENT, passes_R=True)
# bailing_moe_linear: computes F and passes it, but always postprocesses, never fuses;
# its communicator is built with allow_reduce_scatter=False.
BAILING_LINEAR = Decoder(communicator=True, allow_reduce_scatter=False, computes_fusion=True,
                         fuses_next_layer=False, block_F=BlockFlag.COMPUTED, passes_R=True)
# exaone_moe, hunyuan_v3: no LayerCommunicator at all, and no DP gather around the MoE either
# (models/exaone_moe.py:511-535, models/hunyuan_v3.py:386-408; proto.alignment).
NO_COMMUNICATOR = Decoder(communicator=False, allow_reduce_scatter=False, computes_fusion=False,
                          fuses_next_layer=False, block_F=BlockFlag.ABSENT, passes_R=False,
                          gathers_for_dp_attention=False)
# step3p5: calls its MoE with F=True always, then all-reduces MoE + shared expert itself.
STEP3P5 = Decoder(communicator=True, allow_reduce_scatter=True, computes_fusion=True,
                  fuses_next_layer=True, block_F=BlockFlag.TRUE, passes_R=True)

NOT_DEEPEP = (B.DEEPEP,)
NOT_DEEPEP_ASCEND = (B.DEEPEP, B.ASCEND_FUSEEP)
ANY_A2A = (B.DEEPEP, B.MOONCAKE, B.NIXL, B.MORI, B.ASCEND_FUSEEP, B.FLASHINFER)


def _tp(model, method, legacy, helper, pre23732=None, F=True, R=True):
    guards = {L: legacy, H: helper}
    if pre23732 is not None:
        guards[P32] = pre23732
    return Site(model, method, Path.TP, Group.TP, receives_F=F, receives_R=R, guards=guards)


def _full_tp(model, method, pre23732=True):
    return _tp(model, method, g.legacy_full_tp, g.helper_tp_fr,
               g.pre23732_full_tp if pre23732 else None)


def _r_only(model, method):
    return _tp(model, method, g.legacy_tp_rv, g.helper_tp_r, g.pre23732_tp_r, F=False)


def _hunyuan(method):
    return (
        Site("hunyuan_v3", method, Path.EP, Group.EP, receives_F=False, receives_R=False,
             guards={L: g.legacy_hunyuan_ep, H: g.helper_ep, P32: g.pre23732_hunyuan_ep}),
        Site("hunyuan_v3", method, Path.TP, Group.MOE_TP, receives_F=False, receives_R=False,
             guards={L: g.legacy_hunyuan_moe_tp, H: g.helper_moe_tp, P32: g.pre23732_hunyuan_moe_tp}),
    )


_QWEN3 = "Qwen3MoeSparseMoeBlock.forward_normal"
_DS, _GLM, _SARVAM = "DeepseekV2MoE", "Glm4MoeSparseMoeBlock", "SarvamMoESparseMoeBlock"
_HY = "HYV3MoEFused"

# Shared experts (0.5.11): bailing_moe.py:278, bailing_moe_linear.py:325, deepseek_v2.py:492,
# exaone_moe.py:202, glm4_moe.py (as deepseek_v2), hunyuan_v3.py:139, llada2.py:289, llama4.py:128,
# qwen2_moe.py:280, sarvam_moe.py:299, step3p5.py:553; none in qwen3_moe, mimo_v2, minimax_m2, sdar_moe.
SHARED = frozenset(("bailing_moe", "bailing_moe_linear", "deepseek_v2", "exaone_moe", "glm4_moe",
                    "hunyuan_v3", "llada2", "llama4", "qwen2_moe", "sarvam_moe", "step3p5"))
# No pipeline stages: hunyuan_v3.py and llama4.py have no pp_group; sdar_moe.py:541-545 refuses pp > 1.
NO_PP = frozenset(("hunyuan_v3", "llama4", "sdar_moe"))

MODELS = (
    Model("qwen3_moe", ("Qwen3MoeForCausalLM",), FUSING, (_QWEN3,), NOT_DEEPEP_ASCEND, (
        Site("qwen3_moe", _QWEN3, Path.EP, Group.EP, receives_F=True, receives_R=True,
             guards={L: g.legacy_qwen3_ep, H: g.helper_ep_fr,
                     P31: g.pre23731_qwen3_ep, P34: g.pre23734_qwen3_ep}),
        Site("qwen3_moe", _QWEN3, Path.TP, Group.MOE_TP, receives_F=True, receives_R=True,
             guards={L: g.legacy_full_moe_tp, H: g.helper_moe_tp_fr,
                     P31: g.pre23731_qwen3_moe_tp}),
    )),
    Model("bailing_moe", ("BailingMoEForCausalLM", "BailingMoeForCausalLM", "BailingMoeV2ForCausalLM"),
          FUSING, ("BailingMoESparseMoeBlock.forward_normal",), NOT_DEEPEP,
          (_full_tp("bailing_moe", "BailingMoESparseMoeBlock.forward_normal"),)),
    Model("bailing_moe_linear", ("BailingMoeV2_5ForCausalLM",), BAILING_LINEAR,
          ("BailingMoE.forward",), (),
          (_tp("bailing_moe_linear", "BailingMoE.forward", g.legacy_tp_rfv, g.helper_tp_fr,
               g.pre23732_tp_rf),)),
    Model("deepseek_v2", ("DeepseekV2ForCausalLM", "DeepseekV3ForCausalLM", "DeepseekV32ForCausalLM"),
          FUSING, (f"{_DS}.forward_normal_dual_stream", f"{_DS}.forward_normal"), ANY_A2A,
          (_full_tp("deepseek_v2", f"{_DS}.forward_normal_dual_stream"),
           _full_tp("deepseek_v2", f"{_DS}.forward_normal"))),
    Model("exaone_moe", ("ExaoneMoEForCausalLM",), NO_COMMUNICATOR,
          ("ExaoneMoESparseMoEBlock.forward",), (),
          (_r_only("exaone_moe", "ExaoneMoESparseMoEBlock.forward"),)),
    Model("glm4_moe", ("Glm4MoeForCausalLM", "GlmMoeDsaForCausalLM"), FUSING,
          (f"{_GLM}.forward_normal_dual_stream", f"{_GLM}.forward_normal"), ANY_A2A,
          (_full_tp("glm4_moe", f"{_GLM}.forward_normal_dual_stream"),
           _full_tp("glm4_moe", f"{_GLM}.forward_normal"))),
    Model("hunyuan_v3", ("HYV3ForCausalLM",), NO_COMMUNICATOR,
          (f"{_HY}._forward_single_stream", f"{_HY}._forward_dual_stream"), (),
          _hunyuan(f"{_HY}._forward_single_stream") + _hunyuan(f"{_HY}._forward_dual_stream")),
    Model("llada2", ("LLaDA2MoeModelLM",), R_ONLY,
          ("LLaDA2MoeSparseMoeBlock.forward_normal",), NOT_DEEPEP,
          (_r_only("llada2", "LLaDA2MoeSparseMoeBlock.forward_normal"),)),
    Model("llama4", ("Llama4ForCausalLM",), R_ONLY, ("Llama4MoE.forward",), (),
          (_r_only("llama4", "Llama4MoE.forward"),)),
    Model("mimo_v2_flash", ("MiMoV2ForCausalLM", "MiMoV2FlashForCausalLM"), FUSING,
          ("MiMoV2MoE.forward_normal",), (B.DEEPEP, B.MOONCAKE),
          (_full_tp("mimo_v2_flash", "MiMoV2MoE.forward_normal"),)),
    Model("minimax_m2", ("MiniMaxM2ForCausalLM",), FUSING, ("MiniMaxM2MoE.forward_normal",),
          NOT_DEEPEP_ASCEND, (_full_tp("minimax_m2", "MiniMaxM2MoE.forward_normal"),)),
    # qwen2_moe had the V term since #22642 introduced V; its decoder never computes F.
    Model("qwen2_moe", ("Qwen2MoeForCausalLM",), R_ONLY, ("Qwen2MoeSparseMoeBlock.forward",), (),
          (_full_tp("qwen2_moe", "Qwen2MoeSparseMoeBlock.forward", pre23732=False),)),
    Model("sarvam_moe", ("SarvamMLAForCausalLM", "SarvamMoEForCausalLM"), FUSING,
          (f"{_SARVAM}.forward_normal_dual_stream", f"{_SARVAM}.forward_normal"), (),
          (_full_tp("sarvam_moe", f"{_SARVAM}.forward_normal_dual_stream"),
           _full_tp("sarvam_moe", f"{_SARVAM}.forward_normal"))),
    Model("sdar_moe", ("SDARMoeForCausalLM",), FUSING, ("SDARMoeSparseMoeBlock.forward_normal",),
          NOT_DEEPEP_ASCEND, (_full_tp("sdar_moe", "SDARMoeSparseMoeBlock.forward_normal"),)),
    Model("step3p5", ("Step3p5ForCausalLM",), STEP3P5, ("Step3p5MoEMLP.forward_normal",),
          NOT_DEEPEP_ASCEND, (_full_tp("step3p5", "Step3p5MoEMLP.forward_normal"),),
          decoder_sites=(Site("step3p5", "Step3p5DecoderLayer.forward", Path.TP, Group.TP,
                              receives_F=True, receives_R=True,
                              guards={L: g.step3p5_decoder_combined}, level=Level.DECODER),)),
)

MODELS = tuple(replace(m, shared_expert=m.name in SHARED, supports_pp=m.name not in NO_PP)
               for m in MODELS)
MODELS_BY_NAME = {m.name: m for m in MODELS}
SITES = tuple(s for m in MODELS for s in m.sites)


def model(name: str) -> Model:
    """The catalogued model `name`; KeyError names the ones there are."""
    try:
        return MODELS_BY_NAME[name]
    except KeyError:
        raise KeyError(f"unknown model {name!r}; catalogued: {', '.join(sorted(MODELS_BY_NAME))}") from None
