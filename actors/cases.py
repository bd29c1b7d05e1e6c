"""A case (model, variant, version, configuration, forward state) and the conformance sweeps.

Only configurations that proto.validate accepts and proto.semantics.in_scope keeps are swept.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

from sumonce.proto import catalogue, nodes, semantics
from sumonce.proto.config import (DpPaddingMode, ForwardState, GpuArch, MoeRunnerBackend, Quantization,
                          ServerConfig)
from sumonce.proto.predicates import should_use_dp_reduce_scatterv as V
from sumonce.proto.predicates import should_use_flashinfer_cutlass_moe_fp4_allgather as Q
from sumonce.proto.eras import Era
from sumonce.proto.sites import Version
from sumonce.proto.semantics import after_experts
from sumonce.proto.validation import violations


def divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


SWEEP_MODELS = ("qwen3_moe", "minimax_m2", "hunyuan_v3", "exaone_moe", "bailing_moe_linear", "step3p5",
                "llama4", "deepseek_v2")


@dataclass(frozen=True)
class Case:
    model: str
    variant: str
    version: Version
    config: ServerConfig
    state: ForwardState
    seed: int = 0
    era: Era = Era.V0_5_11
    """0.5.11: variant and version name the guards run; 0.5.23: variant names where the model
    sums (proto.models_0523.SumsAt), version is None (one decision per era)."""

    @property
    def world(self) -> int:
        return self.config.tp_size

    @property
    def label(self) -> str:
        """The guard version (0.5.11 era) or the era (0.5.23), for tables."""
        return self.version.value if self.version is not None else f"era {self.era.value}"

    @property
    def layout(self) -> tuple[int, ...]:
        """The node of each rank of the TP group the actors run (stage 0): proto.nodes."""
        return nodes.tp_group_nodes(self.config)


def actors_scope(c: ServerConfig) -> str | None:
    """Why the actors cannot run `c` (None when they can): no context parallelism (attn_cp_size > 1
    and NSA prefill CP are outside the facts the layer follows). One TP group, on the nodes
    proto.nodes gives it (`--nnodes`)."""
    if c.attn_cp_size != 1 or c.enable_nsa_prefill_context_parallel:
        return "--attn-cp-size 1 and no --enable-nsa-prefill-context-parallel"
    return None


def runnable(c: ServerConfig, m) -> bool:
    """SGLang accepts it, the model reaches its sites, and the actors can run one TP group of it.
    A model that cannot serve the configuration (no DP gather) is run: what its sums do is the
    point. Hardware: each arch runs as a CPU/gloo emulation of its decisions."""
    return not violations(c) and semantics.in_scope(c, m) and actors_scope(c) is None


def crashes_in_sglang(c: ServerConfig, s: ForwardState, m) -> bool:
    """proto says SGLang cannot proceed here (semantics.crashes): nothing to measure."""
    return semantics.crashes(c, s, m)


ARCHS = (GpuArch.SM90, GpuArch.GFX942, GpuArch.CPU)


def configs(world: int, architecture: str, nnodes: int = 1):
    """tp = world; every ep, DP attention off or on at every dp; plain or the FP4 all-gather
    runner; the fusion-capable GPUs (sm90 + flashinfer, AMD + aiter, flags on) or a CPU server;
    one or two pipeline stages (this TP group is one stage). On several nodes the sm90 server
    leaves --enable-flashinfer-allreduce-fusion to SGLang, whose auto-enable is for one node only
    (ServerConfig.allreduce_fusion_enabled): fusion on one node, off across two."""
    for ep in divisors(world):
        for dp in [0] + divisors(world)[1:]:
            for runner, quant in ((MoeRunnerBackend.AUTO, Quantization.NONE),
                                  (MoeRunnerBackend.FLASHINFER_CUTLASS, Quantization.MODELOPT_FP4)):
                for arch in ARCHS:
                    for pp in (1, 2):
                        yield ServerConfig(tp_size=world, ep_size=ep, dp_size=max(dp, 1),
                                           enable_dp_attention=dp > 0, moe_runner_backend=runner,
                                           quantization=quant, gpu_arch=arch, pp_size=pp,
                                           flashinfer_available=arch == GpuArch.SM90, nnodes=nnodes,
                                           enable_flashinfer_allreduce_fusion=arch == GpuArch.SM90 and nnodes == 1,
                                           enable_aiter_allreduce_fusion=arch == GpuArch.GFX942,
                                           enable_attn_tp_input_scattered=arch == GpuArch.SM90,
                                           disable_piecewise_cuda_graph=True,
                                           architecture=architecture)


STATES = {
    "small": (ForwardState(num_tokens=5),
              ForwardState(num_tokens=5, dp_padding_mode=DpPaddingMode.MAX_LEN),
              ForwardState(num_tokens=5, is_last_layer=True),
              ForwardState(num_tokens=5, next_norm_fused=False),
              ForwardState(num_tokens=5, is_stage_last_layer=True),
              ForwardState(num_tokens=4, attn_tp_input_scattered=True)),
}
STATES["full"] = STATES["small"] + (
    ForwardState(num_tokens=0),
    ForwardState(num_tokens=7, dp_padding_mode=DpPaddingMode.MAX_LEN, is_last_layer=True),
    ForwardState(num_tokens=6, dp_padding_mode=DpPaddingMode.MAX_LEN, attn_tp_input_scattered=True),
)


def decision_key(case: Case) -> tuple:
    """What the layer's execution depends on: cases equal here run the same collectives."""
    c, s, m = case.config, case.state, catalogue.model(case.model)
    pred = semantics.sum_counts(c, s, m, case.variant, case.version)
    mixes = semantics.mixes_tokens(c, s, m, case.variant, case.version)
    return (case.model, case.variant, case.version, c.tp_size, c.ep_size, c.attn_dp_size, Q(c), V(c),
            after_experts(c, s, m), s.dp_padding_mode, s.num_tokens == 0, pred, mixes, case.layout)


def sweep(name: str, worlds=(2, 4), models=SWEEP_MODELS, eras=(Era.V0_5_11, Era.V0_5_23),
          nnodes: int = 1) -> list[Case]:
    """The named sweep in each era: every valid, in-scope combination, one case per distinct
    decision key ("small"), or every combination ("full"). Over `nnodes` > 1 nodes (the default
    worlds then are `sweep_worlds(nnodes)`) it keeps the configurations whose TP group spans nodes
    (proto.nodes: with pp_size >= nnodes a TP group sits on one node, which the one-node sweep covers)."""
    if name not in STATES:
        raise KeyError(f"unknown sweep {name!r}; sweeps: {', '.join(STATES)}")
    out = sweep_0511(name, worlds, models, nnodes) if Era.V0_5_11 in eras else []
    if Era.V0_5_23 in eras:
        from .cases_0523 import sweep_0523
        out += sweep_0523(name, worlds, models, nnodes)
    return out


def points(name: str, worlds, models, nnodes, era_model, era_configs, runnable, state_ok):
    """Every era's sweep points (model name, model, c, s): each world's configurations that the era
    runs (`runnable`) and, over nnodes > 1, whose TP group spans nodes; each state `state_ok` keeps
    in them, a zero-token one only under DP attention (else no rank differs)."""
    for world in worlds:
        for mname in models:
            m = era_model(mname)
            for c in era_configs(world, m.architectures[0], nnodes):
                if not runnable(c, m) or (nnodes > 1 and nodes.spans_nodes(c) == 1):
                    continue
                for s in STATES[name]:
                    if state_ok(c, s) and not (s.num_tokens == 0 and c.attn_dp_size == 1):
                        yield mname, m, c, s


def sweep_0511(name: str, worlds, models, nnodes: int = 1) -> list[Case]:
    out, seen = [], set()
    for mname, m, c, s in points(name, worlds, models, nnodes, catalogue.model, configs, runnable,
                                 semantics.forward_state_valid):
        if crashes_in_sglang(c, s, m):
            continue
        for variant in m.variants:
            for version in m.versions:
                case = Case(mname, variant, version, c, s)
                key = decision_key(case)
                if name == "small" and key in seen:
                    continue
                seen.add(key)
                out.append(case)
    return out


def sweep_worlds(nnodes: int) -> tuple[int, ...]:
    """The sweep's world sizes: 2 and 4 shards a node (one node: worlds 2, 4; two: 4, 8)."""
    return (2 * nnodes, 4 * nnodes)


def with_seed(cases: list[Case], seed: int) -> list[Case]:
    return [replace(k, seed=seed) for k in cases]


def shared_expert_cases() -> list:
    """SGLANG_SHARED_EXPERT_TP1 cases (actors.replicated): per era, a configuration where a later
    sum is owed (F, V or R) and one where the block sums; proto.shared_expert predicts the count."""
    from sumonce.proto.eras import Era
    from .replicated import SharedCase
    dsv3 = dict(architecture="DeepseekV3ForCausalLM", shared_expert_tp1=True, disable_piecewise_cuda_graph=True)
    laguna = dict(architecture="LagunaForCausalLM", shared_expert_tp1=True)
    s, max_len = ForwardState(num_tokens=5), ForwardState(num_tokens=5, dp_padding_mode=DpPaddingMode.MAX_LEN)
    fused = ServerConfig(tp_size=2, **dsv3)  # F: fusion auto-enabled for DeepSeek V3 on SM90
    unfused = ServerConfig(tp_size=2, enforce_disable_flashinfer_allreduce_fusion=True, **dsv3)
    v = ServerConfig(tp_size=2, dp_size=2, ep_size=2, enable_dp_attention=True, **dsv3)
    r = ServerConfig(tp_size=2, dp_size=2, enable_dp_attention=True, **laguna)
    hybrid, tp4 = ServerConfig(tp_size=4, ep_size=2, **dsv3), ServerConfig(tp_size=4, **dsv3)
    return [SharedCase("deepseek_v2", Era.V0_5_11, fused, s), SharedCase("deepseek_v2", Era.V0_5_20, v, s),
            SharedCase("deepseek_v2", Era.V0_5_20, unfused, s), SharedCase("laguna", Era.V0_5_17, r, max_len),
            SharedCase("deepseek_v2", Era.V0_5_20, tp4, s),
            SharedCase("deepseek_v2", Era.V0_5_21, fused, s, F=True), SharedCase("laguna", Era.V0_5_21, r, max_len, R=True),
            SharedCase("deepseek_v2", Era.V0_5_23, fused, s), SharedCase("deepseek_v2", Era.V0_5_23, v, s),
            SharedCase("deepseek_v2", Era.V0_5_23, hybrid, s),
            SharedCase("deepseek_v4", Era.V0_5_23, v, s, reduce_results=True, R=True),
            SharedCase("laguna", Era.V0_5_23, r, max_len)]
