"""One MoE layer in the eras before the stage boundary: 0.5.10.post1 (per-model guards) and the
helper eras 0.5.15 - 0.5.20 (the model files call the era's helper with the F and R their decoder
hands on). The counterpart of proto.semantics for those eras, built from its pieces: what differs
is which guard each site runs, V, and F and R as that release's communicator computes them.

Per era (facts cited in proto.eras' ERA_* entries, re-read by tests/proto/test_eras.py):
- 0.5.10.post1: no V (neither utils.py nor the communicator has one); each site's guard is the one
  proto.catalogue records before the V fixes (qwen3_moe's pre-#23731 guards, the pre-#23732
  guards elsewhere); minimax_m2's block all-reduces whenever tp > 1 and its decoder computes no F
  and hands on no R; step3p5's decoder has no gather (prepare_mlp commented out) and calls its MoE
  without F or R, so it has no decoder-level all-reduce; hunyuan_v3 does not exist yet.
- 0.5.15 - 0.5.20: every site calls decisions.HELPERS[era] with the keywords it passed in 0.5.11
  (0.5.15, same call sites) or the flags its decoder publishes into the per-forward context
  (0.5.16 on; PUBLISHES: the same F and R values as 0.5.11's arguments). R also holds under V
  when the communicator scatters (0.5.15 communicator.py:761); from 0.5.17 V needs attention TP 1;
  from release 0.5.18 the communicator refuses F for a hybrid EP x MoE-TP layout
  (0.5.18 communicator.py:828). The fused kernel's group and the declined kernel are 0.5.11's
  (flashinfer_comm_fusion.py: EP when moe_ep > 1; layernorm.py: no all-reduce when it declines).

F and R are 0.5.11's (proto.communicator) within the scope: 0.5.10.post1's F lacks only the MoE-CP
test (communicator.py:617, attention CP is out of scope); 0.5.17's adds an mlp-mode SCATTERED test
(a2a or Q, where F is already off: flashinfer's fusion needs no DP attention, Q needs it) and a
DP-attention test on AMD's branch.

Scope: a2a none, dwdp 1, off AMD (aiter's branch was not re-read further), no attention CP,
moe_dp_size 1 (proto.semantics.in_scope): the a2a and dwdp terms of the helpers are compared at
the helper level (spec.era_differences), not executed in a layer.

NOTE: written in the subset spec/ lifts.
"""
from __future__ import annotations

from dataclasses import replace

from . import boundary, guards as g
from .catalogue import MODELS
from .communicator import scatters_hidden_states, use_reduce_scatter
from .config import ForwardState, ServerConfig
from .decisions import HELPERS
from .eras import RELEASE_ERA, Era, since
from .predicates import should_use_dp_reduce_scatterv as V_0511
from .predicates import should_use_flashinfer_cutlass_moe_fp4_allgather as Q
from .semantics import After, SumCounts, count_sums, decoder_fusion, in_scope, next_layer_step
from .alignment import gathers_tokens, group_spans_dp_ranks
from .sites import BlockFlag, Decoder, Level, Model, Path, Version, group_size

LAYER_ERAS = (Era.V0_5_10, Era.V0_5_15, Era.V0_5_16, Era.V0_5_17, Era.V0_5_20)
HYBRID_F_OFF = ("0.5.18", "0.5.19", "0.5.20")
"""Releases whose communicator refuses F when moe_ep > 1 and moe_tp > 1 (0.5.18 communicator.py:828)."""


PUBLISH_LINES = {
    "0.5.16": {"qwen3_moe": (838, 839), "bailing_moe": (678, 679), "bailing_moe_linear": (898, 899),
               "deepseek_v2": (2271, 2272), "glm4_moe": (952, 953), "llada2": (0, 703), "llama4": (0, 485),
               "mimo_v2_flash": (747, 748), "minimax_m2": (1018, 1019), "qwen2_moe": (0, 809),
               "sarvam_moe": (1110, 1111), "sdar_moe": (416, 417), "step3p5": (633, 634)},
    "0.5.17": {"qwen3_moe": (843, 844), "bailing_moe": (671, 672), "bailing_moe_linear": (893, 894),
               "deepseek_v2": (2483, 2484), "glm4_moe": (947, 948), "llada2": (0, 697), "llama4": (0, 485),
               "mimo_v2_flash": (907, 908), "minimax_m2": (1024, 1025), "qwen2_moe": (0, 824),
               "sarvam_moe": (1113, 1114), "sdar_moe": (411, 412), "step3p5": (628, 629)},
    "0.5.20": {"qwen3_moe": (878, 879), "bailing_moe": (673, 674), "bailing_moe_linear": (896, 897),
               "deepseek_v2": (2498, 2499), "glm4_moe": (943, 944), "llada2": (0, 699), "llama4": (0, 483),
               "mimo_v2_flash": (915, 916), "minimax_m2": (1044, 1045), "qwen2_moe": (0, 1036),
               "sarvam_moe": (1102, 1103), "sdar_moe": (411, 412), "step3p5": (628, 629)},
}
"""Context eras: catalogue name -> the lines of models/<file>.py (mimo_v2_flash is mimo_v2.py) where
its decoder publishes `fuse_mlp_allreduce=` (0: it publishes no F, ctx.F reads False) and
`mlp_reduce_scatter=` into get_forward().scoped(...). step3p5 publishes fuse_mlp_allreduce=True
(its decoder all-reduces MoE + shared expert itself). exaone_moe and hunyuan_v3 publish nothing."""


def minimax_0510(c: ServerConfig, F: bool, R: bool) -> bool:
    """0.5.10.post1 models/minimax_m2.py:406-407: all-reduce whenever tp > 1."""
    return c.tp_size > 1


# 0.5.10.post1 step3p5.py:574-578 (communicator without allow_reduce_scatter), :636-652 (no
# prepare_mlp, MoE called without F or R, no decoder all-reduce).
STEP3P5_0510 = Decoder(communicator=True, allow_reduce_scatter=False, computes_fusion=False,
                       fuses_next_layer=False, block_F=BlockFlag.ABSENT, passes_R=False,
                       gathers_for_dp_attention=False)
# 0.5.10.post1 minimax_m2.py:736-741 (allow_reduce_scatter=True), :767 (block called with no flags).
MINIMAX_0510 = Decoder(communicator=True, allow_reduce_scatter=True, computes_fusion=False,
                       fuses_next_layer=False, block_F=BlockFlag.ABSENT, passes_R=False)


def _site_0510(site):
    """The guard a site ran in 0.5.10.post1, stored as its LEGACY guard."""
    if site.model == "minimax_m2":
        guard = minimax_0510
    elif Version.PRE_23731 in site.guards:
        guard = site.guards[Version.PRE_23731]
    elif Version.PRE_23732 in site.guards:
        guard = site.guards[Version.PRE_23732]
    else:
        guard = g.pre23732_full_tp  # qwen2_moe.py:350-356: F, R, Q; no V yet
    return replace(site, guards={Version.LEGACY: guard})


def _model_0510(m: Model) -> Model:
    sites = tuple(_site_0510(s) for s in m.sites)
    if m.name == "minimax_m2":
        return replace(m, decoder=MINIMAX_0510, sites=sites)
    if m.name == "step3p5":
        return replace(m, decoder=STEP3P5_0510, sites=sites, decoder_sites=())
    return replace(m, sites=sites)


MODELS_0510 = tuple(_model_0510(m) for m in MODELS if m.name != "hunyuan_v3")
"""The catalogued models as 0.5.10.post1 ships them (hunyuan_v3 comes in 0.5.11)."""


def models_of(era: Era) -> tuple:
    """The catalogued models that exist in the era, as it runs them."""
    if era == Era.V0_5_10:
        return MODELS_0510
    return MODELS


def era_of(release: str) -> Era:
    return RELEASE_ERA[release]


def V(release: str, c: ServerConfig) -> bool:
    """should_use_dp_reduce_scatterv at `release`: none in 0.5.10.post1; 0.5.11's up to 0.5.16;
    with attention TP 1 from 0.5.17 (utils.py:465)."""
    era = era_of(release)
    if era == Era.V0_5_10:
        return False
    if since(era, Era.V0_5_17):
        return boundary.should_use_dp_reduce_scatterv(c)
    return V_0511(c)


def fusion(release: str, c: ServerConfig, s: ForwardState, m: Model) -> bool:
    """F as the decoder computes it at `release` (0.5.11's, and off for hybrid layouts from 0.5.18)."""
    hybrid = c.ep_size > 1 and c.moe_tp_size > 1
    return decoder_fusion(c, s, m) and not (release in HYBRID_F_OFF and hybrid)


def reduce_scatter(release: str, c: ServerConfig, s: ForwardState, m: Model) -> bool:
    """R as the decoder computes it: 0.5.11's, or (from 0.5.12: 0.5.15 communicator.py:761) V when
    the communicator scatters."""
    allow = m.decoder.communicator and m.decoder.allow_reduce_scatter and release != "0.5.11"
    return (m.decoder.communicator and use_reduce_scatter(c, s, m.decoder.allow_reduce_scatter)
            or allow and scatters_hidden_states(c) and V(release, c))


def block_F(release: str, c: ServerConfig, s: ForwardState, m: Model) -> bool:
    """The F the MoE block sees (argument up to 0.5.15, published ctx.F from 0.5.16)."""
    if m.decoder.block_F == BlockFlag.TRUE:
        return True
    if m.decoder.block_F == BlockFlag.COMPUTED:
        return fusion(release, c, s, m)
    return False


def block_R(release: str, c: ServerConfig, s: ForwardState, m: Model) -> bool:
    return m.decoder.passes_R and reduce_scatter(release, c, s, m)


def ctx_F(release: str, c: ServerConfig, s: ForwardState, m: Model) -> bool:
    """ctx.F as the decoder publishes it (PUBLISH_LINES): its communicator's F, or True (step3p5)."""
    lines = PUBLISH_LINES[era_of(release).value]
    if m.name not in lines or lines[m.name][0] == 0:
        return False
    if m.decoder.block_F == BlockFlag.TRUE:
        return True
    return fusion(release, c, s, m)


def ctx_R(release: str, c: ServerConfig, s: ForwardState, m: Model) -> bool:
    """ctx.R as the decoder publishes it: its communicator's R."""
    return m.name in PUBLISH_LINES[era_of(release).value] and reduce_scatter(release, c, s, m)


def site_flags(release: str, c: ServerConfig, s: ForwardState, m: Model, site) -> tuple:
    """(F, R) the site's helper call reads: keyword arguments (as 0.5.11's call passes them) up
    to 0.5.15, the published context from 0.5.16."""
    if since(era_of(release), Era.V0_5_16):
        return ctx_F(release, c, s, m), ctx_R(release, c, s, m)
    return (site.receives_F and block_F(release, c, s, m), site.receives_R and block_R(release, c, s, m))


def site_runs(release: str, c: ServerConfig, s: ForwardState, m: Model, site) -> bool:
    """Whether `site` all-reduces at `release`."""
    era = era_of(release)
    if site.level == Level.DECODER:
        return site.guard(Version.LEGACY)(c, fusion(release, c, s, m), reduce_scatter(release, c, s, m))
    if era == Era.V0_5_10:
        return site.guard(Version.LEGACY)(c, block_F(release, c, s, m), block_R(release, c, s, m))
    F, R = site_flags(release, c, s, m, site)
    return group_size(c, site.group) > 1 and not HELPERS[era](c, site.path == Path.TP, R, F)


def after_experts(release: str, c: ServerConfig, s: ForwardState, m: Model) -> After:
    """The step after the sites (proto.semantics.after_experts, with the release's F, R and V)."""
    if fusion(release, c, s, m) and m.decoder.fuses_next_layer:
        return next_layer_step(c, s)
    if not m.decoder.communicator:
        return After.NONE
    if scatters_hidden_states(c) and V(release, c):
        return After.REDUCE_SCATTERV
    if reduce_scatter(release, c, s, m):
        return After.REDUCE_SCATTER
    if scatters_hidden_states(c):
        return After.DP_SCATTER
    return After.NONE


def sum_counts(release: str, c: ServerConfig, s: ForwardState, m: Model, variant: str) -> SumCounts:
    """Times each axis is summed in one layer at `release`: proto.semantics.count_sums over the
    release's site decisions and step after the sites."""
    runs = ()
    for site in m.sites_of(variant):
        runs = runs + ((site.group, site_runs(release, c, s, m, site)),)
    return count_sums(c, runs, after_experts(release, c, s, m))


def mixes_tokens(release: str, c: ServerConfig, s: ForwardState, m: Model, variant: str) -> bool:
    """A site sums over ranks holding different tokens (proto.semantics.mixes_tokens)."""
    mixed = False
    if c.attn_dp_size > 1:
        for site in m.sites_of(variant):
            runs = site_runs(release, c, s, m, site)
            if runs and Q(c):
                mixed = True
            if not m.decoder.gathers_for_dp_attention and runs and group_spans_dp_ranks(c, site.group):
                mixed = True
    return mixed


def crashes(release: str, c: ServerConfig, s: ForwardState, m: Model) -> bool:
    """V's reduce-scatterv with attention TP > 1 (0.5.15 - 0.5.16; 0.5.17's V excludes it), or F
    skipping the scatter under DP attention (proto.semantics.crashes)."""
    v_crash = after_experts(release, c, s, m) == After.REDUCE_SCATTERV and c.tp_size > c.attn_dp_size
    unscattered = fusion(release, c, s, m) and m.decoder.fuses_next_layer and gathers_tokens(c, m)
    return v_crash or unscattered


def exactly_once(release: str, c: ServerConfig, s: ForwardState, m: Model) -> bool:
    """Every partial axis of size > 1 summed exactly once, over aligned tokens, in every variant."""
    ok = not crashes(release, c, s, m)
    for variant in m.variants:
        n = sum_counts(release, c, s, m, variant)
        ok = (ok and not mixes_tokens(release, c, s, m, variant)
              and (c.ep_size == 1 or n.ep == 1) and (c.moe_tp_size == 1 or n.moe_tp == 1))
    return ok


def layer_in_scope(c: ServerConfig, m: Model) -> bool:
    """proto.semantics' scope (a2a none, the model's architecture, moe_dp 1), dwdp 1, off AMD."""
    return in_scope(c, m) and c.dwdp_size == 1 and not c.is_amd
