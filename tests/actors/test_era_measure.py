"""The experts call measured as a sum (no Ray): where every rank computed more than its shard
(dwdp's every expert on own rows) its output is a sum of the reference's shard partials, counted
from the numbers; anything else that is not the shard's partial is still a problem."""
import torch

from sumonce.actors.cases import Case
from sumonce.actors.measure import measure
from sumonce.actors.reference import Reference
from sumonce.proto.config import ForwardState, ServerConfig
from sumonce.proto.eras import Era
from sumonce.proto.layout import summing_group


def traces_of(world, moe_tp, experts_axes, then=()):
    g = torch.Generator().manual_seed(1)
    parts = [torch.randn(3, 8, generator=g) for _ in range(world)]
    ids = torch.arange(3)
    first = [sum(parts[q] for q in summing_group(r, experts_axes, world, moe_tp)) for r in range(world)]
    traces = [[{"step": "experts", "src": None, "ids": ids, "values": first[r], "axes": experts_axes}]
              for r in range(world)]
    cur = first
    for axes in then:
        cur = [sum(cur[q] for q in summing_group(r, axes, world, moe_tp)) for r in range(world)]
        for r in range(world):
            traces[r].append({"step": str(axes), "src": torch.arange(3), "ids": ids, "values": cur[r], "axes": axes})
    return traces, Reference(sum(parts), parts, torch.zeros(3, 8), torch.zeros(3, 8))


def case(world, ep):
    return Case("qwen3_moe", "b", None, ServerConfig(tp_size=world, ep_size=ep), ForwardState(), era=Era.V0_5_23)


def test_a_complete_experts_output_is_counted_as_its_sum():
    traces, ref = traces_of(4, 1, ("ep",))
    got = measure(case(4, 4), traces, ref)
    assert got.problem is None and (got.ep, got.moe_tp) == (1, None) and got.steps == [("experts", ("ep",))]
    assert got.max_err < 1e-5


def test_summed_again_after_a_complete_experts_output_is_a_double():
    traces, ref = traces_of(4, 1, ("ep",), then=[("ep",)])
    got = measure(case(4, 4), traces, ref)
    assert got.problem is None and got.ep == 2 and got.max_err > 1e-2


def test_the_usual_shard_partial_counts_nothing():
    traces, ref = traces_of(4, 2, (), then=[("ep", "moe_tp")])
    got = measure(case(4, 2), traces, ref)
    assert got.problem is None and (got.ep, got.moe_tp) == (1, 1) and got.steps == [("('ep', 'moe_tp')", ("ep", "moe_tp"))]


def test_an_experts_output_that_is_no_sum_of_partials_is_a_problem():
    traces, ref = traces_of(4, 1, ("ep",))
    traces[2][0]["values"] = traces[2][0]["values"] * 1.5
    assert measure(case(4, 4), traces, ref).problem == "rank 2: experts output differs from the reference shard"
