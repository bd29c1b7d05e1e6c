"""Send bad and edge inputs (and, with --faults, faults) to `sumonce` as a hostile user would, each
in its own process, and classify each outcome as issue 15 did:

    clean      exit 2 and one line on stderr (the refusal)
    handled    the documented outcome of an input that is not refused (an expected exit code and
               message: a configuration SGLang accepts that runs, an unread audit file, a fault)
    accepted   exit 0 where a refusal was expected (wrongly accepted)
    wrong code another exit code (or a clean-looking refusal on more than one line)
    traceback  "Traceback" on stderr
    hang       no exit within the limit

    PYTHONPATH=. python bench/adversarial.py [--faults] [--json OUT]
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RUN = ["--gpu-arch", "cpu"]  # after "run"
RAY_NOISE = ("Started a local Ray instance", "(raylet)", "INFO worker.py")


def audit_builders():
    spec = importlib.util.spec_from_file_location("adv_audit", ROOT / "tests/adversarial/test_audit_reading.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def repro_files(tmp: Path) -> list[tuple[str, list[str], str | int]]:
    good = {"model": "qwen3_moe", "variant": "Qwen3MoeSparseMoeBlock.forward_normal", "version": "helper",
            "config": {"tp_size": 2, "ep_size": 2, "gpu_arch": "cpu"}, "state": {"num_tokens": 3}}

    def with_(part, key, value):
        d = json.loads(json.dumps(good))
        if key is None:
            d[part] = value
        else:
            d[part][key] = value
        return json.dumps(d)
    texts = {"number": "5", "string": '"x"', "null": "null", "list": "[]", "config-list": with_("config", None, []),
             "state-null": with_("state", None, None), "model-int": with_("model", None, 5),
             "missing-keys": '{"model": "qwen3_moe"}', "deep": "[" * 100000 + "]" * 100000,
             "digits": '{"a": ' + "9" * 5000 + "}", "tp-1e30": with_("config", "tp_size", 10**30),
             "tokens-neg": with_("state", "num_tokens", -1), "tokens-huge": with_("state", "num_tokens", 10**6),
             "scattered-no-flag": with_("state", "attn_tp_input_scattered", True),
             "unknown-field": with_("config", "nope", 1), "bad-enum": with_("config", "gpu_arch", "SM90"),
             "bad-version": with_("version", None, "v9"), "bad-model": with_("model", None, "gpt5"),
             "bool-size": with_("config", "tp_size", True), "not-json": "{", "empty": ""}
    out = []
    for name, text in texts.items():
        p = tmp / f"{name}.json"
        p.write_text(text)
        out.append((f"repro {name}", ["repro", str(p)], 2))
    bad = tmp / "latin1.json"
    bad.write_bytes(b"\xff\xfe{}")
    fifo = tmp / "fifo.json"
    os.mkfifo(fifo)
    out += [("repro non-UTF-8", ["repro", str(bad)], 2), ("repro FIFO", ["repro", str(fifo)], 2),
            ("repro missing file", ["repro", str(tmp / "none.json")], 2), ("repro a directory", ["repro", str(tmp)], 2)]
    return out


def input_cases(tmp: Path) -> list[tuple[str, list[str], str | int]]:
    """(name, argv, expected): 2 = refused; an int = that exit code with the run handled."""
    blocker = tmp / "file"
    blocker.write_text("")
    cases = [(f"prove {' '.join(a)}", ["prove", *a], 2) for a in (
        ["--only", ""], ["--only", "   "], ["--jobs", "0"], ["--jobs", "-1"], ["--timeout-ms", "0"],
        ["--counterexamples", str(blocker / "sub")], ["--timeout", "5"], ["--no-known"], ["--only", "nothing*"],
        ["--jobs", "x"], ["extra"])]
    runs = [["--sweep", "small", "--worlds", w] for w in ("0", "-2", "a", "2,,4", "", "4096")]
    runs += [RUN + ["--tp", "2", "--timeout", t] for t in ("nan", "inf", "-5", "0", "x")]
    runs += [RUN + ["--tp", "2", "--seed", s] for s in (str(10**30), "-1", "x")]
    runs += [RUN + ["--tp", "2", "--num-tokens", n] for n in (str(10**30), "-1", "100000")]
    runs += [RUN + ["--tp", "2", "--inject-fault", f] for f in ("kill:9", "hang:2", "explode:1", "kill:", "kill:-1")]
    runs += [RUN + [a, "4"] for a in ("--tp-s", "--world", "--ep-si", "--num-tok")]
    runs += [["--sweep", "small", "--models", m] for m in ("", ",", "qwen3_moe,", "gpt5")]
    runs += [RUN + ["--world-size", "0"], RUN + ["--tp", "2", "--num-cpus", "0"], RUN + ["--tp", str(2**40)],
             RUN + ["--tp", "1048576", "--ep", "1048576"], RUN + ["--tp", "0"], RUN + ["--tp", "4", "--ep", "3"],
             RUN + ["--tp", "2", "--guard-version", "v9"], RUN + ["--tp", "2", "--variant", "nope"],
             RUN + ["--tp", "2", "--device", "tpu"], ["--sweep", "huge"], RUN + ["--tp", "-4"],
             RUN + ["--tp", "2", "--attn-cp-size", "2"], RUN + ["--tp", "2", "--moe-a2a-backend", "deepep"]]
    cases += [(f"run {' '.join(a)}", ["run", *a], 2) for a in runs]
    configs = [["--moe-runner-backend", v] for v in ("AUTO", "Triton", "")]
    configs += [["--quantization", v] for v in ("FP8", "Fp8", "", "MODELOPT_FP4")]
    configs += [["--speculative-algorithm", v] for v in ("eagle", "Eagle", "")]
    configs += [["--moe-a2a-backend", v] for v in ("DEEPEP", "")] + [["--gpu-arch", "SM90"],
                ["--dp-padding-mode", "MAX_LEN"], ["--tp-s", "4"], ["--tp", str(10**30)], ["--tp", "0"],
                ["--tp", "4", "--ep", "3"], ["--model", "gpt5"], ["--num-tokens", "-1"], ["--bogus"]]
    cases += [(f"config {' '.join(a)}", ["config", *a], 2) for a in configs]
    cases += [("config EAGLE (SGLang's spelling)", ["config", "--speculative-algorithm", "EAGLE", "--tp", "2"], 0)]
    cases += [("demo --bogus", ["demo", "--bogus"], 2), ("version --bogus", ["version", "--bogus"], 2),
              ("version extra", ["version", "x"], 2), ("unknown command", ["nope"], 2)]
    cases += [(f"audit {' '.join(a)}", ["audit", *a], 2) for a in (
        ["--compare", "A", "B", "C"], ["--compare", "A", "B", "--sarif", "x.sarif"], ["--sar", "x"], [],
        ["/no/such"], [str(blocker)], ["sglang0.5.11"], [str(tmp)])]
    return cases + repro_files(tmp)


def audit_cases(tmp: Path) -> list[tuple[str, list[str], str | int]]:
    mod, out = audit_builders(), []
    for i, make in enumerate(mod.BAD):
        root = mod.tree(tmp / f"t{i}")
        make(root / mod.MODELS)
        out.append((f"audit tree: {make.__name__}", ["audit", str(root)], 4))
    for kind in ("corrupt", "encrypted", "method"):
        (tmp / kind).mkdir()
        out.append((f"audit wheel: {kind} entry", ["audit", str(mod.wheel(tmp / kind, kind))], 4))
    return out


def env(**extra) -> dict:
    e = dict(os.environ, PYTHONPATH=str(ROOT), RAY_AUTH_MODE="disabled", PYTHONWARNINGS="ignore", **extra)
    e.pop("RAY_ADDRESS", None)
    return e


def classify(rc, err: str, expected) -> str:
    if rc is None:
        return "hang"
    if "Traceback" in err:
        return "traceback"
    lines = [ln for ln in err.splitlines() if ln.strip() and not any(n in ln for n in RAY_NOISE)]
    if expected == 2:
        if rc == 2:
            return "clean" if len(lines) == 1 else "wrong code"
        return "accepted" if rc == 0 else "wrong code"
    return "handled" if rc == expected else "wrong code"


def run_one(argv, expected, limit_s: float, extra_env=None) -> tuple[str, int | None, str]:
    p = subprocess.Popen([sys.executable, "-m", "sumonce.cli", *argv], cwd=ROOT, env=env(**(extra_env or {})),
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        _, err = p.communicate(timeout=limit_s)
        rc = p.returncode
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        _, err = p.communicate()
        rc = None
    end_strays()
    return classify(rc, err, expected), rc, err.strip().splitlines()[-1][:160] if err.strip() else ""


def end_strays() -> None:
    """Processes a run left under RAY_TMPDIR, and their descendants (set RAY_TMPDIR when measuring
    code that leaks them, so that nothing else on the machine is touched)."""
    mark = os.environ.get("RAY_TMPDIR", "").encode()
    if not mark:
        return
    parent, marked = {}, set()
    for d in Path("/proc").iterdir():
        try:
            if d.name.isdigit():
                parent[int(d.name)] = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
                if mark in (d / "cmdline").read_bytes():
                    marked.add(int(d.name))
        except (OSError, IndexError):
            pass
    grew = True
    while grew:
        kids = {p for p, pp in parent.items() if pp in marked} - marked
        marked |= kids
        grew = bool(kids)
    for pid in marked - {os.getpid()}:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0], allow_abbrev=False)
    ap.add_argument("--faults", action="store_true", help="also the Ray faults (minutes each on 2 cores)")
    ap.add_argument("--only-faults", action="store_true", help="the Ray faults alone")
    ap.add_argument("--json", help="write every outcome here")
    ap.add_argument("--limit", type=float, default=60, help="seconds before an input counts as a hang")
    ap.add_argument("--exclude", action="append", default=[],
                    help="skip inputs whose name contains this (e.g. oversized worlds on code that spawns them)")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="sumonce-adv-"))
    cases = [] if args.only_faults else input_cases(tmp) + audit_cases(tmp)
    if not args.only_faults:
        cases.append(("audit with an uncreatable SUMONCE_CACHE", ["audit", "sglang==0.0.1"], 2))
    results = []
    for name, argv, expected in cases:
        if any(x in name for x in args.exclude):
            continue
        extra = {"SUMONCE_CACHE": str(tmp / "file" / "cache")} if "SUMONCE_CACHE" in name else None
        t0 = time.time()
        kind, rc, last = run_one(argv, expected, args.limit, extra)
        results.append({"input": name, "outcome": kind, "rc": rc, "seconds": round(time.time() - t0, 1), "last": last})
        print(f"{kind:<10} rc={rc!s:<4} {name}  | {last}", flush=True)
    if args.faults or args.only_faults:
        from bench.adversarial_faults import fault_results
        results += fault_results()
    tally = {}
    for r in results:
        tally[r["outcome"]] = tally.get(r["outcome"], 0) + 1
    print(f"\n{len(results)} inputs: " + ", ".join(f"{n} {k}" for k, n in sorted(tally.items())))
    if args.json:
        Path(args.json).write_text(json.dumps({"tally": tally, "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
