"""The measurement on synthetic traces: it must tell the EP axis from the MoE-TP axis even when
both groups have the same size (a double sum looks the same in the final output)."""
import torch

from sumonce.actors.cases import Case
from sumonce.actors.measure import measure
from sumonce.actors.reference import Reference
from sumonce.proto.config import ForwardState, ServerConfig
from sumonce.proto.layout import summing_group
from sumonce.proto.sites import Version


def fake(world, moe_tp, steps):
    """Partials per rank, then each step sums over the given axes."""
    g = torch.Generator().manual_seed(0)
    parts = [torch.randn(3, 8, generator=g) for _ in range(world)]
    ids = torch.arange(3)
    traces = [[{"step": "experts", "src": None, "ids": ids, "values": p}] for p in parts]
    cur = parts
    for axes in steps:
        nxt = []
        for r in range(world):
            nxt.append(sum(cur[q] for q in summing_group(r, axes, world, moe_tp)))
        cur = nxt
        for r in range(world):
            traces[r].append({"step": str(axes), "src": torch.arange(3), "ids": ids, "values": cur[r],
                              "axes": axes})
    ref = Reference(sum(parts), parts, torch.zeros(3, 8), torch.zeros(3, 8))
    return traces, ref


def case(world, ep):
    return Case("qwen3_moe", "x", Version.HELPER, ServerConfig(tp_size=world, ep_size=ep), ForwardState())


def test_ep_twice_is_not_moe_tp_twice():
    for steps, want in (([("ep",), ("ep",), ("moe_tp",)], (2, 1)), ([("ep",), ("moe_tp",), ("moe_tp",)], (1, 2)),
                        ([("ep", "moe_tp")], (1, 1)), ([("ep",)], (1, 0)), ([], (0, 0))):
        traces, ref = fake(4, 2, steps)
        got = measure(case(4, 2), traces, ref)
        assert (got.ep, got.moe_tp) == want and got.problem is None
        assert (got.max_err < 1e-5) == (want == (1, 1))


def test_indistinguishable_sums_are_attributed_only_where_the_numbers_allow():
    traces, ref = fake(4, 2, [("ep", "moe_tp"), ("moe_tp",)])
    got = measure(case(4, 2), traces, ref)
    assert (got.ep, got.moe_tp, got.tie_broken) == (1, 2, 1)
    for t in traces:
        t[2]["axes"] = ("ep", "moe_tp")  # a claim the numbers contradict (that would be x4)
    assert "explain" in measure(case(4, 2), traces, ref).problem


def test_size_one_axis_is_not_measured():
    traces, ref = fake(2, 1, [("ep",)])
    got = measure(case(2, 2), traces, ref)
    assert (got.ep, got.moe_tp) == (1, None)


def test_unexplained_step_is_a_problem():
    traces, ref = fake(2, 1, [("ep",)])
    traces[1][1]["values"] = traces[1][1]["values"] * 3
    assert "explain" in measure(case(2, 2), traces, ref).problem


def test_a_sum_over_different_tokens_is_measured_as_mixing():
    """Two ranks holding different tokens (DP attention without a gather) all-reduce: the numbers
    are one sum per row position, the ids say it added different tokens."""
    g = torch.Generator().manual_seed(1)
    parts = [torch.randn(3, 8, generator=g) for _ in range(2)]
    own = [torch.arange(3), torch.arange(3, 6)]
    summed = parts[0] + parts[1]
    traces = [[{"step": "experts", "src": None, "ids": own[r], "values": parts[r]},
               {"step": "site", "src": torch.arange(3), "ids": own[r], "values": summed, "axes": ("ep",)}]
              for r in range(2)]
    ref = Reference(torch.cat(parts), parts, torch.zeros(6, 8), torch.zeros(6, 8))
    ref.partials = [torch.cat([parts[0], parts[0]]), torch.cat([parts[1], parts[1]])]
    got = measure(case(2, 2), traces, ref)
    assert got.ep == 1 and got.mixes and got.mixed_steps == ["site"]
    aligned = [[dict(traces[r][0], ids=torch.arange(3)), dict(traces[r][1], ids=torch.arange(3))] for r in range(2)]
    assert not measure(case(2, 2), aligned, ref).mixes
