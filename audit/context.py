"""One decoder that builds a MoE block: its model file, its facts (proto.sites.Decoder, read from
source), its architectures, and how its calls bind the block method's parameters to F and R."""
from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cache, cached_property

from sumonce.proto.sites import BlockFlag, Decoder, Model

from .extract import F_NAME, R_NAME, RawSite


@dataclass(frozen=True)
class Caller:
    """A model file whose decoder builds the block."""
    file: str
    stem: str
    architectures: tuple[str, ...]
    decoder: Decoder

    @cached_property
    def model(self) -> Model:
        """The facts proto.semantics reads of a decoder (no sites: those are the audit's)."""
        return Model(self.stem, self.architectures or (self.stem,), self.decoder, (), (), ())


@dataclass(frozen=True)
class Context:
    caller: Caller
    flags: tuple[tuple[str, str], ...] | None
    """param -> "F"/"R" as the caller binds it; None: no caller found, bound by parameter name."""

    @cached_property
    def decoder(self) -> Decoder:
        """The caller's facts, with what it passes the block read from its binding."""
        d = self.caller.decoder
        if self.flags is None:
            return d
        passed = {flag for _p, flag in self.flags}
        block_F = d.block_F if "F" in passed and d.block_F != BlockFlag.ABSENT else \
            BlockFlag.COMPUTED if "F" in passed else BlockFlag.ABSENT
        return replace(d, block_F=block_F, passes_R="R" in passed)

    def model(self) -> Model:
        if self.decoder == self.caller.decoder:
            return self.caller.model
        return _model_of(self.caller, self.decoder)

    @property
    def stem(self) -> str:
        return self.caller.stem

    def flags_of(self, site: RawSite) -> dict[str, str]:
        if self.flags is not None:
            return dict(self.flags)
        return {p: flag for p, flag in ((F_NAME, "F"), (R_NAME, "R")) if p in site.params}

    @staticmethod
    def decoder_level(site: RawSite) -> bool:
        """A decoder's site: it sums the output of a MoE block its class holds (a parallel block),
        or its class is named a decoder layer."""
        return site.sums_block or "DecoderLayer" in site.cls


@cache
def _model_of(caller: Caller, decoder: Decoder) -> Model:
    return Model(caller.stem, caller.architectures or (caller.stem,), decoder, (), (), ())
