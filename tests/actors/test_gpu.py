"""GPU shards (NCCL, flashinfer's fused all-reduce when installed) and the fused-step table's
calibration on real GPUs: skipped without CUDA."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available() or torch.cuda.device_count() < 2,
                                 reason="needs 2 CUDA GPUs")]
ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.ray
def test_gpu_shards_conform_with_the_chosen_fused_step(ray_cluster):
    from sumonce.actors.cases import sweep
    from sumonce.actors.conformance import run_cases
    from sumonce.actors.fused import flashinfer_comm
    from sumonce.actors.fused_table import LABELS
    rows = run_cases(sweep("small", worlds=(2,), models=("qwen3_moe",)), use_gpu=True)
    assert rows and all(r.ok for r in rows), [r.problem for r in rows if not r.ok][:5]
    impls = {r.impl for r in rows}
    failed = sorted(i for i in impls if "flashinfer failed" in i)
    assert not failed, failed
    chosen = {i for i in impls if "table)" in i}
    if flashinfer_comm() is not None:  # installed: the fused rows ran the table's choice
        assert chosen and all(any(i.startswith(label) for label in LABELS.values()) for i in chosen), impls
    else:
        assert not chosen, impls


def _probe(tmp_path, *extra):
    env = dict(os.environ, SUMONCE_CACHE_DIR=str(tmp_path), PYTHONPATH=f"{ROOT}:{os.environ.get('PYTHONPATH', '')}")
    env.pop("SUMONCE_FUSED_TABLE", None)
    return subprocess.run([sys.executable, "bench/fi_probe.py", "--world", "2", "--dtype", "bfloat16", "float32",
                           *extra], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def test_every_variant_checks_and_the_calibration_is_cached(tmp_path):
    pytest.importorskip("flashinfer.comm")
    first = _probe(tmp_path, "--calibrate")
    assert first.returncode == 0, first.stdout[-2000:] + first.stderr[-2000:]
    assert "probe: 0 failed check(s)" in first.stdout
    for variant in ("oneshot", "twoshot"):
        assert f"bfloat16, {variant}" in first.stdout and f"float32, {variant}" in first.stdout
    made = [line for line in first.stdout.splitlines() if line.startswith("table ")]
    assert len(made) == 2 and all(": calibrated;" in line for line in made), made
    files = list((tmp_path / "fused").glob("*.json"))
    assert len(files) == 1
    entries = json.loads(files[0].read_text())["entries"]
    assert {(e["dtype"], e["tokens"]) for e in entries} == {(d, t) for d in ("bfloat16", "float32")
                                                            for t in (1, 2, 4, 8, 16, 32, 64, 128)}
    assert all(e["us"]["unfused"] > 0 and "oneshot" in e["us"] for e in entries)
    again = _probe(tmp_path, "--calibrate")  # a second start-up reads the cache instead of measuring
    assert again.returncode == 0, again.stderr[-2000:]
    read = [line for line in again.stdout.splitlines() if line.startswith("table ")]
    assert all(": cache " in line for line in read) and \
        [line.split("chooses")[1] for line in read] == [line.split("chooses")[1] for line in made], read
