"""`sumonce audit --baseline FILE` / `--write-baseline FILE`: adopt the gate on today's tree.

A baseline records every site's verdict, keyed by what names a site across edits (model, method,
path/group and its occurrence among equal ones; not its line). Against a baseline the audit fails
only on a site that differs or is not understood and whose verdict is new (absent from the
baseline) or changed; sites already recorded with that verdict pass, and sites since fixed are
listed. It also records the MoE model files left unaccounted (audit/coverage.py): against it only a
file newly unaccounted fails. Schema: sumonce/schemas/audit-baseline.schema.json.
"""
from __future__ import annotations

import json
from collections import Counter

from sumonce.output import SCHEMA_VERSION, document

from .verdict import SiteVerdict
from .source import TargetError

DIFFERS, NOT_UNDERSTOOD = SiteVerdict.DIFFERS, SiteVerdict.NOT_UNDERSTOOD
BAD = (DIFFERS, NOT_UNDERSTOOD)


def site_keys(rep) -> dict:
    """key -> the site's verdict record, for every site of a report."""
    out, seen = {}, Counter()
    for v in rep.sites:
        k = (v.model, v.method, v.path, v.group_name)
        seen[k] += 1
        out[f"{v.model}:{v.method}:{v.path}/{v.group_name}#{seen[k]}"] = v
    return out


def baseline_document(rep) -> dict:
    return document("audit-baseline", {"target": rep.label,
                                       "sites": {k: v.verdict for k, v in site_keys(rep).items()},
                                       "unaccounted": [r.model for r in rep.coverage.unaccounted]})


def write(rep, path: str) -> None:
    try:
        with open(path, "w") as f:
            json.dump(baseline_document(rep), f, indent=2)
            f.write("\n")
    except OSError as e:
        raise TargetError(f"cannot write the baseline {path}: {e.strerror}") from None


def read(path: str) -> dict:
    """The recorded key -> verdict; TargetError (one line) for a file that is not a baseline."""
    try:
        with open(path) as f:
            doc = json.load(f)
    except OSError as e:
        raise TargetError(f"cannot read the baseline {path}: {e.strerror}") from None
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise TargetError(f"{path} is not JSON (write a baseline with --write-baseline FILE)") from None
    if not isinstance(doc, dict) or doc.get("kind") != "audit-baseline" or not isinstance(doc.get("sites"), dict):
        raise TargetError(f"{path} is not a sumonce audit baseline (write one with --write-baseline FILE)")
    if doc.get("schema_version") != SCHEMA_VERSION:
        raise TargetError(f"{path}: baseline schema_version {doc.get('schema_version')!r}; "
                          f"this sumonce reads {SCHEMA_VERSION} (write it again with --write-baseline)")
    return doc


def _change(key: str, v, before, after) -> dict:
    model, method, rest = key.split(":", 2)
    return {"key": key, "model": model, "method": method, "path": rest.split("#")[0],
            "before": before, "after": after, "line": v.line if v is not None else None}


def check(rep, path: str) -> dict:
    """The sites new or changed against the baseline at `path` (these fail), and those fixed."""
    doc, now = read(path), site_keys(rep)
    recorded, known = doc["sites"], set(doc.get("unaccounted") or ())
    new, changed, fixed = [], [], []
    for key, v in now.items():
        if v.verdict not in BAD:
            continue
        if key not in recorded:
            new.append(_change(key, v, None, v.verdict))
        elif recorded[key] != v.verdict:
            changed.append(_change(key, v, recorded[key], v.verdict))
    for key, verdict in recorded.items():
        if verdict in BAD and (key not in now or now[key].verdict not in BAD):
            fixed.append(_change(key, now.get(key), verdict, now[key].verdict if key in now else None))
    unaccounted = [r.model for r in rep.coverage.unaccounted if r.model not in known]
    return {"file": path, "new": new, "changed": changed, "fixed": fixed, "unaccounted": unaccounted,
            "passed": not new and not changed and not unaccounted}


def lines(result: dict) -> list[str]:
    """The baseline's verdict for the log: one line per new, changed or fixed site."""
    out = [f"against the baseline {result['file']}: {len(result['new'])} new, {len(result['changed'])} changed, "
           f"{len(result['fixed'])} fixed"]
    for what in ("new", "changed", "fixed"):
        for c in result[what]:
            out.append(f"  {what:<8} {c['key']}  {c['before'] or 'absent'} -> {c['after'] or 'absent'}")
    out += [f"  newly unaccounted MoE model file: {m}" for m in result.get("unaccounted", [])]
    return out
