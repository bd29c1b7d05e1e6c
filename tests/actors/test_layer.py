"""The layer's math in one process: shards sum to the reference, FP4 emulation, routing."""
import pytest
import torch

from sumonce.actors import layer as L
from sumonce.actors.cases import Case
from sumonce.actors.reference import reference
from sumonce.proto.config import ForwardState, MoeRunnerBackend, Quantization, ServerConfig
from sumonce.proto.sites import Version


@pytest.mark.parametrize("world,ep", [(2, 1), (2, 2), (4, 1), (4, 2), (4, 4)])
@pytest.mark.parametrize("shared", [False, True])
def test_shards_sum_to_the_unsharded_layer(world, ep, shared):
    w = L.make_weights(3)
    x, _ = L.make_tokens(3, 0, 9)
    ids, weights = L.route(x, w.router)
    full = L.routed_experts(x, ids, weights, w.w1, w.w3, w.w2, 0)
    if shared:
        full = full + L.shared_expert(x, w.ws1, w.ws3, w.ws2)
    parts = [L.shard_output(x, w.router, L.shard_weights(w, ep, world // ep, world, r), shared)
             for r in range(world)]
    assert torch.allclose(sum(parts), full, atol=1e-5)
    assert not torch.allclose(parts[0], full, atol=1e-3)  # a single shard is only a partial


def test_grouped_experts_match_a_dense_loop():
    w = L.make_weights(1)
    x, _ = L.make_tokens(1, 0, 6)
    ids, weights = L.route(x, w.router)
    got = L.routed_experts(x, ids, weights, w.w1, w.w3, w.w2, 0)
    want = torch.zeros_like(x)
    for t in range(x.shape[0]):
        for k in range(L.TOP_K):
            e = ids[t, k]
            h = torch.nn.functional.silu(x[t] @ w.w1[e]) * (x[t] @ w.w3[e])
            want[t] += weights[t, k] * (h @ w.w2[e])
    assert torch.allclose(got, want, atol=1e-5)


def test_fake_fp4_is_on_the_e2m1_grid_and_close():
    x, _ = L.make_tokens(0, 0, 4)
    q = L.fake_fp4(x)
    blocks, qb = x.reshape(4, -1, 16), q.reshape(4, -1, 16)
    scale = blocks.abs().amax(-1, keepdim=True) / 6
    grid = torch.tensor(L.FP4_VALUES)
    assert ((qb / scale).abs().unsqueeze(-1) - grid).abs().min(-1).values.max() < 1e-4
    assert (q - x).abs().max() < 0.5 and not torch.equal(q, x)


def test_reference_quantises_only_on_the_fp4_path():
    s = ForwardState(num_tokens=3)
    plain = ServerConfig(tp_size=2, dp_size=2, ep_size=2, enable_dp_attention=True)
    fp4 = ServerConfig(tp_size=2, dp_size=2, ep_size=2, enable_dp_attention=True,
                       moe_runner_backend=MoeRunnerBackend.FLASHINFER_CUTLASS,
                       quantization=Quantization.MODELOPT_FP4)
    w = L.make_weights(0)
    a = reference(Case("qwen3_moe", "Qwen3MoeSparseMoeBlock.forward_normal", Version.HELPER, plain, s), w)
    b = reference(Case("qwen3_moe", "Qwen3MoeSparseMoeBlock.forward_normal", Version.HELPER, fp4, s), w)
    assert a.full.shape == b.full.shape == (3 + 6, L.HIDDEN)
    assert not torch.allclose(a.full, b.full, atol=1e-4)
    assert torch.allclose(sum(a.partials), a.full, atol=1e-5)
