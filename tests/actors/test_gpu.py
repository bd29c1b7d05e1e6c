"""GPU shards (NCCL, flashinfer's fused all-reduce when installed): skipped without CUDA."""
import pytest
import torch

pytestmark = [pytest.mark.gpu, pytest.mark.ray,
              pytest.mark.skipif(not torch.cuda.is_available() or torch.cuda.device_count() < 2,
                                 reason="needs 2 CUDA GPUs")]


def test_gpu_shards_conform_with_fusion(ray_cluster):
    from sumonce.actors.cases import sweep
    from sumonce.actors.conformance import run_cases
    rows = run_cases(sweep("small", worlds=(2,), models=("qwen3_moe",)), use_gpu=True)
    assert rows and all(r.ok for r in rows), [r.problem for r in rows if not r.ok][:5]
    impls = {r.impl for r in rows}
    failed = sorted(i for i in impls if "flashinfer failed" in i)
    assert not failed, failed
    from sumonce.actors.fused import flashinfer_comm
    if flashinfer_comm() is not None:  # installed: the fused rows must have run its kernel
        assert "flashinfer" in impls, impls
    else:
        assert "flashinfer" not in impls, impls
