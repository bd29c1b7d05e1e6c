"""The map's panels: the settings that change who sums, each a (tp, ep) -> configuration rule.

Every panel runs the model's own architecture on an SM90 server with flashinfer, one token per
rank (the decode step), the next layer's RMSNorm fused unless the panel says otherwise.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Callable

from sumonce.proto.config import (DpPaddingMode, ForwardState, GpuArch, MoeRunnerBackend, Quantization,
                                  ServerConfig)
from sumonce.proto.flags import to_flags
from sumonce.proto.sites import Model

SIZES = tuple(range(1, 17))
"""tp and ep, 1 to 16: every layout of up to two 8-GPU nodes' worth of ranks."""


@dataclass(frozen=True)
class Panel:
    key: str
    title: str
    meaning: str
    config: Callable[[ServerConfig], ServerConfig]
    state: ForwardState = ForwardState()


def _fusion_off(c):
    return replace(c, enforce_disable_flashinfer_allreduce_fusion=True)


def _fusion_on(c):
    return replace(c, enable_flashinfer_allreduce_fusion=True)


def _dp_attention(c):
    return replace(c, enable_dp_attention=True, dp_size=c.tp_size)


def _fp4_allgather(c):
    return replace(_dp_attention(c), moe_runner_backend=MoeRunnerBackend.FLASHINFER_CUTLASS,
                   quantization=Quantization.MODELOPT_FP4)


def _input_scattered(c):
    return replace(_fusion_off(c), enable_attn_tp_input_scattered=True)


PANELS = (
    Panel("fusion-off", "fusion off", "no DP attention; the fused all-reduce switched off", _fusion_off),
    Panel("fusion-on", "fusion on", "no DP attention; --enable-flashinfer-allreduce-fusion", _fusion_on),
    Panel("fusion-unfused-norm", "fusion on, unfused norm",
          "fusion on, but the next layer's RMSNorm takes the unfused all-reduce fallback", _fusion_on,
          ForwardState(next_norm_fused=False)),
    Panel("dp-attention", "DP attention", "--enable-dp-attention --dp-size = tp (sum_len padding)",
          _dp_attention),
    Panel("dp-attention-max-len", "DP attention, reduce-scatter",
          "DP attention with max_len padding: the communicator reduce-scatters (R)", _dp_attention,
          ForwardState(dp_padding_mode=DpPaddingMode.MAX_LEN)),
    Panel("tp-scattered", "reduce-scatter, TP input scattered",
          "attention-TP input scattered (--enable-attn-tp-input-scattered): R without DP attention",
          _input_scattered, ForwardState(attn_tp_input_scattered=True, dp_padding_mode=DpPaddingMode.MAX_LEN)),
    Panel("fp4-allgather", "FP4 all-gather",
          "DP attention (dp = tp) + flashinfer_cutlass + modelopt_fp4: Q where ep = tp", _fp4_allgather),
)

PANELS_BY_KEY = {p.key: p for p in PANELS}


def at(panel: Panel, m: Model, tp: int, ep: int) -> tuple[ServerConfig, ForwardState]:
    """The panel's configuration and forward state at (tp, ep) for model `m`."""
    if PANELS_BY_KEY.get(panel.key) is not panel:
        return _build(panel, m.architectures[0], tp, ep)
    return _at(panel.key, m.architectures[0], tp, ep)


def _build(panel: Panel, architecture: str, tp: int, ep: int) -> tuple[ServerConfig, ForwardState]:
    base = ServerConfig(tp_size=tp, ep_size=ep, architecture=architecture, gpu_arch=GpuArch.SM90)
    return panel.config(base), panel.state


@lru_cache(maxsize=None)
def _at(key: str, architecture: str, tp: int, ep: int) -> tuple[ServerConfig, ForwardState]:
    # NOTE: cached by the panel's key: every guard version of a model draws the same configurations
    return _build(PANELS_BY_KEY[key], architecture, tp, ep)


def state_flags(s: ForwardState) -> list[str]:
    """sumonce's forward-state flags for `s` (defaults left out), as proto.flags spells them."""
    d, out = ForwardState(), []
    if s.num_tokens != d.num_tokens:
        out += ["--num-tokens", str(s.num_tokens)]
    if s.dp_padding_mode != d.dp_padding_mode:
        out += ["--dp-padding-mode", s.dp_padding_mode.value]
    out += [f for f, on in (("--attn-tp-input-scattered", s.attn_tp_input_scattered),
                            ("--last-layer", s.is_last_layer), ("--unfused-next-norm", not s.next_norm_fused)) if on]
    return out


def repro_command(m: Model, version, c: ServerConfig, s: ForwardState) -> str:
    """The `sumonce run` line that runs this cell on Ray actors (and `sumonce config` validates)."""
    flags = to_flags(c) + state_flags(s)
    return " ".join(["sumonce run --era 0.5.11 --model", m.name, "--guard-version", version.value, *flags])
