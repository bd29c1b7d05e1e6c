"""What runs after the sites, as one choice: the step that `semantics.sum_counts` counts in its
`after` branch, named so that an executor (actors/) can run it without re-deciding it.

NOTE: mirrors the `after` branch of sum_counts; the lead may make sum_counts count these steps.
"""
from __future__ import annotations

from enum import StrEnum

from .communicator import scatters_hidden_states
from .config import ForwardState, ServerConfig
from .predicates import should_use_dp_reduce_scatterv
from .semantics import decoder_fusion, decoder_reduce_scatter
from .sites import Group, Model


class After(StrEnum):
    """The decoder's step after the MoE block."""
    NEXT_LAYER_FUSED = "next-layer fused all-reduce + residual + RMSNorm"
    NEXT_LAYER_UNFUSED = "next-layer unfused all-reduce fallback + residual + RMSNorm"
    REDUCE_SCATTER = "communicator reduce-scatter"
    REDUCE_SCATTERV = "DP-attention reduce-scatterv"
    DP_SCATTER = "DP-attention scatter (no sum)"
    NONE = "none"


def after_experts(c: ServerConfig, s: ForwardState, m: Model) -> After:
    """The step after the sites, in SGLang's order of precedence."""
    if decoder_fusion(c, s, m) and m.decoder.fuses_next_layer:
        return After.NEXT_LAYER_FUSED if s.next_norm_fused else After.NEXT_LAYER_UNFUSED
    if not m.decoder.communicator:
        return After.NONE
    if decoder_reduce_scatter(c, s, m):
        return After.REDUCE_SCATTER
    if scatters_hidden_states(c) and should_use_dp_reduce_scatterv(c):
        return After.REDUCE_SCATTERV
    if scatters_hidden_states(c):
        return After.DP_SCATTER
    return After.NONE


def next_layer_group(c: ServerConfig, after: After) -> Group:
    """The one group the next layer's all-reduce sums over: the fused kernel uses the EP group
    when ep > 1, else the MoE-TP group; the unfused fallback the MoE-TP group."""
    if after == After.NEXT_LAYER_FUSED and c.ep_size > 1:
        return Group.EP
    return Group.MOE_TP
