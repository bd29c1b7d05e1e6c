"""Eras: SGLang releases in which the post-experts decision has one shape. Facts are keyed by era.

An era is data (its releases, the facts it rests on with file:line, which settings it knows) plus
the small functions that decide in it: the #23748 era's live in proto.predicates, semantics and
catalogue; the 0.5.23 era's in proto.boundary and proto.models_0523. A third era (0.5.16 - 0.5.20's
context helper, 0.5.21) is one ERAS entry, one `RULES` row and the functions its facts name.
docs/ERAS.md and docs/eras.json hold the research these facts were re-read from.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from .config import BoundaryReduction, MoeA2ABackend, MoeRunnerBackend, ServerConfig, SpeculativeAlgorithm


class Era(StrEnum):
    """Named by the release whose wheel the facts were read from (the era's first release, except
    0.5.23, read from the newest). Shapes and ranges: docs/ERAS.md section 1."""
    V0_5_10 = "0.5.10.post1"
    V0_5_11 = "0.5.11"
    V0_5_15 = "0.5.15"
    V0_5_16 = "0.5.16"
    V0_5_17 = "0.5.17"
    V0_5_20 = "0.5.20"
    V0_5_21 = "0.5.21"
    V0_5_23 = "0.5.23"


@dataclass(frozen=True)
class Fact:
    """One SGLang fact at a release: `text` is found on that line of the wheel's file (the era's
    own wheel, or `release`'s for a change inside the era's range)."""
    file: str
    line: int
    text: str
    meaning: str
    release: str = ""


@dataclass(frozen=True)
class EraFacts:
    era: Era
    releases: tuple[str, ...]
    shape: str
    decision: str
    facts: tuple[Fact, ...]


U = "sglang/srt/layers/moe/utils.py"
EXIT = "sglang/srt/layers/layer_boundary/exit.py"
FACTORIES = "sglang/srt/layers/layer_boundary/factories.py"
SA = "sglang/srt/server_args.py"
COMM = "sglang/srt/layers/communicator.py"
FUSION = "sglang/srt/layers/flashinfer_comm_fusion.py"
M = "sglang/srt/models/"

ERA_0_5_11 = EraFacts(
    Era.V0_5_11, ("0.5.11", "0.5.12", "0.5.12.post1", "0.5.13", "0.5.13.post1", "0.5.14"),
    "#23748 keyword helper",
    "skip(p, R, F) = F or R or V or (p and Q); the next layer's fused kernel sums over EP, else MoE-TP",
    (
        Fact(U, 353, "def should_skip_post_experts_all_reduce(", "the helper, keywords is_tp_path, use_reduce_scatter, should_allreduce_fusion"),
        Fact(U, 377, "if should_allreduce_fusion or use_reduce_scatter:", "first test: F or R"),
        Fact(U, 379, "if should_use_dp_reduce_scatterv():", "second test: V"),
        Fact(U, 381, "if is_tp_path and should_use_flashinfer_cutlass_moe_fp4_allgather():", "third: TP path and Q"),
        Fact(U, 324, "def should_use_flashinfer_cutlass_moe_fp4_allgather():", "Q"),
        Fact(SA, 200, '"flashinfer",', "the last --moe-a2a-backend choice: no pplx, no flashinfer_megamoe"),
        Fact(U, 338, "def should_use_dp_reduce_scatterv():", "V, no attention-TP condition"),
        Fact("sglang/srt/layers/flashinfer_comm_fusion.py", 525, "get_moe_expert_parallel_world_size() > 1",
             "the fused kernel's group: EP when moe_ep > 1, else MoE-TP"),
    ))

ERA_0_5_23 = EraFacts(
    Era.V0_5_23, ("0.5.22", "0.5.23"),
    "one-argument helper, post_experts_output_is_complete, the stage boundary sums",
    "complete(p) = dwdp > 1 or Q or a2a in {flashinfer, pplx, flashinfer_megamoe}; skip(p) = ctx.R or "
    "complete(p); the FFN exit completes the sum (reduce-scatter(v), deferred to the next input over "
    "post_experts_reduction_group, or sum_post_experts_output now)",
    (
        Fact(U, 785, "def should_skip_post_experts_all_reduce(*, is_tp_path: bool) -> bool:", "the one-argument helper"),
        Fact(U, 792, "return should_skip_mlp_all_reduce() or post_experts_output_is_complete(", "skip = ctx.R or complete"),
        Fact(U, 758, "return get_forward().mlp_reduce_scatter", "ctx.R: the only context flag read"),
        Fact(U, 761, "def post_experts_output_is_complete(*, is_tp_path: bool) -> bool:", "complete(p)"),
        Fact(U, 769, "if get_parallel().dwdp_size > 1:", "complete: dwdp > 1"),
        Fact(U, 771, "if should_use_flashinfer_cutlass_moe_fp4_allgather():", "complete: Q, either path"),
        Fact(U, 782, "return a2a.is_flashinfer() or a2a.is_pplx() or a2a.is_flashinfer_megamoe()", "complete: a2a combines"),
        Fact(U, 747, "and get_parallel().tp_size == get_parallel().attn_dp_size", "V: attention TP 1"),
        Fact(U, 721, "def is_moe_input_scattered_across_dp_ranks() -> bool:", "the boundary's 'complete' rows"),
        Fact(U, 804, "if get_parallel().tp_size > 1 and not should_skip_post_experts_all_reduce(", "reduce_moe_output"),
        Fact(U, 819, "summed_later = should_skip_post_experts_all_reduce(", "should_add_replicated_moe_output"),
        Fact(U, 822, "return not (parallel.tp_size > 1 and summed_later and parallel.tp_rank != 0)", "rank 0 adds when summed later"),
        Fact(U, 825, "def adds_replicated_output_to_partial() -> bool:", "the boundary blocks' twin"),
        Fact(U, 847, "and parallel.moe_dp_size == 1", "EP x MoE-TP merge into one TP sum"),
        Fact(U, 868, "def sum_post_experts_output(hidden_states: torch.Tensor) -> torch.Tensor:", "the boundary's sum, gated by complete only"),
        Fact(U, 890, "if reduce_ep and reduce_tp and can_merge_post_experts_all_reduce():", "one TP all-reduce when mergeable"),
        Fact(U, 900, "def post_experts_reduction_group():", "TP when mergeable, else EP, else MoE-TP"),
        Fact("sglang/srt/layers/flashinfer_comm_fusion.py", 698, "def resolve_fusion_group(*, use_attn_tp_group: bool):",
             "the fused kernel's workspace on post_experts_reduction_group"),
        Fact("sglang/srt/layers/layernorm.py", 264, "x = deferred_post_experts_all_reduce(x)", "a declined kernel still sums"),
        Fact(FACTORIES, 158, 'use_reduce_scatter = strategy in ("rs", "rs+rsv")', "boundary_reduction gates R"),
        Fact(FACTORIES, 159, 'use_reduce_scatterv = strategy in ("rsv", "rs+rsv")', "boundary_reduction gates V"),
        Fact(FACTORIES, 194, "complete = on_rank_rows or update.writes_stream or output_complete", "a2a / Q / dwdp rows: complete"),
        Fact(EXIT, 118, "may_defer_sum = (", "deferral to the next input"),
        Fact(EXIT, 142, "reduce_scatterv=path.returns_over_dp", "the exit's reduce-scatterv"),
        Fact(EXIT, 164, "and not can_merge_post_experts_all_reduce()", "no deferral for an unmergeable hybrid"),
        Fact(EXIT, 171, "and plan._speculative_algo.is_eagle()", "no deferral with DP attention and EAGLE"),
        Fact(EXIT, 297, "if steps.writes_at_handoff or (", "a pipeline hand-off completes now"),
        Fact(EXIT, 446, "steps.exit.may_defer_sum", "_defers_sum"),
        Fact(EXIT, 469, "if facts.single_sum:", "deferred only as one TP all-reduce (or a fused consumer)"),
        Fact(U, 912, "def post_experts_sum_is_one_all_reduce() -> bool:", "single_sum's test: no hybrid, the TP group"),
        Fact("sglang/srt/distributed/parallel_state.py", 2895, "_MOE_EP = _TP", "the EP group is _TP when ep == tp"),
        Fact("sglang/srt/distributed/parallel_state.py", 2924, "_MOE_TP = _TP", "the MoE-TP group is _TP when moe_tp == tp"),
        Fact(EXIT, 378, "hidden_states = sum_output(", "complete now: sum_post_experts_output"),
        Fact("sglang/srt/arg_groups/boundary_reduction.py", 54, 'return "rs+rsv"', "auto: rs+rsv for most MoE models"),
        Fact("sglang/srt/models/hunyuan_v3.py", 190, "final_hidden_states = post_experts_all_reduce(final_hidden_states)",
             "hunyuan_v3 still sums in its block"),
        Fact("sglang/srt/models/qwen2_moe.py", 886, "final_hidden_states = reduce_moe_output(final_hidden_states)",
             "qwen2_moe's reduce_moe_output (reduce_results=True only)"),
        Fact("sglang/srt/models/qwen2_moe.py", 1032, "reduce_results=False,", "the qwen2_moe decoder builds it without"),
        Fact("sglang/srt/arg_groups/parallel_hook.py", 441, "assert cfg.dwdp_size == cfg.tp_size, (", "dwdp needs dwdp == tp"),
    ))

ERA_0_5_10 = EraFacts(
    Era.V0_5_10, ("0.5.10.post1",),
    "no helper: hand-written guards in each model file",
    "each model file guards its own all-reduce (proto.guards' legacy guards, without V: V does not exist yet)",
    (
        Fact(U, 278, "def should_use_flashinfer_cutlass_moe_fp4_allgather():", "Q exists, same conditions as 0.5.11"),
        Fact(SA, 203, '"flashinfer",', "the last --moe-a2a-backend choice: no pplx, no flashinfer_megamoe"),
        Fact(COMM, 601, "def should_use_reduce_scatter(self, forward_batch: ForwardBatch):", "R: no V term (no V yet)"),
        Fact(FUSION, 244, "if get_moe_expert_parallel_world_size() > 1:", "the fused kernel's group: EP when ep > 1"),
        Fact(M + "qwen3_moe.py", 328, "if self.ep_size > 1 and not should_allreduce_fusion:", "qwen3_moe's EP guard: no R term"),
        Fact(M + "qwen2_moe.py", 354, "and not should_use_flashinfer_cutlass_moe_fp4_allgather()", "qwen2_moe: F, R, Q; no V"),
        Fact(M + "llada2.py", 382, "if self.tp_size > 1 and not use_reduce_scatter:", "llada2 (and llama4, exaone_moe): R only"),
        Fact(M + "minimax_m2.py", 406, "if self.tp_size > 1:", "minimax_m2 all-reduces whenever tp > 1"),
        Fact(M + "minimax_m2.py", 767, "hidden_states = self.block_sparse_moe(hidden_states, forward_batch)", "no F, no R handed on"),
        Fact(M + "step3p5.py", 637, "# hidden_states, residual = self.layer_communicator.prepare_mlp(", "step3p5: no DP gather"),
        Fact(M + "step3p5.py", 649, "moe_output = self.moe(hidden_states)", "step3p5's MoE gets no F or R"),
    ))

ERA_0_5_15 = EraFacts(
    Era.V0_5_15, ("0.5.15", "0.5.15.post1"),
    "#23748 keyword helper, plus the flashinfer a2a term",
    "skip(p, R, F) = F or R or V or (p and Q) or a2a == flashinfer",
    (
        Fact(U, 440, "def should_skip_post_experts_all_reduce(", "the helper, the same three keywords"),
        Fact(U, 476, "if get_moe_a2a_backend().is_flashinfer():", "new last test: the flashinfer a2a combine sums"),
        Fact(SA, 243, '"flashinfer",', "--moe-a2a-backend: flashinfer; no pplx, no flashinfer_megamoe"),
        Fact(COMM, 761, "if should_use_dp_reduce_scatterv():", "R holds under V when the communicator scatters (from 0.5.12)"),
        Fact(FUSION, 645, "if get_parallel().moe_ep_size > 1:", "the fused kernel's group: EP when ep > 1"),
        Fact("sglang/srt/layers/layernorm.py", 181, "if fused_result is not None:", "a declined kernel: the norm alone"),
    ))

ERA_0_5_16 = EraFacts(
    Era.V0_5_16, ("0.5.16",),
    "one-argument helper reading the per-forward context (F and R)",
    "skip(p) = ctx.F or ctx.R or V or (p and Q) or a2a == flashinfer; the decoder publishes ctx from its communicator",
    (
        Fact(U, 465, "def should_skip_post_experts_all_reduce(*, is_tp_path: bool) -> bool:", "the one-argument helper"),
        Fact(U, 491, "if should_skip_mlp_all_reduce():", "first test: the context's flags"),
        Fact(U, 462, "return f.fuse_mlp_allreduce or f.mlp_reduce_scatter", "ctx.F or ctx.R"),
        Fact("sglang/srt/models/qwen3_moe.py", 837, "with get_forward().scoped(", "a decoder publishes F and R"),
        Fact("sglang/srt/layers/communicator.py", 758, "def should_use_reduce_scatter(self, forward_batch: ForwardBatch):", "R's source"),
        Fact("sglang/srt/layers/communicator.py", 776, "def should_fuse_mlp_allreduce_with_next_layer(", "F's source"),
        Fact(SA, 276, '"flashinfer",', "--moe-a2a-backend: no pplx yet"),
        Fact(COMM, 765, "if should_use_dp_reduce_scatterv():", "R holds under V when the communicator scatters"),
    ))

ERA_0_5_17 = EraFacts(
    Era.V0_5_17, ("0.5.17", "0.5.18", "0.5.19"),
    "one-argument context helper, plus dwdp and pplx terms; V needs attention TP 1",
    "skip(p) = ctx.F or ctx.R or dwdp > 1 or V' or (p and Q) or a2a in {flashinfer, pplx}; V' = V and tp == attn_dp",
    (
        Fact(U, 509, "if get_parallel().dwdp_size > 1:", "new test: dwdp > 1"),
        Fact(U, 517, "if get_moe_a2a_backend().is_pplx():", "new test: the pplx a2a combine sums"),
        Fact(U, 465, "and get_parallel().tp_size == get_parallel().attn_dp_size", "V: attention TP 1"),
        Fact(SA, 276, '"pplx",', "--moe-a2a-backend pplx"),
        Fact(SA, 6763, "assert resolved_view(self).enable_dp_attention and self.dp_size >= 2, (", "pplx needs DP attention, dp >= 2"),
        Fact(SA, 1067, "dwdp_size: A[", "--dwdp-size"),
        Fact(SA, 6387, "self.dwdp_size == self.tp_size", "dwdp == tp"),
        Fact(FUSION, 687, "if get_parallel().moe_ep_size > 1:", "the fused kernel's group: EP when ep > 1"),
        Fact(COMM, 828, "if parallel.moe_ep_size > 1 and parallel.moe_tp_size > 1:",
             "from 0.5.18: no F for a hybrid EP x MoE-TP layout", release="0.5.18"),
        Fact(COMM, 905, "if parallel.moe_ep_size > 1 and parallel.moe_tp_size > 1:", "the same gate in 0.5.19", release="0.5.19"),
    ))

ERA_0_5_20 = EraFacts(
    Era.V0_5_20, ("0.5.20",),
    "one-argument context helper, plus the flashinfer_megamoe term",
    "as 0.5.17, or a2a == flashinfer_megamoe",
    (
        Fact(U, 714, "def should_skip_post_experts_all_reduce(*, is_tp_path: bool) -> bool:", "the one-argument helper"),
        Fact(U, 754, "if get_moe_a2a_backend().is_flashinfer_megamoe():", "new last test: flashinfer_megamoe"),
        Fact("sglang/srt/arg_groups/fields/exec_.py", 648, '"flashinfer_megamoe",', "--moe-a2a-backend flashinfer_megamoe"),
        Fact("sglang/srt/arg_groups/fields/parallel.py", 115, "dwdp_size: A[", "--dwdp-size"),
        Fact("sglang/srt/arg_groups/moe_hook.py", 499, "assert resolved_view(server_args).enable_dp_attention and cfg.dp_size >= 2, (",
             "pplx needs DP attention, dp >= 2"),
        Fact(COMM, 947, "if parallel.moe_ep_size > 1 and parallel.moe_tp_size > 1:", "no F for a hybrid layout"),
        Fact(FUSION, 702, "if get_parallel().moe_ep_size > 1:", "the fused kernel's group: EP when ep > 1"),
        Fact("sglang/srt/layers/layernorm.py", 247, "if fused_result[0] is not None:", "a declined kernel: the norm alone"),
    ))

ERA_0_5_21 = EraFacts(
    Era.V0_5_21, ("0.5.21",),
    "post_experts_output_is_complete; model files sum through reduce_moe_output; the stage boundary publishes F and R",
    "complete(p) = dwdp > 1 or (p and Q) or a2a in {flashinfer, pplx, flashinfer_megamoe}; skip(p) = ctx.F or ctx.R or complete(p)",
    (
        Fact(U, 741, "def post_experts_output_is_complete(*, is_tp_path: bool) -> bool:", "complete(p)"),
        Fact(U, 751, "if is_tp_path and should_use_flashinfer_cutlass_moe_fp4_allgather():", "Q completes the TP path only"),
        Fact(U, 767, "return should_skip_mlp_all_reduce() or post_experts_output_is_complete(", "skip = ctx or complete"),
        Fact(U, 738, "return f.fuse_mlp_allreduce or f.mlp_reduce_scatter", "ctx.F or ctx.R"),
        Fact(U, 772, "def reduce_moe_output(hidden_states: torch.Tensor) -> torch.Tensor:", "reduce_moe_output"),
        Fact(U, 786, "def should_add_replicated_moe_output() -> bool:", "the replicated shared expert's rule"),
        Fact(EXIT, 183, "mlp_reduce_scatter = self._ffn_leaves_sum_to_reduce_scatter(steps, dp_step)", "the boundary publishes R"),
        Fact(FACTORIES, 96, 'use_reduce_scatterv = strategy in ("rsv", "rs+rsv") and can_move_output', "boundary_reduction gates V"),
        Fact("sglang/srt/arg_groups/fields/exec_.py", 623, "boundary_reduction: A[", "--boundary-reduction"),
        Fact("sglang/srt/arg_groups/fields/exec_.py", 723, '"flashinfer_megamoe",', "--moe-a2a-backend flashinfer_megamoe"),
    ))

ERAS = {e.era: e for e in (ERA_0_5_10, ERA_0_5_11, ERA_0_5_15, ERA_0_5_16, ERA_0_5_17, ERA_0_5_20, ERA_0_5_21,
                           ERA_0_5_23)}

RELEASE_ERA = {r: e.era for e in ERAS.values() for r in e.releases}
"""Every registry release from 0.5.10.post1 to 0.5.23 -> its era (docs/eras.json, "releases")."""


def era_of_release(version: str) -> Era:
    """The era a registry release belongs to; ValueError names the known range."""
    try:
        return RELEASE_ERA[version]
    except KeyError:
        raise ValueError(f"no era for sglang {version}; known releases: {', '.join(RELEASE_ERA)}") from None

ORDER = tuple(Era)
"""The eras, oldest first."""


def since(era: Era, first: Era) -> bool:
    """`era` is `first` or a later one."""
    return ORDER.index(era) >= ORDER.index(first)


def pplx_accepted(c: ServerConfig) -> bool:
    """--moe-a2a-backend pplx (0.5.17 server_args.py:6751-6777; 0.5.20 arg_groups/moe_hook.py:500-510;
    0.5.23 moe_hook.py:591-602): DP attention with at least 2 groups, runner deep_gemm or auto; its
    dispatcher asserts the EP group spans the world (layers/moe/token_dispatcher/pplx.py:88-92):
    no pipeline stages (ep == tp is proto.validation's a2a rule)."""
    return (c.moe_a2a_backend != MoeA2ABackend.PPLX
            or c.enable_dp_attention and c.attn_dp_size >= 2 and c.pp_size == 1
            and (c.moe_runner_backend == MoeRunnerBackend.DEEP_GEMM or c.moe_runner_backend == MoeRunnerBackend.AUTO))


def dwdp_accepted(c: ServerConfig) -> bool:
    """--dwdp-size (0.5.17 server_args.py:1067, checked by _handle_dwdp :6379-6400; 0.5.20
    arg_groups/parallel_hook.py:266-288; 0.5.23 :433-453): dwdp == tp, pp 1, no speculative decoding;
    and it resolves the rest (0.5.17 server_args.py:6411-6419; 0.5.21 parallel_hook.py:367-400;
    0.5.23 :466-498): DP attention over dwdp groups, ep = dwdp, moe_dp 1, a2a none."""
    return c.dwdp_size == 1 or (c.dwdp_size == c.tp_size and c.pp_size == 1
                                and c.speculative_algorithm == SpeculativeAlgorithm.NONE
                                and c.enable_dp_attention and c.attn_dp_size == c.dwdp_size
                                and c.ep_size == c.dwdp_size and c.moe_dp_size == 1
                                and c.moe_a2a_backend == MoeA2ABackend.NONE)


def no_pplx(c: ServerConfig) -> bool:
    """--moe-a2a-backend pplx, a choice from 0.5.17 (server_args.py:276), is unused."""
    return c.moe_a2a_backend != MoeA2ABackend.PPLX


def no_megamoe(c: ServerConfig) -> bool:
    """--moe-a2a-backend flashinfer_megamoe, from 0.5.20 (arg_groups/fields/exec_.py:648), is unused."""
    return c.moe_a2a_backend != MoeA2ABackend.FLASHINFER_MEGAMOE


def no_dwdp(c: ServerConfig) -> bool:
    """--dwdp-size, from 0.5.17 (server_args.py:1067), is 1."""
    return c.dwdp_size == 1


def no_boundary_reduction(c: ServerConfig) -> bool:
    """--boundary-reduction, from 0.5.21 (arg_groups/fields/exec_.py:623), is auto (before it, absent: auto)."""
    return c.boundary_reduction == BoundaryReduction.AUTO


@dataclass(frozen=True)
class Rule:
    """One clause of `accepts`, with refusal's line for it: `ok(c)` holds in every era before
    `until` (every era when `until` is None). With `until`, `why` names the setting that is new then."""
    ok: Callable[[ServerConfig], bool]
    why: str
    until: Era | None = None

    def holds(self, era: Era, c: ServerConfig) -> bool:
        return self.until is not None and since(era, self.until) or self.ok(c)

    def reason(self, era: Era) -> str:
        if self.until is None:
            return self.why
        return f"{self.why} exists from the {self.until.value} era on (this is {era.value})"


RULES = (
    Rule(no_pplx, "--moe-a2a-backend pplx", Era.V0_5_17),
    Rule(no_megamoe, "--moe-a2a-backend flashinfer_megamoe", Era.V0_5_20),
    Rule(no_dwdp, "--dwdp-size other than 1", Era.V0_5_17),
    Rule(no_boundary_reduction, "--boundary-reduction other than auto", Era.V0_5_21),
    Rule(pplx_accepted, "--moe-a2a-backend pplx needs --enable-dp-attention with --dp-size 2 or more, "
                        "--pp-size 1 and --moe-runner-backend deep_gemm or auto"),
    Rule(dwdp_accepted, "--dwdp-size needs --dwdp-size = --tp-size, --pp-size 1 and no speculative decoding, and runs "
                        "with --enable-dp-attention, --dp-size and --ep-size = --dwdp-size, moe_dp 1, "
                        "--moe-a2a-backend none"),
)
"""What an era's releases accept beyond proto.validation's rules (which hold for every era), in the
order refusal reports them. --moe-a2a-backend flashinfer exists in every era (0.5.10.post1
server_args.py:203, 0.5.11 :200)."""


def accepts(era: Era, c: ServerConfig) -> bool:
    """The era's releases accept `c`: every rule of RULES holds."""
    ok = True
    for rule in RULES:
        ok = ok and rule.holds(era, c)
    return ok


def refusal(era: Era, c: ServerConfig) -> str | None:
    """Why the era's releases refuse `c`, in one line: the first rule of RULES that fails (None
    when `accepts`)."""
    for rule in RULES:
        if not rule.holds(era, c):
            return rule.reason(era)
    return None


def era_of(name: str) -> Era:
    """`--era` values: an Era's name; ValueError names the allowed ones."""
    try:
        return Era(name)
    except ValueError:
        raise ValueError(f"unknown era {name!r}; known: {', '.join(e.value for e in Era)}, all") from None
