"""The fault half of bench/adversarial.py: `sumonce run` subprocesses, each on its own private
Ray cluster, faulted from outside (kill -9 of a shard, the raylet, the GCS or the driver; SIGINT,
SIGTERM; SIGSTOP of a shard) or by the --inject-fault hook; sizes SGLang accepts; two runs at once.
Each outcome is "handled" when the run ends as documented (code, message, time, no leftovers)."""
from __future__ import annotations

import importlib.util
import os
import signal
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SWEEP = ["--sweep", "small", "--worlds", "2", "--models", "qwen3_moe,llama4,minimax_m2", "--num-cpus", "2"]
ONE = ["--gpu-arch", "cpu", "--guard-version", "helper"]


def helpers():
    spec = importlib.util.spec_from_file_location("adv_faults", ROOT / "tests/adversarial/test_faults_ray.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def cmd_of(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def faulted(h, name: str, argv: list[str], act, code: int, words: str, within_s: float = 60) -> dict:
    p = h.start(*argv)
    tmp, _ = h.until_progress(p) if act else (None, None)
    pids = h.descendants(p.pid)
    t0 = time.monotonic()
    if act:
        act(p, pids)
    try:
        _, err = p.communicate(timeout=600)
    except Exception:  # noqa: BLE001
        p.kill()
        return {"input": name, "outcome": "hang", "rc": None, "seconds": None, "last": ""}
    took = time.monotonic() - t0
    left = []
    end = time.time() + 30
    while time.time() < end and (h.alive(pids) or (tmp and os.path.exists(tmp))):
        time.sleep(0.5)
    left = h.alive(pids)
    ok = p.returncode == code and words in err and took <= within_s and not left
    kind = "traceback" if "Traceback" in err else "handled" if ok else "wrong code"
    last = err.strip().splitlines()[-1][:160] if err.strip() else ""
    return {"input": name, "outcome": kind, "rc": p.returncode, "seconds": round(took, 1), "last": last,
            "leftovers": len(left)}


def kill_named(part: bytes, sig=signal.SIGKILL):
    def act(p, pids):
        victims = [q for q in pids if cmd_of(q).split(b"\0")[0].endswith(part) or cmd_of(q).startswith(part)]
        os.kill(victims[0], sig)
    return act


def fault_results() -> list[dict]:
    h, out = helpers(), []
    plan = [
        ("inject kill:1", SWEEP + ["--inject-fault", "kill:1"], None, 3, "rank 1 died"),
        ("inject hang:1 (--timeout 10)", SWEEP + ["--inject-fault", "hang:1", "--timeout", "10"], None, 3, "rank 1 did not reach"),
        ("kill -9 a shard (named within 10 s)", SWEEP, kill_named(b"ray::Shard"), 3, "died"),
        ("SIGSTOP a shard (--timeout 15)", SWEEP + ["--timeout", "15"], kill_named(b"ray::Shard", signal.SIGSTOP), 3, "hung"),
        ("SIGINT", SWEEP, lambda p, _: p.send_signal(signal.SIGINT), 130, "interrupted by SIGINT"),
        ("SIGTERM", SWEEP, lambda p, _: p.send_signal(signal.SIGTERM), 143, "interrupted by SIGTERM"),
        ("kill -9 the raylet", SWEEP, kill_named(b"raylet"), 3, "raylet"),
        ("kill -9 the GCS", SWEEP, kill_named(b"gcs_server"), 3, "gcs_server"),
        ("--tp 3", ["--tp", "3", "--num-cpus", "3"] + ONE, None, 0, ""),
        ("--tp 3 --ep 3", ["--tp", "3", "--ep", "3", "--num-cpus", "3"] + ONE, None, 0, ""),
        ("--sweep small --worlds 3", ["--sweep", "small", "--worlds", "3", "--models", "qwen3_moe", "--num-cpus", "3"], None, 0, ""),
    ]
    for name, argv, act, code, words in plan:
        within = 10 if "within 10 s" in name else 60
        out.append(faulted(h, name, argv, act, code, words, within))
        print(f"{out[-1]['outcome']:<10} rc={out[-1]['rc']!s:<4} {name} ({out[-1]['seconds']} s) | {out[-1]['last']}", flush=True)
    out.append(driver_killed(h))
    out.append(concurrent(h))
    for r in out[-2:]:
        print(f"{r['outcome']:<10} rc={r['rc']!s:<4} {r['input']} | {r['last']}", flush=True)
    return out


def driver_killed(h) -> dict:
    p = h.start(*SWEEP)
    tmp, _ = h.until_progress(p)
    pids = h.descendants(p.pid)
    p.kill()
    p.communicate()
    end = time.time() + 30
    while time.time() < end and (h.alive(pids) or os.path.exists(tmp)):
        time.sleep(0.5)
    left = h.alive(pids)
    return {"input": "kill -9 the driver", "outcome": "handled" if not left and not os.path.exists(tmp) else "wrong code",
            "rc": p.returncode, "seconds": None, "last": f"{len(left)} processes left", "leftovers": len(left)}


def concurrent(h) -> dict:
    runs = [h.start("--sweep", "small", "--worlds", "2", "--models", "qwen3_moe", "--num-cpus", "2") for _ in range(2)]
    outs = [p.communicate(timeout=600) for p in runs]
    ok = all(p.returncode == 0 and "0 mismatch(es)" in o for p, (o, _) in zip(runs, outs))
    return {"input": "two sweeps at once", "outcome": "handled" if ok else "wrong code",
            "rc": [p.returncode for p in runs], "seconds": None, "last": ""}
