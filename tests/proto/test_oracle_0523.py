"""SGLang's own unit tests as an oracle for proto's 0.5.23 era.

Source: sgl-project/sglang, test/registered/unit/layers/moe/test_moe_output_reduction.py; the 21
cases are recorded in docs/eras.json (`oracle.cases`, each with the versions of that test file it
is in, by length: 4956 = ebbdfc88 (pre-0.5.21), 12816 = 49b5e76e (0.5.21), 9375 = the version
whose context flags fit 0.5.22/0.5.23, 17530 = a later main). SGLang's fixture: tp_size 2,
tp_rank 0, dwdp 1, a2a none, Q and V false, context flags false; its patched predicates become
real configurations here (Q: tp = dp = ep = 2, DP attention, modelopt_fp4, flashinfer_cutlass;
V: tp = dp = ep = 2, DP attention), each validated.

- A case in the 9375 version is the 0.5.23 era's: proto must give SGLang's expected outcome.
  One of them, test_fp4_allgather_only_completes_the_tp_sum, contradicts the 0.5.22 and 0.5.23
  wheels (utils.py:771: Q completes the EP path too). proto follows the wheel; the case asserts
  the wheel's outcome AND that SGLang's expectation differs from it, read from the wheel.
- A case only in other versions cannot be posed to 0.5.23 as written (its context flag
  fuse_mlp_allreduce does not exist there, runtime_context.py:695), or states an older era's rule
  (V as a skip term, pre-0.5.21): the test shows which, and what the 0.5.23 era does instead.
"""
import json
import zipfile
from pathlib import Path

import pytest

from sumonce.proto import boundary as b
from sumonce.proto.config import MoeA2ABackend, ServerConfig
from sumonce.proto.eras import Era, accepts
from sumonce.proto.validation import validate

ROOT = Path(__file__).resolve().parents[2]
CASES = json.loads((ROOT / "docs" / "eras.json").read_text())["oracle"]["cases"]
SOURCE = "sgl-project/sglang test/registered/unit/layers/moe/test_moe_output_reduction.py"
ERA_VERSION = "9375"
CONTRADICTED = "test_fp4_allgather_only_completes_the_tp_sum"
DP2 = dict(tp_size=2, dp_size=2, ep_size=2, enable_dp_attention=True)


def case_id(case) -> str:
    inputs = ",".join(f"{k}={v}" for k, v in case["inputs"].items() if k not in ("routed", "shared"))
    return f"{case['class']}.{case['test']}[{inputs or 'defaults'}]"


def configuration(inputs: dict) -> ServerConfig:
    """SGLang's fixture with the case's patches, as a configuration SGLang accepts."""
    kw = dict(tp_size=inputs.get("tp_size", 2))
    if inputs.get("fp4_allgather"):
        kw.update(DP2, quantization="modelopt_fp4", moe_runner_backend="flashinfer_cutlass")
    if inputs.get("reduce_scatterv"):
        kw.update(DP2)
    if "backend" in inputs:
        kw.update(moe_a2a_backend=MoeA2ABackend(inputs["backend"]), ep_size=kw["tp_size"])
        if inputs["backend"] == "flashinfer":
            kw.update(moe_runner_backend="flashinfer_cutlass")
        if inputs["backend"] == "pplx":  # pplx needs DP attention, dp >= 2 (proto.eras.pplx_accepted)
            kw.update(DP2)
    if "dwdp_size" in inputs:  # as handle_dwdp resolves it: DP attention, ep = dwdp (proto.eras.dwdp_accepted)
        kw.update(DP2, dwdp_size=inputs["dwdp_size"])
    c = validate(ServerConfig(**kw))
    assert accepts(Era.V0_5_23, c)
    return c


def outcome(case) -> dict:
    """What proto's 0.5.23 era says for each quantity the case expects."""
    inputs = case["inputs"]
    c = configuration(inputs)
    ctx = b.ForwardContext(mlp_reduce_scatter=inputs.get("ctx.mlp_reduce_scatter", False))
    assert bool(inputs.get("fp4_allgather")) == b.should_use_flashinfer_cutlass_moe_fp4_allgather(c)
    # NOTE: SGLang's fixture patches dwdp_size alone; a layout SGLang resolves for dwdp (tp = attn_dp
    # = ep, DP attention) also has V, which the helper no longer reads (0.5.23 utils.py:785-794).
    assert (bool(inputs.get("reduce_scatterv")) or "dwdp_size" in inputs) == b.should_use_dp_reduce_scatterv(c)
    ranks = range(c.tp_size)
    adds = {f"rank{r}": b.should_add_replicated_moe_output(c, ctx, r) for r in ranks}
    routed, shared = inputs.get("routed", [0.0] * c.tp_size), inputs.get("shared", 0.0)
    values = [routed[r] + (shared if adds[f"rank{r}"] else 0.0) for r in ranks]
    got = {"tp_all_reduces": int(b.reduce_moe_output_runs(c, ctx)),
           "complete_tp": b.post_experts_output_is_complete(c, is_tp_path=True),
           "complete_ep": b.post_experts_output_is_complete(c, is_tp_path=False),
           "adds": adds, "sum_over_ranks": sum(values)}
    if c.tp_size > 1:
        got["rank1_output"] = values[1]
    return {k: got[k] for k in case["expect"]}


ERA_CASES = [c for c in CASES if ERA_VERSION in c["versions"]]
OTHER_CASES = [c for c in CASES if ERA_VERSION not in c["versions"]]


def test_the_oracle_has_21_cases_17_of_them_0_5_23s():
    assert len(CASES) == 21 and len(ERA_CASES) == 17 and len(OTHER_CASES) == 4


@pytest.mark.parametrize("case", [c for c in ERA_CASES if c["test"] != CONTRADICTED], ids=case_id)
def test_sglang_case_holds_in_the_0_5_23_era(case):
    """From SOURCE (version 9375 and the others listed in the case): proto gives SGLang's outcome."""
    assert outcome(case) == case["expect"], f"{case_id(case)} from {SOURCE} ({', '.join(case['versions'])})"


def test_fp4_allgather_case_contradicts_the_wheel():
    """SGLang's test expects Q to leave the EP sum owed (complete_ep False, in every version of the
    test file); the 0.5.22/0.5.23 wheels return True for either path (utils.py:771, no is_tp_path
    test before it). proto follows the wheel; the test's expectation is shown to differ."""
    (case,) = [c for c in ERA_CASES if c["test"] == CONTRADICTED]
    assert case["expect"] == {"complete_ep": False}
    assert case["disagrees_with"]["releases"] == ["0.5.22", "0.5.23"]
    assert outcome(case) == {"complete_ep": True}, "proto follows the 0.5.23 wheel"
    wheel = next((Path.home() / ".cache" / "sumonce" / "sglang").glob("sglang-0.5.23-*.whl"))
    with zipfile.ZipFile(wheel) as z:
        lines = z.read("sglang/srt/layers/moe/utils.py").decode().splitlines()
    assert "should_use_flashinfer_cutlass_moe_fp4_allgather()" in lines[770]
    assert "return True" in "\n".join(lines[771:781])
    assert "is_tp_path" not in "\n".join(lines[768:781])


@pytest.mark.parametrize("case", OTHER_CASES, ids=case_id)
def test_case_of_another_version_of_the_test_file(case):
    """Not in the 0.5.23 version of the file: show why it cannot be asked of this era as written."""
    if any(k == "ctx.fuse_mlp_allreduce" for k in case["inputs"]):
        # 0.5.21's and a later main's context flag: 0.5.23's context has no fusion flag.
        assert "fuse_mlp_allreduce" not in b.ForwardContext.__dataclass_fields__
        assert set(case["versions"]) <= {"4956", "12816", "17530"}
        return
    # The pre-0.5.21 rule: V alone skips (ebbdfc88). In 0.5.23 V left the helper (difference
    # v_leaves_helper): reduce_moe_output all-reduces, the boundary's reduce-scatterv owns V.
    assert case["versions"] == ["4956"] and case["inputs"] == {"reduce_scatterv": True}
    assert case["expect"] == {"tp_all_reduces": 0, "complete_tp": False}
    assert outcome(case) == {"tp_all_reduces": 1, "complete_tp": False}
