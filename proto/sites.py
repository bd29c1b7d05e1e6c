"""What a post-experts all-reduce site is: where it lives, what it sums, which guard runs it.

Vocabulary (torchtitan's): after the experts every rank holds a Partial() output, partial over
two axes: EP (each rank ran only its own experts) and MoE-TP (each rank ran only its slice of
each expert's intermediate dimension). A site's group says which of them its all-reduce sums.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Callable

from .config import MoeA2ABackend, ServerConfig

Guard = Callable[[ServerConfig, bool, bool], bool]


class Axis(StrEnum):
    """A partial-sum axis of the experts' output."""
    EP = "ep"
    MOE_TP = "moe_tp"


class Group(StrEnum):
    """The process group a site all-reduces over."""
    TP = "tp"          # every GPU of the replica: sums both axes
    EP = "ep"          # the expert-parallel group: sums the EP axis
    MOE_TP = "moe_tp"  # the MoE tensor-parallel group: sums the MoE-TP axis


GROUP_AXES = {Group.TP: (Axis.EP, Axis.MOE_TP), Group.EP: (Axis.EP,), Group.MOE_TP: (Axis.MOE_TP,)}


def group_size(c: ServerConfig, group: Group) -> int:
    """How many ranks the group has under `c`."""
    if group == Group.TP:
        return c.tp_size
    if group == Group.EP:
        return c.ep_size
    return c.moe_tp_size


class Path(StrEnum):
    """The helper's is_tp_path argument: EP all-reduce (False) or TP all-reduce (True)."""
    EP = "ep"
    TP = "tp"


class Version(StrEnum):
    """A point in SGLang's history at which a guard is true."""
    HELPER = "helper"          # 85376a61, PR #23748
    LEGACY = "legacy"          # da175b96, its parent
    PRE_23734 = "pre-23734"    # parent of 71029abd: qwen3_moe EP guard without `not R`
    PRE_23731 = "pre-23731"    # parent of 99b59b27: qwen3_moe without `not V`
    PRE_23732 = "pre-23732"    # parent of ba4e9d2a: 13 more models without `not V`


COMMITS = {
    Version.HELPER: "85376a61190a58140f39bf11aee42dab283b64d0",
    Version.LEGACY: "da175b964d150e6e24dade4a0ba7992d98921380",
    Version.PRE_23734: "71029abd640f9b90dbf2177119a04c14e997c3dd^",
    Version.PRE_23731: "99b59b279ce28a1ed426c42c58617cdd25b029ab^",
    Version.PRE_23732: "ba4e9d2ac20bcbe800aa95e2664ec18efda0a25f^",
}

# The upstream reports, by number; each historical version's own report below.
ISSUES = {
    "#23729": "#23729 (Qwen3 MoE, DP attention + EP without DeepEP: wrong logits; fixed by #23731)",
    "#23734": "#23734 (qwen3_moe EP all-reduce ran on top of the reduce-scatter)",
    "#23431": "#23431 (MiniMax-M2.5 TP8/DP8/EP8 + DP attention: GSM8K 0.95 -> 0.01; fixed by #23732)",
}
UPSTREAM_ISSUES = {
    Version.PRE_23731: ISSUES["#23729"],
    Version.PRE_23734: ISSUES["#23734"],
    Version.PRE_23732: ISSUES["#23431"],
}


class Level(StrEnum):
    """Where the all-reduce sits: in the MoE block (sees the block's F and R) or in the decoder."""
    BLOCK = "block"
    DECODER = "decoder"


@dataclass(frozen=True)
class Site:
    """One post-experts all-reduce in one model method."""
    model: str
    method: str
    path: Path
    group: Group
    receives_F: bool
    receives_R: bool
    guards: dict = field(hash=False)
    """Version -> guard; a version missing here is one at which the site did not differ."""
    level: Level = Level.BLOCK

    def guard(self, version: Version) -> Guard:
        """The guard at `version`, falling back to the legacy one for untouched versions."""
        if version in self.guards:
            return self.guards[version]
        return self.guards[Version.LEGACY]

    @property
    def axes(self) -> tuple[Axis, ...]:
        return GROUP_AXES[self.group]

    @property
    def name(self) -> str:
        return f"{self.model}:{self.method}:{self.path.value}"


class BlockFlag(StrEnum):
    """What the decoder passes the MoE block as should_allreduce_fusion."""
    COMPUTED = "computed"  # the communicator's F
    TRUE = "true"          # always True (step3p5: the decoder all-reduces itself)
    ABSENT = "absent"      # not passed: the method's default, False


@dataclass(frozen=True)
class Decoder:
    """The absorbers a model's decoder layer really has."""
    communicator: bool
    """Owns a LayerCommunicator: computes R, and its postprocess step can reduce-scatter(v)."""
    allow_reduce_scatter: bool
    computes_fusion: bool
    """Asks the communicator for F (should_fuse_mlp_allreduce_with_next_layer)."""
    fuses_next_layer: bool
    """When F, marks the output for the next layer's fused all-reduce instead of postprocessing."""
    block_F: BlockFlag
    passes_R: bool
    gathers_for_dp_attention: bool = True
    """Gathers the DP group's tokens before the MoE under DP attention (and scatters after):
    LayerCommunicator.prepare_mlp does (layers/communicator.py:947-986); proto.alignment."""


@dataclass(frozen=True)
class Model:
    """One SGLang model file, as the spec sees it."""
    name: str
    architectures: tuple[str, ...]
    decoder: Decoder
    variants: tuple[str, ...]
    """The alternative MoE forward methods; exactly one runs per forward."""
    excluded_backends: tuple[MoeA2ABackend, ...]
    """a2a backends under which another forward path (e.g. a DeepEP one) runs instead."""
    sites: tuple[Site, ...]
    decoder_sites: tuple[Site, ...] = ()
    supports_pp: bool = True
    """The model file runs pipeline stages (False: no pp_group, or it refuses pp_size > 1)."""
    shared_expert: bool = False
    """Its MoE block adds a shared expert's output (what the actors' layer computes)."""

    def sites_of(self, variant: str) -> tuple[Site, ...]:
        return tuple(s for s in self.sites if s.method == variant) + self.decoder_sites

    @property
    def versions(self) -> tuple[Version, ...]:
        seen = [Version.HELPER, Version.LEGACY]
        for s in self.sites:
            seen += [v for v in s.guards if v not in seen]
        return tuple(seen)
