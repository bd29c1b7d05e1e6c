"""The audit on the page: per release a model x site table coloured by verdict with file:line;
with several releases, a model x release matrix of how the verdicts moved. The releases come from
auditing targets (`--audit`) or from a `sumonce audit --history ... --json` document (`--history-json`)."""
from __future__ import annotations

from dataclasses import dataclass

from sumonce.audit.history_report import ORDER as WORST

VERDICT_CLASS = {"calls the helper": "v-helper", "equivalent": "v-equivalent", "differs": "v-differs",
                 "not understood": "v-unknown", "equivalent in effect here": "v-equivalent",
                 "cannot run in scope": "v-equivalent"}


@dataclass
class Release:
    label: str
    sites: list[dict]
    """audit.report.to_json's sites: model, method, file, line, path, group, verdict, detail, witness."""
    counts: dict
    helper: str


def run(targets: list[str]) -> list[Release]:
    """Audit each target (a tree, a wheel, sglang==X) with sumonce.audit; TargetError on a bad one."""
    from sumonce.audit import report
    from sumonce.audit.audit import audit
    from sumonce.audit.source import load
    out = []
    for t in targets:
        data = report.to_json(audit(load(t)))
        out.append(Release(data["target"], data["sites"], data["counts"], data["helper"]["form"]))
    return out


def from_history(path: str) -> list[Release]:
    """The releases of an audit-history document; ValueError (one line) for anything else."""
    import json
    try:
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
    except (OSError, ValueError) as e:
        raise ValueError(f"{path}: cannot read an audit-history JSON document ({e})") from None
    if not isinstance(doc, dict) or doc.get("kind") != "audit-history":
        raise ValueError(f"{path}: not an audit-history document (write one with "
                         "sumonce audit --history sglang==A..sglang==B --json)")
    return [Release(r["release"], r["sites"], r["counts"], f"{r['helper']}; era {r['era']}") for r in doc["releases"]]


def worst(verdicts) -> str:
    return next((v for v in WORST if v in verdicts), "")


def matrix(releases: list[Release]) -> list[tuple[str, list[tuple[str, str]]]]:
    """model -> per release (worst verdict, title listing its sites with file:line); '' = absent."""
    models = sorted({s["model"] for r in releases for s in r.sites})
    rows = []
    for m in models:
        cells = []
        for r in releases:
            mine = [s for s in r.sites if s["model"] == m]
            title = "\n".join(f"{s['file']}:{s['line']} {s['method']} ({s['path']}/{s['group']}): {s['verdict']}"
                              for s in mine)
            cells.append((worst({s["verdict"] for s in mine}), title))
        rows.append((m, cells))
    return rows
