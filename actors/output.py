"""`sumonce run --json`: the conformance rows as one JSON document (schema:
sumonce/schemas/run.schema.json, docs/OUTPUT.md). Plain data only: no torch, no ray."""
from __future__ import annotations

import math

from sumonce.output import document
from sumonce.proto.flags import to_flags
from sumonce.proto.serial import to_dict


def row_json(r) -> dict:
    k = r.case
    err = r.measured.max_err
    return {"world": k.world, "era": k.era.value, "model": k.model, "variant": k.variant,
            "version": k.version.value if k.version is not None else None,
            "config": to_dict(k.config), "flags": " ".join(to_flags(k.config)), "state": to_dict(k.state),
            "after": r.after, "predicted": {"ep": r.predicted.ep, "moe_tp": r.predicted.moe_tp},
            "measured": {"ep": r.measured.ep, "moe_tp": r.measured.moe_tp},
            "max_err": err if err is not None and math.isfinite(err) else None,
            "impl": r.impl, "ok": r.ok, "problem": r.problem}


def per_era(rows) -> dict:
    """{era: {"rows": n, "mismatches": n}} for the eras the rows ran in, oldest first."""
    out = {}
    for r in sorted(rows, key=lambda r: r.case.era.value):
        e = out.setdefault(r.case.era.value, {"rows": 0, "mismatches": 0})
        e["rows"] += 1
        e["mismatches"] += not r.ok
    return out


def run_document(rows, wall: float, gpu: bool, ray_version: str) -> dict:
    bad = sum(1 for r in rows if not r.ok)
    return document("run", {"passed": bad == 0, "seconds": round(wall, 3), "device": "gpu" if gpu else "cpu",
                            "ray_version": ray_version, "worlds": sorted({r.case.world for r in rows}),
                            "mismatches": bad, "eras": per_era(rows), "rows": [row_json(r) for r in rows]})
