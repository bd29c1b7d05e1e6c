"""Conformance on sizes SGLang accepts (issue 15): the test layer is sized from the world, so a TP
group of 3 or 16 shards the experts and columns exactly (no dropped columns, no assertion)."""
import pytest
import torch

from sumonce.actors.cases import Case
from sumonce.actors.layer import layer_dims, make_weights
from sumonce.actors.reference import reference
from sumonce.proto.config import ForwardState, GpuArch, ServerConfig
from sumonce.proto.sites import Version


@pytest.mark.parametrize("tp,ep", [(3, 1), (3, 3), (6, 2), (16, 16), (16, 4), (12, 3)])
def test_the_shards_partials_sum_to_the_whole_layer(tp, ep):
    c = ServerConfig(tp_size=tp, ep_size=ep, architecture="Qwen3MoeForCausalLM", gpu_arch=GpuArch.CPU)
    case = Case("qwen3_moe", "Qwen3MoeSparseMoeBlock.forward_normal", Version.HELPER, c, ForwardState(num_tokens=5))
    ref = reference(case, make_weights(0, world=tp))
    assert len(ref.partials) == tp
    torch.testing.assert_close(sum(ref.partials), ref.full, atol=1e-4, rtol=1e-4)


def test_dims_divide_for_every_layout_of_the_world():
    for world in range(1, 65):
        E, I, S = layer_dims(world)
        assert E % world == 0 and I % world == 0 and S % world == 0 and E >= 8
