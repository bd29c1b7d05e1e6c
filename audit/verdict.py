"""What the audit says about one post-experts all-reduce site, in proto's types (Group, Path)."""
from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from sumonce.proto.sites import Group, Path


class SiteVerdict(StrEnum):
    HELPER = "calls the helper"
    EQUIVALENT = "equivalent"
    EQUIVALENT_HERE = "equivalent in effect here"
    """Textually different from the helper-based guard, but every decoder that builds the block
    sums exactly once where the helper would (the textual difference is a note)."""
    CANNOT_RUN = "cannot run in scope"
    """Dead code, or reached only where proto's scope never is (e.g. under an a2a backend)."""
    DIFFERS = "differs"
    NOT_UNDERSTOOD = "not understood"

    @property
    def bad(self) -> bool:
        return self in (SiteVerdict.DIFFERS, SiteVerdict.NOT_UNDERSTOOD)


@dataclass
class AuditedSite:
    model: str
    method: str
    line: int
    path: Path
    group: Group | None
    """None: a 0.5.23 wrapper that all-reduces over EP and MoE-TP."""
    verdict: SiteVerdict | None = None
    detail: str = ""
    file: str = ""
    witness: str = ""
    note: str = ""
    """For "equivalent in effect here": how the text differs from the helper-based guard."""
    reach: list[str] = field(default_factory=list)
    callers: list[str] = field(default_factory=list)
    """The model files whose decoders build this block (judged within each one's facts)."""
    tests: list[str] = field(default_factory=list)
    """Every condition the site is under, its locals read through (extract.read_through; "not "
    for a negated one): not printed, asked by audit/coverage_boundary.py."""
    forward: str = ""
    """The forward variant it belongs to (Class.method; "" for a decoder-level site): audit/assess.py
    does not count a forward one of whose sites is not understood."""
    wrapper: str = ""
    """A 0.5.23 wrapper's call (reduce_moe_output, post_experts_all_reduce): its name, else ""."""
    flow: tuple[str, str, str] = ("", "", "")
    """A wrapper's (result's name, argument's text, call's text): audit/extract.RawSite.flow."""

    @property
    def group_name(self) -> str:
        return self.group.value if self.group is not None else "ep+moe_tp"
