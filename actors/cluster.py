"""Which Ray cluster a run uses, said explicitly: the one `--address` or RAY_ADDRESS names (as under
`ray job submit`), else a private local cluster with its own temp dir, which no other run can find
or join, and which never outlives this driver (a watchdog process ends it when the driver dies,
even by kill -9). A private cluster may be several simulated nodes (`--simulate-nodes`): one GCS
and one raylet per node on this machine (Ray's own cluster_utils), each node with its own CPUs
(and GPUs) and a custom resource `sumonce_node_<i>`."""
from __future__ import annotations

import logging
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import warnings

SHARD_MEMORY = 300 * 2**20
"""What one CPU shard costs (torch + a Ray worker), measured: a world is refused up front when the
machine's available memory cannot hold this many times its size."""

# The watchdog: while the driver lives, notes every process whose command line names the private
# temp dir (GCS, raylet, ...) and their descendants (agents and workers rename themselves); at EOF
# on stdin (the driver exited, however) it ends every one still running, removes the dir, says
# "ended", and removes the dir again once the driver has exited.
WATCHDOG = r"""
import os, select, shutil, signal, sys, time
tmp, driver, seen = sys.argv[1], int(sys.argv[2]), {}
def ps():
    out = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = f.read()
            with open(f"/proc/{pid}/stat") as f:
                st = f.read().rsplit(")", 1)[1].split()
            out[int(pid)] = (cmd, int(st[1]), st[19])
        except (OSError, IndexError):
            pass
    return out
def collect():
    procs = ps()
    mine = {p for p, (cmd, _, _) in procs.items() if tmp.encode() in cmd and p != os.getpid()}
    mine |= {p for p in seen if p in procs and procs[p][2] == seen[p]}
    grew = True
    while grew:
        kids = {p for p, (_, ppid, _) in procs.items() if ppid in mine} - mine
        mine |= kids
        grew = bool(kids)
    seen.update({p: procs[p][2] for p in mine})
    return mine
while not select.select([sys.stdin], [], [], 0.5)[0]:
    collect()
sys.stdin.buffer.read()
for _ in range(20):
    pids = collect() & set(ps())
    if not pids:
        break
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    time.sleep(0.25)
shutil.rmtree(tmp, ignore_errors=True)
print("ended", flush=True)
for _ in range(600):  # the driver may still write its own logs there while it exits
    try:
        os.kill(driver, 0)
    except OSError:
        break
    time.sleep(0.2)
shutil.rmtree(tmp, ignore_errors=True)
"""


SIMULATED_HEALTH_CHECKS = {"health_check_period_ms": 1000, "health_check_failure_threshold": 5,
                           "health_check_timeout_ms": 3000, "health_check_initial_delay_ms": 5000}
"""Simulated nodes: the GCS marks a node whose raylet died dead after 5 missed checks a second apart
(measured: 9.5 s at a load average of 20; Ray's defaults: 3 s x 5), while a raylet slow on a loaded
machine has 3 s to answer each."""


class Interrupted(BaseException):
    """SIGINT or SIGTERM arrived: stop, keep the rows so far, shut down."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


SIGNALLED: list[int] = []
"""Signals received; the handler only records them (an exception raised inside a Ray call made in
Cython turns into a SystemError), and the driver's wait loops raise Interrupted within a second."""


def on_signal(signum, _frame) -> None:
    SIGNALLED.append(signum)


def check_interrupt() -> None:
    if SIGNALLED:
        raise Interrupted(SIGNALLED[0])


def quiet() -> None:
    warnings.filterwarnings("ignore", message=".*NumPy.*")
    warnings.filterwarnings("ignore", category=UserWarning, module="torch")


def machine_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def available_memory() -> int | None:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def process_gone(pid: int) -> bool:
    """The process has exited (or is a zombie)."""
    try:
        os.kill(pid, 0)
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] == "Z"
    except (OSError, IndexError):
        return True


class Cluster:
    """The connection; `private` when this process started the cluster (and so ends it);
    `simulated`: the cluster_utils cluster of simulated nodes, when it is one."""

    def __init__(self, address: str | None, private: bool, tmp: str | None = None, watchdog=None,
                 simulated=None):
        self.address, self.private, self.tmp, self.watchdog = address, private, tmp, watchdog
        self.simulated = simulated
        self._pids: dict[str, int] = {}
        self.node_raylets: dict[str, int] = {}
        """Simulated nodes but the head: Ray node id -> raylet pid (a node dies with its raylet)."""
        # `reported`: the driver saw the cluster fail (the watch thread gives it longer to end
        # cleanly); `printed`: the driver printed it (the watch thread then stays silent).
        self.reported = self.printed = False

    def describe(self) -> str:
        if self.simulated is not None:
            return f"{1 + len(self.node_raylets)} simulated nodes on this machine ({self.tmp})"
        return f"a private local cluster ({self.tmp})" if self.private else f"the cluster at {self.address}"

    def processes(self) -> dict[str, int]:
        """The private cluster's GCS and (head) raylet: name -> pid (empty for a joined cluster)."""
        if not self.private:
            return {}
        import ray
        # NOTE: Ray keeps no public handle on these
        node = self.simulated.head_node if self.simulated is not None else ray._private.worker._global_node
        out = {}
        for kind, infos in (node.all_processes or {}).items():
            if kind in ("gcs_server", "raylet"):
                out.update({kind: i.process.pid for i in infos})
        return out

    def dead_process(self) -> str | None:
        """The private cluster's GCS or raylet that is no longer running, if one died."""
        for name, pid in self._pids.items():
            if process_gone(pid):
                return f"{name} (pid {pid})"
        return None

    def watch(self, message) -> None:
        """A thread that notices a dead GCS or raylet even while the driver is blocked inside Ray
        (which would wait 60 s, then abort): it gives the driver 5 s to report it, else prints
        `message(dead)` (one line), ends the cluster and exits 3."""
        if not self._pids:
            return
        threading.Thread(target=self._watch, args=(message,), daemon=True, name="sumonce-cluster-watch").start()

    def _watch(self, message) -> None:
        while self.watchdog is not None:
            dead = self.dead_process()
            if dead:
                end = time.monotonic() + 5
                while time.monotonic() < (end + 15 if self.reported else end):
                    if self.watchdog is None:
                        return  # the driver reported it and closed
                    time.sleep(0.2)
                if not self.printed:
                    print(message(dead), file=sys.stderr, flush=True)
                sys.stdout.flush()
                self.watchdog.stdin.close()
                self.watchdog.stdout.readline()
                os._exit(3)
            time.sleep(0.5)

    def close(self) -> None:
        import ray
        if self.private and ray.is_initialized():
            if self.dead_process() is None:
                ray.shutdown()
        if self.simulated is not None and self.dead_process() is None:
            self.simulated.shutdown()
        if self.watchdog is not None:
            self.watchdog.stdin.close()  # the watchdog ends what is left and removes the temp dir
            self.watchdog.stdout.readline()
            self.watchdog = None
        if self in _current:
            _current.remove(self)


def start_watchdog(tmp: str):
    return subprocess.Popen([sys.executable, "-c", WATCHDOG, tmp, str(os.getpid())], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, start_new_session=True)


def reachable(address: str) -> None:
    """ConnectionError (one line) when host:port refuses: ray.init would retry for minutes."""
    m = re.match(r"^(?:ray://)?\[?([^\]/]+?)\]?:(\d+)$", address.strip())
    if not m:
        return
    try:
        socket.create_connection((m.group(1), int(m.group(2))), timeout=5).close()
    except OSError as e:
        raise ConnectionError(f"{address} does not answer ({e.strerror or e})") from None


def connect(num_cpus: int, address: str | None = None, simulate_nodes: int = 0, gpus_per_node: int = 0) -> Cluster:
    """Join `address` (or RAY_ADDRESS), or start a private cluster of `num_cpus` CPUs; with
    `simulate_nodes`, of that many simulated nodes of `num_cpus` CPUs (and `gpus_per_node` GPUs) each."""
    import ray
    if ray.is_initialized():  # an embedding program (or a test) connected already
        return Cluster("(this process's)", False)
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    # NOTE: the driver names the failed rank itself; Ray would also print every other rank's
    # collective error (connection reset, timeout) as an "unhandled error" when its ref is dropped
    os.environ.setdefault("RAY_IGNORE_UNHANDLED_ERRORS", "1")
    address = None if simulate_nodes else address or os.environ.get("RAY_ADDRESS")
    if address:
        reachable(address)
        # NOTE: WARNING: Ray's INFO lines on connecting would precede a one-line error on stderr
        ray.init(address=address, log_to_driver=False, namespace=f"sumonce-{os.getpid()}",
                 logging_level=logging.WARNING)
        _current.append(Cluster(address, False))
        return _current[-1]
    # NOTE: short: Ray's socket paths under the temp dir have a length limit
    tmp = tempfile.mkdtemp(prefix="sumonce-ray-", dir="/tmp")
    watchdog = start_watchdog(tmp)
    cluster = Cluster(None, True, tmp, watchdog)
    env = {"env_vars": {"PYTHONWARNINGS": "ignore"}}
    try:
        if simulate_nodes:
            from .simulate import start
            try:
                cluster.simulated = start(simulate_nodes, num_cpus, gpus_per_node, tmp)
            except Exception as e:  # noqa: BLE001 (Ray raises a bare Exception when a node is slow to start)
                raise RuntimeError(f"{simulate_nodes} simulated nodes did not start: {e}") from None
            cluster.address = cluster.simulated.address
            ray.init(address=cluster.address, log_to_driver=False, runtime_env=env, namespace="sumonce",
                     logging_level=logging.WARNING)
            cluster.node_raylets = {n.node_id: n.all_processes["raylet"][0].process.pid
                                    for n in cluster.simulated.worker_nodes}
        else:
            ray.init(num_cpus=num_cpus, include_dashboard=False, log_to_driver=False, _temp_dir=tmp,
                     runtime_env=env, namespace="sumonce")
    except BaseException:
        cluster.close()
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    cluster._pids = cluster.processes()
    _current.append(cluster)
    return cluster


_current: list[Cluster] = []


def current() -> Cluster | None:
    """The cluster `connect` made in this process (None when it was not called)."""
    return _current[-1] if _current else None
