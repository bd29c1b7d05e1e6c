"""SGLang's command-line spellings of ServerConfig and ForwardState, and SGLang's silent adjustments.

`parse_flags(argv)` reads flags as `python -m sglang.launch_server` spells them (with their
aliases) plus sumonce's forward-state and hardware flags; `normalize` applies what SGLang changes
by itself (and says so); `config_from_flags` does both and validates. Standard library only.
"""
from __future__ import annotations

import argparse
from dataclasses import replace
from enum import Enum

from .config import (
    BoundaryReduction,
    DpPaddingMode,
    ForwardState,
    GpuArch,
    MoeA2ABackend,
    MoeRunnerBackend,
    Quantization,
    ServerConfig,
    SpeculativeAlgorithm,
)
from .validation import ConfigError, validate


class FlagError(ValueError):
    """A flag that does not parse: names the flag and what is allowed."""


class _Parser(argparse.ArgumentParser):
    """No abbreviations (`--tp-s 4` must not dodge the checks that name --tp-size); errors raise."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message):  # argparse would print usage and exit; callers decide instead
        raise FlagError(message)


UPPER_CASE_CHOICES = (SpeculativeAlgorithm,)
"""Enums whose SGLang choices are upper case: server_args.py (0.5.11, line 5367) lists
--speculative-algorithm as DFLASH, EAGLE, EAGLE3, NEXTN, STANDALONE, NGRAM. The other choice lists
(QUANTIZATION_CHOICES line 110, MOE_RUNNER_BACKEND_CHOICES line 179, the a2a Literal line 550)
are lower case. argparse matches choices exactly, so case matters; "none" is sumonce's spelling of
SGLang's default (no value)."""


def spelling(e: Enum) -> str:
    """The value as SGLang's command line spells it."""
    if type(e) in UPPER_CASE_CHOICES and e.value != "none":
        return e.value.upper()
    return e.value


def _choice(enum: type[Enum]):
    def parse(text: str):
        for e in enum:
            if text == spelling(e):
                return e
        allowed = ", ".join(spelling(e) for e in enum)
        raise argparse.ArgumentTypeError(f"{text!r} is not one of: {allowed} (case-sensitive, as SGLang)")
    parse.__name__ = enum.__name__
    return parse


SIZE_MAX = 2**20
"""A bound on every size flag: far above any real deployment, small enough that arithmetic on
sizes stays cheap (2**31 GPUs would never be placed either)."""


def _size(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if abs(n) > SIZE_MAX:
        raise argparse.ArgumentTypeError(f"{text!r} is out of range (at most {SIZE_MAX})")
    return n


def add_config_flags(p: argparse.ArgumentParser) -> None:
    """The server flags, SGLang's names and aliases."""
    d = ServerConfig()
    p.add_argument("--tp-size", "--tp", "--tensor-parallel-size", dest="tp_size", type=_size, default=d.tp_size)
    p.add_argument("--dp-size", "--dp", "--data-parallel-size", dest="dp_size", type=_size, default=d.dp_size)
    p.add_argument("--ep-size", "--ep", "--expert-parallel-size", dest="ep_size", type=_size, default=d.ep_size)
    p.add_argument("--enable-dp-attention", action="store_true")
    p.add_argument("--moe-a2a-backend", type=_choice(MoeA2ABackend), default=d.moe_a2a_backend)
    p.add_argument("--moe-runner-backend", type=_choice(MoeRunnerBackend), default=d.moe_runner_backend)
    p.add_argument("--quantization", type=_choice(Quantization), default=d.quantization)
    p.add_argument("--disable-flashinfer-cutlass-moe-fp4-allgather", action="store_true")
    p.add_argument("--enable-flashinfer-allreduce-fusion", action="store_true")
    p.add_argument("--enforce-disable-flashinfer-allreduce-fusion", action="store_true")
    p.add_argument("--speculative-algorithm", type=_choice(SpeculativeAlgorithm), default=d.speculative_algorithm)
    p.add_argument("--nnodes", type=_size, default=d.nnodes)
    p.add_argument("--attn-cp-size", "--attention-context-parallel-size", dest="attn_cp_size",
                   type=_size, default=d.attn_cp_size)
    p.add_argument("--enable-nsa-prefill-context-parallel", action="store_true")
    p.add_argument("--enable-attn-tp-input-scattered", action="store_true")
    p.add_argument("--disable-piecewise-cuda-graph", action="store_true")
    p.add_argument("--pp-size", "--pipeline-parallel-size", dest="pp_size", type=_size, default=d.pp_size)
    p.add_argument("--moe-dp-size", dest="moe_dp_size", type=_size, default=d.moe_dp_size)
    p.add_argument("--enable-aiter-allreduce-fusion", action="store_true")
    p.add_argument("--dwdp-size", dest="dwdp_size", type=_size, default=d.dwdp_size)
    p.add_argument("--boundary-reduction", type=_choice(BoundaryReduction), default=d.boundary_reduction)
    g = p.add_argument_group("model and hardware (sumonce)")
    g.add_argument("--architecture", default=d.architecture,
                   help="the model's architecture name, e.g. Qwen3MoeForCausalLM")
    g.add_argument("--gpu-arch", type=_choice(GpuArch), default=d.gpu_arch)
    g.add_argument("--no-flashinfer", dest="flashinfer_available", action="store_false",
                   help="flashinfer is not importable on the server")
    g.add_argument("--h20-device", action="store_true", help="the GPU is an H20 (no fusion auto-enable)")
    g.add_argument("--shared-expert-tp1", action="store_true",
                   help="the environment switch SGLANG_SHARED_EXPERT_TP1=1 (0.5.12+): a replicated shared expert")


def add_state_flags(p: argparse.ArgumentParser) -> None:
    """The forward-state flags (sumonce's own)."""
    d = ForwardState()
    g = p.add_argument_group("forward state (sumonce)")
    g.add_argument("--num-tokens", type=_size, default=d.num_tokens)
    g.add_argument("--dp-padding-mode", type=_choice(DpPaddingMode), default=d.dp_padding_mode)
    g.add_argument("--attn-tp-input-scattered", action="store_true")
    g.add_argument("--last-layer", dest="is_last_layer", action="store_true")
    g.add_argument("--stage-last-layer", dest="is_stage_last_layer", action="store_true",
                   help="the last layer of a pipeline stage that is not the last stage")
    g.add_argument("--unfused-next-norm", dest="next_norm_fused", action="store_false",
                   help="the next layer's fused all-reduce + RMSNorm does not take this tensor "
                        "(CUDA: flashinfer declines; AMD: past aiter's limits)")


def _pick(cls, ns: argparse.Namespace):
    from dataclasses import fields
    return cls(**{f.name: getattr(ns, f.name) for f in fields(cls) if hasattr(ns, f.name)})


def normalize(c: ServerConfig) -> tuple[ServerConfig, list[str]]:
    """Apply SGLang's silent adjustments; return the new configuration and one note per change."""
    notes = []
    if c.enable_dp_attention and c.dp_size == 1:
        c = replace(c, enable_dp_attention=False)
        notes.append("dp_size is 1: SGLang turns --enable-dp-attention off")
    if c.moe_a2a_backend != MoeA2ABackend.NONE and c.ep_size != c.tp_size and c.tp_size >= 1:
        notes.append(f"--moe-a2a-backend {c.moe_a2a_backend.value}: SGLang sets ep_size = tp_size = {c.tp_size}")
        c = replace(c, ep_size=c.tp_size)
    if c.speculative_algorithm == SpeculativeAlgorithm.NEXTN:
        c = replace(c, speculative_algorithm=SpeculativeAlgorithm.EAGLE)
        notes.append("SGLang reads --speculative-algorithm NEXTN as EAGLE")
    return c, notes


def config_from_namespace(ns: argparse.Namespace) -> tuple[ServerConfig, ForwardState, list[str]]:
    """Build, normalise and validate; raises ConfigError for a configuration SGLang refuses."""
    from .semantics import forward_state_valid
    c, notes = normalize(_pick(ServerConfig, ns))
    s = _pick(ForwardState, ns)
    validate(c)
    if not forward_state_valid(c, s):
        raise ConfigError("forward_state", "--num-tokens must be >= 0; --attn-tp-input-scattered needs "
                          "--enable-attn-tp-input-scattered, tp > 1, no DP attention, a2a none, no NSA CP")
    return c, s, notes


def parse_flags(argv: list[str]) -> tuple[ServerConfig, ForwardState, list[str]]:
    """Parse SGLang-spelled flags; raises FlagError (bad flag) or ConfigError (refused config)."""
    p = _Parser(prog="sumonce", add_help=False)
    add_config_flags(p)
    add_state_flags(p)
    return config_from_namespace(p.parse_args(argv))


def to_flags(c: ServerConfig) -> list[str]:
    """The launch_server flags that reproduce `c` (defaults left out)."""
    from dataclasses import fields
    d, out = ServerConfig(), []
    for f in fields(ServerConfig):
        value, default = getattr(c, f.name), getattr(d, f.name)
        if value == default:
            continue
        if f.name == "flashinfer_available":
            out.append("--no-flashinfer")
        elif isinstance(value, bool):
            out.append("--" + f.name.replace("_", "-"))
        else:
            out += ["--" + f.name.replace("_", "-"), spelling(value) if isinstance(value, Enum) else str(value)]
    return out
