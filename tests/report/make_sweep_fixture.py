"""Write tests/report/data/sweep_small_w2.json: a real conformance sweep (`sumonce run --sweep
small --worlds 2` on CPU Ray actors with gloo) in the row format `sumonce report --sweep` reads
(docs/REPORT.md). Re-run it to refresh the fixture:

    PYTHONPATH=$PWD python tests/report/make_sweep_fixture.py [OUT.json]
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import ray

from sumonce.actors.cluster import quiet
from sumonce.actors.conformance import run_cases
from sumonce.actors.run import parse
from sumonce.proto.serial import to_dict


def row_json(r) -> dict:
    """One actors.conformance.Row in the report's sweep format."""
    k = r.case
    return {"model": k.model, "era": k.era.value, "variant": k.variant,
            "version": k.version.value if k.version is not None else None, "world": k.world,
            "config": to_dict(k.config), "state": to_dict(k.state),
            "predicted": {"ep": r.predicted.ep, "moe_tp": r.predicted.moe_tp},
            "measured": {"ep": r.measured.ep, "moe_tp": r.measured.moe_tp},
            "after": r.after, "impl": r.impl, "ok": r.ok, "problem": r.problem}


def main(out: str) -> None:
    quiet()
    _, cases, _ = parse(["--sweep", "small", "--worlds", "2", "--device", "cpu"])
    # NOTE: a private local cluster, never one another process started on this machine
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        rows = run_cases(cases, use_gpu=False)
    finally:
        ray.shutdown()
    lines = ",\n".join(json.dumps(row_json(r), separators=(",", ":")) for r in rows)  # one row a line
    Path(out).write_text('{"command": "sumonce run --sweep small --worlds 2 --device cpu",\n "rows": [\n'
                         + lines + "\n]}\n")
    print(f"{len(rows)} rows, {sum(not r.ok for r in rows)} mismatches -> {out}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else str(Path(__file__).parent / "data" / "sweep_small_w2.json"))
