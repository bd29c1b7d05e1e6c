"""The rows of audit/coverage.py: one per MoE model file, its kind, a summary read from the code and
the evidence (file:line); the totals printed as "MoE model files accounted for: N/M".
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from enum import StrEnum


class RowKind(StrEnum):
    SITES = "sites"
    BOUNDARY = "delegated to the layer boundary"
    NOT_NEEDED = "no post-experts reduce needed"
    UNACCOUNTED = "unaccounted"


@dataclass
class Evidence:
    file: str
    line: int
    what: str

    def __str__(self) -> str:
        return f"{self.file.rsplit('/', 1)[-1]}:{self.line} {self.what}"


@dataclass
class Row:
    model: str
    file: str
    kind: RowKind
    summary: str
    evidence: list[Evidence] = field(default_factory=list)
    via: list[str] = field(default_factory=list)
    """The MoE model files whose layers this one uses (its row follows theirs)."""

    def brief(self) -> str:
        """One phrase for --compare: the verdicts of a sites row, else its kind."""
        what = self.kind.value
        if self.kind is RowKind.SITES:
            what = f"sites of {', '.join(self.via)}" if self.via else self.summary
        elif self.via:
            what += f" (through {', '.join(self.via)})"
        return what

    def to_json(self) -> dict:
        return {"model": self.model, "file": self.file, "kind": self.kind.value, "summary": self.summary,
                "brief": self.brief(), "via": self.via,
                "evidence": [{"file": e.file, "line": e.line, "what": e.what} for e in self.evidence]}


@dataclass
class Coverage:
    rows: list[Row] = field(default_factory=list)

    @property
    def found(self) -> int:
        return len(self.rows)

    @property
    def accounted(self) -> int:
        return sum(r.kind is not RowKind.UNACCOUNTED for r in self.rows)

    @property
    def unaccounted(self) -> list[Row]:
        return [r for r in self.rows if r.kind is RowKind.UNACCOUNTED]

    def counts(self) -> dict:
        return dict(Counter(r.kind.value for r in self.rows))

    def line(self) -> str:
        return f"MoE model files accounted for: {self.accounted}/{self.found}"

    def totals(self) -> dict:
        return {"accounted": self.accounted, "found": self.found, "counts": self.counts(),
                "unaccounted": [r.model for r in self.unaccounted]}

    def to_json(self) -> dict:
        return self.totals() | {"rows": [r.to_json() for r in self.rows]}


def stem(rel: str) -> str:
    return rel.rsplit("/", 1)[-1][:-3]
