"""The worked example of docs/SPEC.md ("Adding a model site"), step by step; the counterexample
printed is the one the doc shows (its flags and its sentence are read from the doc)."""
import re
from pathlib import Path as FilePath

from sumonce.proto import guards
from sumonce.proto.catalogue import FUSING
from sumonce.proto.sites import Group, Model, Path, Site, Version
from sumonce.spec.check import run_all
from sumonce.spec.properties import exactly_once


def toy_model(legacy_guard):
    """Step 1: describe the model: its decoder's absorbers, its forward variants, its sites."""
    site = Site("toy_moe", "ToyMoE.forward", Path.TP, Group.TP, receives_F=True, receives_R=True,
                guards={Version.LEGACY: legacy_guard, Version.HELPER: guards.helper_tp_fr})
    return Model("toy_moe", ("ToyMoeForCausalLM",), FUSING, ("ToyMoE.forward",), (), (site,))


def toy_guard_without_v(c, F, R):
    """A hand-written guard that forgot DP attention's reduce-scatterv (the #23431 mistake)."""
    return c.tp_size > 1 and not F and not R


def verdicts(model):
    """Step 2: run its exactly-once properties (sumonce prove does this for the catalogue)."""
    return {r.prop.name: r for r in run_all(exactly_once(models=(model,)), timeout_ms=10_000)
            if r.prop.name.startswith("exactly-once")}


def test_a_site_calling_the_helper_sums_exactly_once():
    results = verdicts(toy_model(guards.legacy_full_tp))
    assert results["exactly-once:toy_moe@helper"].passed
    assert results["exactly-once:toy_moe@legacy"].passed


def test_a_guard_that_forgot_v_is_refuted_with_dp_attention_and_ep():
    results = verdicts(toy_model(toy_guard_without_v))
    assert results["exactly-once:toy_moe@helper"].passed
    bad = results["exactly-once:toy_moe@legacy"]
    assert not bad.passed
    cx = bad.counterexample
    assert cx["V"] is True and cx["config"]["enable_dp_attention"]
    assert cx["flags"].startswith("--tp-size") and "--architecture ToyMoeForCausalLM" in cx["flags"]
    assert "summed 2 times" in cx["axes"]
    flags, story = documented_counterexample()
    assert cx["flags"] == flags
    assert cx["axes"].startswith(story)


def documented_counterexample() -> tuple[str, str]:
    """Step 3 of docs/SPEC.md's worked example: the flags and the axis sentence it shows."""
    doc = (FilePath(__file__).resolve().parents[2] / "docs" / "SPEC.md").read_text()
    step = doc[doc.index("### Worked example"):]
    step = " ".join(step[step.index("3. "):].split("\n\n")[0].split())
    flags = re.search(r"refuted with `([^`]+)`", step).group(1)
    story = re.search(r'"([^"]+)"', step).group(1)
    return flags, story
