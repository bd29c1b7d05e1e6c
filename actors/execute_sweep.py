"""The run itself: connect to Ray, check placement, run the cases with a progress bar, print the
tables, clean up (actors, placement groups, and the cluster when this process started it)."""
from __future__ import annotations

import sys
import time

from .cluster import connect, disconnect


def use_gpu(device: str) -> bool:
    import ray
    if device == "auto":
        return ray.cluster_resources().get("GPU", 0) > 0
    return device == "gpu"


def execute(ns, cases, fault) -> int:
    import ray
    from rich.progress import Progress

    from .conformance import run_cases
    from .driver import PlacementError, ShardFailure, check_placeable
    from .report import console
    from rich.console import Console
    err_console = Console(stderr=True, width=200)
    as_json = getattr(ns, "json", False)  # `sumonce repro` has no --json
    worlds = sorted({k.world for k in cases})
    started = connect(num_cpus=max(worlds))
    t0 = time.time()
    try:
        gpu = use_gpu(ns.device)
        for w in worlds:
            check_placeable(w, gpu, 1)
        # NOTE: with --json, stdout carries the document alone: the rest goes to stderr
        (err_console if as_json else console).print(
            f"{len(cases)} case(s), world size(s) {', '.join(map(str, worlds))}, "
            f"{'GPU (nccl)' if gpu else 'CPU (gloo)'} shards, Ray {ray.__version__}")
        with Progress(console=err_console if as_json else console, transient=True, disable=not ns.sweep) as bar:
            task = bar.add_task("cases", total=len(cases))
            rows = run_cases(cases, deadline_s=ns.timeout, use_gpu=gpu, fault=fault,
                             on_rows=lambda n: bar.advance(task, n))
    except PlacementError as e:
        print(f"sumonce run: {e}", file=sys.stderr)
        return 2
    except ShardFailure as e:
        print(f"sumonce run: shard failure: {e}", file=sys.stderr)
        return 3
    finally:
        disconnect(started)
    if as_json:
        from sumonce.output import dump
        from .output import run_document
        dump(run_document(rows, time.time() - t0, gpu, ray.__version__))
        return 0 if all(r.ok for r in rows) else 1
    return report(ns, rows, time.time() - t0)


def report(ns, rows, wall: float) -> int:
    from .report import console, row_table, summary_table
    bad = [r for r in rows if not r.ok]
    show_rows = ns.table == "rows" or (ns.table == "auto" and not ns.sweep)
    if show_rows:
        console.print(row_table(rows, "rows"))
    if ns.sweep or ns.table == "summary":
        console.print(summary_table(rows))
    if bad and not show_rows:
        console.print(row_table(bad, "mismatches"))
    impls = sorted({r.impl for r in rows if r.impl != "-"})
    console.print(f"next-layer all-reduce implementations that ran: {', '.join(impls) or 'none'}")
    console.print(f"{len(rows)} rows, {len(bad)} mismatch(es), {wall:.1f} s")
    return 1 if bad else 0
