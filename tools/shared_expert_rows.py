"""Print the replicated shared expert's rows on real gloo collectives (docs/SHARED_EXPERT.md):
per case, proto's predicted count of r per rank, the measured one, and the error against the
reference that counts it once. Starts a private local Ray cluster and shuts it down.

    PYTHONPATH=. python tools/shared_expert_rows.py
"""
from __future__ import annotations

import os
import sys


def main() -> int:
    import ray
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    ray.init(num_cpus=4, include_dashboard=False, log_to_driver=False)
    try:
        from sumonce.actors.cases import shared_expert_cases
        from sumonce.actors.replicated import run_shared_cases
        rows = run_shared_cases(shared_expert_cases(), deadline_s=180)
    finally:
        ray.shutdown()
    for r in rows:
        c = r.case.config
        print(f"{r.case.model:12s} {r.case.era.value:7s} tp{c.tp_size} ep{c.ep_size} attn_dp{c.attn_dp_size} "
              f"{r.case.how.name:10s} predicted={r.predicted} measured={r.measured} "
              f"error_vs_once={r.error_vs_once:.2f} {'ok' if r.ok else 'MISMATCH'}  ({r.later})")
    return 0 if all(r.ok for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
