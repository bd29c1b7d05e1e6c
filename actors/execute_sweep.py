"""The run itself: refuse what the machine cannot hold, connect to Ray (cluster.py), run the cases
with a progress bar (plain periodic lines when stdout is not a terminal), print the tables, clean
up (actors, placement groups, and the cluster when this process started it).

A shard that dies, hangs or raises, or a GCS/raylet that dies: one line, exit 3. SIGINT or SIGTERM:
one line, the rows finished so far printed, the cluster shut down, exit 130 or 143."""
from __future__ import annotations

import os
import signal
import sys
import time

from .cluster import (SHARD_MEMORY, SIGNALLED, Interrupted, available_memory, check_interrupt, connect,
                      machine_cpus, on_signal)

INTERRUPT_CODES = {signal.SIGINT: 130, signal.SIGTERM: 143}


def use_gpu(device: str) -> bool:
    import ray
    if device == "auto":
        return ray.cluster_resources().get("GPU", 0) > 0
    return device == "gpu"


def preflight(ns, worlds: list[int]) -> str | None:
    """Why this machine cannot hold the largest world (None when it can): checked before Ray
    starts, so an oversized world costs nothing."""
    top = max(worlds)
    mem = available_memory()
    if mem is not None and top * SHARD_MEMORY > mem:
        most = max(0, mem // SHARD_MEMORY)
        return (f"world size {top} needs about {top * SHARD_MEMORY / 2**30:.1f} GiB (300 MiB a shard); "
                f"this machine has {mem / 2**30:.1f} GiB available; allowed: world size <= {most}")
    if private(ns) and not getattr(ns, "simulate_nodes", False):  # simulated nodes are sized to hold them
        cpus = getattr(ns, "num_cpus", None) or machine_cpus()
        if top > cpus:
            return (f"world size {top} needs {top} CPUs; the private cluster has {cpus} "
                    f"({'--num-cpus' if getattr(ns, 'num_cpus', None) else 'this machine'}); give "
                    f"--num-cpus {top} (oversubscribing) or world sizes <= {cpus} (--worlds, --tp-size)")
    return None


def private(ns) -> bool:
    import ray
    return not (getattr(ns, "address", None) or os.environ.get("RAY_ADDRESS") or ray.is_initialized())


def simulated(ns, cases) -> tuple[int, int]:
    """(simulated nodes, GPUs each) for --simulate-nodes: the most nodes a TP group spans; with
    --device gpu, a GPU for each shard a node holds. (0, 0) without the flag."""
    if not getattr(ns, "simulate_nodes", False):
        return 0, 0
    return max(len(set(k.layout)) for k in cases), (per_node(cases) if ns.device == "gpu" else 0)


def per_node(cases) -> int:
    """The most shards one node holds."""
    return max(max(k.layout.count(n) for n in set(k.layout)) for k in cases)


def cluster_size(ns, cases) -> tuple[int]:
    """CPUs of the private cluster (--num-cpus, else this machine's), or of each simulated node
    (--num-cpus, else the most shards a node holds)."""
    if getattr(ns, "simulate_nodes", False):
        return (getattr(ns, "num_cpus", None) or per_node(cases),)
    return (getattr(ns, "num_cpus", None) or max(machine_cpus(), 1),)


def execute(ns, cases, fault) -> int:
    worlds = sorted({k.world for k in cases})
    why = preflight(ns, worlds)
    if why:
        print(f"sumonce run: {why}", file=sys.stderr)
        return 2
    SIGNALLED.clear()
    old = {s: signal.signal(s, on_signal) for s in INTERRUPT_CODES}
    rows, cluster, t0 = [], None, time.time()
    try:
        try:
            cluster = connect(*cluster_size(ns, cases), getattr(ns, "address", None), *simulated(ns, cases))
        except (ConnectionError, RuntimeError, ValueError) as e:
            where = getattr(ns, "address", None) or os.environ.get("RAY_ADDRESS") or "a private local cluster"
            last = (str(e).strip().splitlines() or [type(e).__name__])[-1][:200]
            print(f"sumonce run: cannot use the Ray cluster ({where}): {last}", file=sys.stderr)
            return 2
        for s in INTERRUPT_CODES:  # NOTE: again: ray.init installs its own (C++) SIGTERM handler
            signal.signal(s, on_signal)
        cluster.watch(lambda dead: f"sumonce run: cluster failure: the Ray cluster's {dead} died; "
                                   f"{len(rows)} of {len(cases)} row(s) finished (not printed)")
        check_interrupt()
        code = run(ns, cases, fault, worlds, rows, cluster)
        check_interrupt()
        return report(ns, rows, time.time() - t0) if code is None else code
    except Interrupted as e:
        name = signal.Signals(e.signum).name
        print(f"sumonce run: interrupted by {name}: {len(rows)} of {len(cases)} row(s) finished "
              "(printed below); the cluster was shut down", file=sys.stderr)
        if rows:
            report(ns, rows, time.time() - t0)
        return INTERRUPT_CODES[e.signum]
    finally:
        if cluster is not None:
            cluster.close()
        for s, h in old.items():
            signal.signal(s, h)


def run(ns, cases, fault, worlds, rows, cluster) -> int | None:
    """The cases on the cluster; an exit code for a failure, None when every case ran."""
    import ray
    from ray.exceptions import RayError

    from .conformance import run_cases
    from .driver import ClusterFailure, NodeFailure, PlacementError, ShardFailure, check_placeable
    from .placement import summary
    from .report import console
    try:
        gpu = use_gpu(ns.device)
        for w, layout in sorted({(k.world, k.layout) for k in cases}):
            try:
                check_placeable(w, gpu, 1, layout)
            except PlacementError as e:
                nnodes = next(k.config.nnodes for k in cases if k.layout == layout)
                raise PlacementError(f"--nnodes {nnodes}, world size {w}: {e}" if len(set(layout)) > 1 else str(e)) from None
        # NOTE: with --json, stdout carries the document alone: the rest goes to stderr
        out = err_console(console) if getattr(ns, "json", False) else console
        out.print(f"{len(cases)} case(s), world size(s) {', '.join(map(str, worlds))}, "
                  f"{'GPU (nccl)' if gpu else 'CPU (gloo)'} shards, Ray {ray.__version__}, "
                  f"on {cluster.describe()}")
        with progress(out, len(cases), bool(ns.sweep)) as advance:
            run_cases(cases, deadline_s=ns.timeout, use_gpu=gpu, fault=fault, on_rows=advance, rows=rows,
                      on_placed=lambda p: p.spans > 1 and out.print(f"world {len(p.layout)} on {p.spans} nodes: {summary(p)}"))
    except PlacementError as e:
        print(f"sumonce run: {e}", file=sys.stderr)
        return 2
    except ClusterFailure as e:
        print(f"sumonce run: cluster failure: {e}; {len(rows)} row(s) finished", file=sys.stderr, flush=True)
        cluster.printed = True
        return 3
    except NodeFailure as e:
        print(f"sumonce run: node failure: {e}; {len(rows)} row(s) finished", file=sys.stderr)
        return 3
    except ShardFailure as e:
        print(f"sumonce run: shard failure: {e}", file=sys.stderr)
        return 3
    except RayError as e:
        last = (str(e).strip().splitlines() or [type(e).__name__])[-1][:200]
        print(f"sumonce run: the Ray cluster failed: {type(e).__name__}: {last}", file=sys.stderr)
        return 3
    return None


class progress:
    """A rich bar on a terminal; elsewhere (job logs, pipes) one plain line per finished batch."""

    def __init__(self, console, total: int, show: bool):
        self.console, self.total, self.show, self.done, self.t0 = console, total, show, 0, time.time()
        self.bar = None

    def __enter__(self):
        if self.show and self.console.is_terminal:
            from rich.progress import Progress
            self.bar = Progress(console=self.console, transient=True).__enter__()
            self.task = self.bar.add_task("cases", total=self.total)
        return self.advance

    def advance(self, n: int) -> None:
        self.done += n
        if self.bar is not None:
            self.bar.advance(self.task, n)
        elif self.show:
            print(f"progress: {self.done}/{self.total} cases, {time.time() - self.t0:.0f} s",
                  file=self.console.file, flush=True)

    def __exit__(self, *exc):
        if self.bar is not None:
            self.bar.__exit__(*exc)
        return False


def err_console(console):
    """Where human-readable lines go when stdout carries the --json document."""
    from rich.console import Console
    return Console(stderr=True, width=console.width)


def report(ns, rows, wall: float) -> int:
    if getattr(ns, "json", False):  # `sumonce repro` has no --json
        import ray
        from sumonce.output import dump
        from .output import run_document
        dump(run_document(rows, wall, use_gpu(ns.device), ray.__version__))
        return 0 if all(r.ok for r in rows) else 1
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
    from .output import per_era
    eras = "; ".join(f"era {e}: {n['rows']} rows, {n['mismatches']} mismatch(es)" for e, n in per_era(rows).items())
    console.print(f"{len(rows)} rows, {len(bad)} mismatch(es), {wall:.1f} s ({eras})")
    return 1 if bad else 0
