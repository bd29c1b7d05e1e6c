"""The sweep: proto's predicted outcome vs the outcome measured on Ray actors, per model and guard
version, as stacked bars; every row whose measurement disagrees is listed first, in red.

Input: JSON, either a list of rows or {"rows": [...]}; a row (what actors.conformance.Row holds):
    {"model": "qwen3_moe", "era": "0.5.11", "version": "helper", "variant": "...",
     "config": {ServerConfig fields, proto.serial.to_dict}, "state": {ForwardState fields},
     "predicted": {"ep": 1, "moe_tp": 1}, "measured": {"ep": 1, "moe_tp": null},
     "ok": true, "problem": null}
A measured count is null where the axis has size 1. Both outcomes come from outcome.from_counts.
"era" (0.5.11 when absent: files from before the 0.5.23 era was executed) names whose decisions the
shards ran; a 0.5.23 row's version is null (one decision in that era), and it is labelled by its era.
"""
from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from sumonce.proto.semantics import SumCounts
from sumonce.proto.serial import config_from_dict

from . import charts
from .outcome import LEGEND, WORDS, Outcome, from_counts

REQUIRED = ("model", "version", "config", "predicted", "measured", "ok")


class SweepError(ValueError):
    """A sweep file the report cannot read: names the file and what is missing."""


@dataclass
class SweepRow:
    model: str
    version: str
    """The guard version (0.5.11 era), or "era 0.5.23"."""
    flags: str
    predicted: Outcome
    measured: Outcome
    ok: bool
    problem: str


def _counts(d: dict) -> SumCounts:
    return SumCounts(d.get("ep") if d.get("ep") is not None else 1,
                     d.get("moe_tp") if d.get("moe_tp") is not None else 1)


def row(d: dict, where: str) -> SweepRow:
    missing = [k for k in REQUIRED if k not in d]
    if missing:
        raise SweepError(f"{where}: missing {', '.join(missing)}; a sweep row has {', '.join(REQUIRED)}")
    from sumonce.proto.flags import to_flags
    try:
        c = config_from_dict(d["config"])
    except (ValueError, TypeError) as e:
        raise SweepError(f"{where}: {e}") from None
    era = d.get("era") or "0.5.11"
    label = d["version"] if d["version"] is not None else f"era {era}"
    return SweepRow(d["model"], label, " ".join(to_flags(c)), from_counts(c, _counts(d["predicted"])),
                    from_counts(c, _counts(d["measured"])), bool(d["ok"]), d.get("problem") or "")


def load(path: str) -> list[SweepRow]:
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise SweepError(f"--sweep {path}: {getattr(e, 'strerror', None) or e}") from None
    rows = data.get("rows") if isinstance(data, dict) else data
    if not isinstance(rows, list) or not rows:
        raise SweepError(f"--sweep {path}: expected a non-empty list of rows or {{\"rows\": [...]}}")
    return [row(d, f"--sweep {path}, row {i}") for i, d in enumerate(rows)]


def bars(rows: list[SweepRow]) -> str:
    """Per model@version, two bars (predicted, measured), stacked by outcome."""
    keys = sorted({(r.model, r.version) for r in rows})
    labels = [f"{m}@{v} {side}" for m, v in keys for side in ("predicted", "measured")]
    counts = {k: (Counter(r.predicted for r in rows if (r.model, r.version) == k),
                  Counter(r.measured for r in rows if (r.model, r.version) == k)) for k in keys}
    c = charts.chart(charts.STACKED_BAR, "predicted vs measured, rows per outcome", charts.OUTCOME_COLOURS,
                     x_labels=labels, x_label_rotation=40, width=max(560, 44 * len(labels)), height=380,
                     y_title="rows", columns=6)
    for outcome, words, _ in LEGEND:
        c.add(words, [counts[k][side].get(outcome, 0) for k in keys for side in (0, 1)])
    return charts.svg(c)


def mismatches(rows: list[SweepRow]) -> list[SweepRow]:
    return [r for r in rows if not r.ok or r.predicted != r.measured]


def words(o: Outcome) -> str:
    return WORDS[o]
