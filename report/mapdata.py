"""The configuration map as data: per model, guard version and panel, a tp x ep grid of cells
from proto (through outcome.classify), checked against spec's verdicts (proofs.agree); and per
model the same panels in the 0.5.23 era (outcome.classify_0523: proto.models_0523), drawn next
to the 0.5.11 guards (build_era).

A cell travels to the page as a short token the page's script expands into a coloured square:
refused: "R" + the rule (a letter, into RULE_NAMES); else the outcome letter, the EP and MoE-TP
sum counts (one character each), the variant (index into the model's variants) and, to the end
of the token, the known finding it lies in (index into FINDINGS, or "-").
"""
from __future__ import annotations

from dataclasses import dataclass, field

from sumonce.proto.catalogue import MODELS
from sumonce.proto.flags import to_flags
from sumonce.proto.serial import to_dict
from sumonce.proto.sites import COMMITS, UPSTREAM_ISSUES, Model, Version
from sumonce.proto.validation import RULES
from sumonce.spec.findings import FINDINGS

from sumonce.proto.models_0523 import EraModel, era_model

from .outcome import ERA_RULES, Cell, Outcome, classify, classify_0523
from .panels import PANELS, SIZES, Panel, at, state_flags
from .proofs import Proof, Witness, agree

RULE_NAMES = tuple(r.name for r in RULES) + ("forward_state",) + ERA_RULES
TP_MARK, EP_MARK = 1001, 1002
"""Stand-in sizes for the page's repro template (replaced by the cell's tp and ep there)."""


@dataclass
class Grid:
    panel: Panel
    tokens: list[str]
    """len(SIZES)**2 tokens, row-major: row = ep, column = tp."""
    template: str
    wrong: int = 0


@dataclass
class VersionMap:
    model: Model
    version: Version
    grids: list[Grid]
    proofs: list[Proof] = field(default_factory=list)
    witnesses: list[Witness] = field(default_factory=list)

    era = "0.5.11"

    @property
    def label(self) -> str:
        return self.version.value

    @property
    def commit(self) -> str:
        return COMMITS.get(self.version, "")[:8]

    @property
    def upstream(self) -> str:
        return UPSTREAM_ISSUES.get(self.version, "")


def finding_index(c, s, m: Model, version: Version) -> str:
    for i, f in enumerate(FINDINGS):
        if f.region(c, s, m, version):
            return str(i)
    return "-"


def token(cell: Cell, m: Model, c, s, version: Version) -> str:
    if cell.outcome == Outcome.REFUSED:
        return "R" + chr(ord("a") + RULE_NAMES.index(cell.rule))
    where = finding_index(c, s, m, version) if cell.outcome.wrong else "-"
    return f"{cell.outcome.value}{_digit(cell.ep)}{_digit(cell.moe_tp)}{m.variants.index(cell.variant)}{where}"


def _digit(n: int) -> str:
    """A sum count in one character ('+' for 10 or more, which no layer reaches)."""
    return str(n) if n < 10 else "+"


def template(panel: Panel, m: Model, version: Version | None) -> str:
    """The cell's `sumonce run` line with {tp} and {ep} for its sizes (version None: the 0.5.23 era)."""
    c, s = at(panel, m, TP_MARK, EP_MARK)
    flags = " ".join(to_flags(c) + state_flags(s)).replace(str(TP_MARK), "{tp}").replace(str(EP_MARK), "{ep}")
    if version is None:
        return f"sumonce run --era 0.5.23 --model {m.name} {flags}"
    return f"sumonce run --era 0.5.11 --model {m.name} --guard-version {version.value} {flags}"


def repro_templates(maps: list[VersionMap]) -> dict:
    """Per model and panel, the config and state of a `sumonce repro` file, sizes as stand-ins."""
    out = {}
    for vm in maps:
        for g in vm.grids:
            c, s = at(g.panel, vm.model, TP_MARK, EP_MARK)
            out.setdefault(vm.model.name, {})[g.panel.key] = {"config": to_dict(c), "state": to_dict(s)}
    return out


def grid(panel: Panel, m: Model, version: Version, proofs: list[Proof]) -> Grid:
    g = Grid(panel, [], template(panel, m, version))
    for ep in SIZES:
        for tp in SIZES:
            c, s = at(panel, m, tp, ep)
            cell = classify(c, s, m, version)
            g.tokens.append(token(cell, m, c, s, version))
            g.wrong += cell.outcome.wrong
            for p in proofs:
                agree(p, c, s, cell, (panel.key, tp, ep))
    return g


def build(proofs: dict, witnesses: list[Witness], models=MODELS) -> list[VersionMap]:
    """Every catalogued model at every guard version it has, every panel."""
    out = []
    for m in models:
        for v in m.versions:
            mine = proofs.get((m.name, v), [])
            grids = [grid(p, m, v, mine) for p in PANELS]
            seen = [w for w in witnesses if w.model == m.name and w.version == v]
            out.append(VersionMap(m, v, grids, mine, seen))
    return out


@dataclass
class EraMap:
    """One model's panels in the 0.5.23 era (no guard versions there: one decision; no proofs
    drawn against it here: spec's 0.5.23 table is `sumonce prove --era 0.5.23`)."""
    model: Model
    era_model: EraModel
    grids: list[Grid]
    proofs: list = field(default_factory=list)
    witnesses: list = field(default_factory=list)
    era = "0.5.23"
    label = "era 0.5.23"
    commit = ""

    @property
    def upstream(self) -> str:
        return f"{self.era_model.sums_at.value} ({self.era_model.cite})"


def era_token(cell: Cell) -> str:
    """As token(), with variant 0 (the one place the model sums) and no finding (spec's findings
    are 0.5.11's)."""
    if cell.outcome == Outcome.REFUSED:
        return "R" + chr(ord("a") + RULE_NAMES.index(cell.rule))
    return f"{cell.outcome.value}{_digit(cell.ep)}{_digit(cell.moe_tp)}0-"


def era_grid(panel: Panel, m: Model, em: EraModel) -> Grid:
    g = Grid(panel, [], template(panel, m, None))
    for ep in SIZES:
        for tp in SIZES:
            c, s = at(panel, m, tp, ep)
            cell = classify_0523(c, s, em)
            g.tokens.append(era_token(cell))
            g.wrong += cell.outcome.wrong
    return g


def build_era(models=MODELS) -> list[EraMap]:
    """Every catalogued model in the 0.5.23 era, every panel."""
    return [EraMap(m, era_model(m.name), [era_grid(p, m, era_model(m.name)) for p in PANELS]) for m in models]
