"""The actors' --era option and the 0.5.23 era's cases (no Ray): which eras run, what a single run
defaults to, that the sweep covers both eras and every step of the 0.5.23 exit, and that what the
actors cannot run honestly on gloo stays out with its reason."""
from collections import Counter

import pytest

from sumonce.actors.cases import sweep
from sumonce.actors.eras import DEFAULT_ERA, RUN_ERAS, predicted
from sumonce.actors.run import main, parse
from sumonce.proto import boundary, models_0523
from sumonce.proto.boundary import Exit
from sumonce.proto.config import BoundaryReduction, MoeA2ABackend
from sumonce.proto.eras import Era
from sumonce.proto.models_0523 import SumsAt


@pytest.fixture(scope="module")
def cases_0523():
    return sweep("small", eras=(Era.V0_5_23,))


@pytest.mark.parametrize("argv,words", [
    (["--era", "0.5.16"], "no layer semantics in proto for that era yet"),
    (["--era", "0.5.10.post1", "--sweep", "small"], "the actors run 0.5.11, 0.5.23"),
    (["--era", "1.0"], "unknown --era '1.0'; the actors run the eras with layer semantics in proto: 0.5.11, 0.5.23"),
    (["--era", "0.5.23", "--guard-version", "helper"], "--guard-version names the 0.5.11 era's guards"),
    (["--era", "0.5.23", "--tp-size", "2", "--ep-size", "2", "--dp-size", "2", "--enable-dp-attention",
      "--moe-a2a-backend", "pplx"], "--moe-a2a-backend pplx: out of the actors' scope"),
    (["--era", "0.5.23", "--tp-size", "2", "--ep-size", "2", "--moe-a2a-backend", "pplx"],
     "the 0.5.23 era refuses this configuration: --moe-a2a-backend pplx needs --enable-dp-attention"),
    (["--era", "0.5.11", "--tp-size", "2", "--dwdp-size", "2"],
     "the 0.5.11 era refuses this configuration: --dwdp-size other than 1 exists from the 0.5.17 era on"),
    (["--era", "0.5.23", "--tp-size", "4", "--dwdp-size", "2"], "the 0.5.23 era refuses this configuration"),
    (["--era", "0.5.23", "--tp-size", "2", "--gpu-arch", "gfx942"], "out of scope in the 0.5.23 era"),
])
def test_bad_era_input_exits_2_with_one_line(argv, words, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert words in err and len(err.splitlines()) == 1, err


def test_the_eras_the_actors_run_and_the_defaults():
    assert RUN_ERAS == (Era.V0_5_11, Era.V0_5_23) and DEFAULT_ERA == Era.V0_5_23
    _, (case,), _ = parse(["--tp-size", "2", "--ep-size", "2"])
    assert case.era == Era.V0_5_23 and case.version is None and case.variant == SumsAt.BOUNDARY.value
    _, cases, _ = parse(["--tp-size", "2", "--ep-size", "2", "--guard-version", "helper"])
    assert {k.era for k in cases} == {Era.V0_5_11}
    _, cases, _ = parse(["--sweep", "small", "--worlds", "2", "--models", "qwen3_moe"])
    assert {k.era for k in cases} == set(RUN_ERAS)
    _, cases, _ = parse(["--sweep", "small", "--worlds", "2", "--models", "qwen3_moe", "--era", "0.5.23"])
    assert {k.era for k in cases} == {Era.V0_5_23}


def test_the_sweep_covers_both_eras():
    both, old = sweep("small"), sweep("small", eras=(Era.V0_5_11,))
    assert Counter(k.era for k in both) == {Era.V0_5_11: len(old), Era.V0_5_23: len(both) - len(old)}
    assert len(both) - len(old) > 300


def test_every_exit_step_every_boundary_reduction_and_dwdp_are_cases(cases_0523):
    exits = {boundary.ffn_exit(k.config, k.state) for k in cases_0523 if k.variant == SumsAt.BOUNDARY.value}
    assert exits == set(Exit)
    assert {k.config.boundary_reduction for k in cases_0523 if k.config.attn_dp_size > 1} == set(BoundaryReduction)
    dwdp = [k for k in cases_0523 if k.config.dwdp_size > 1]
    assert dwdp and all(k.config.dwdp_size == k.config.tp_size == k.config.ep_size == k.config.attn_dp_size
                        for k in dwdp)  # as handle_dwdp resolves it (arg_groups/parallel_hook.py:441, 466-490)
    assert any(k.variant == SumsAt.BLOCK.value and k.config.attn_dp_size > 1 for k in cases_0523)
    # the hybrid EP x MoE-TP sum now, merged into one TP all-reduce (utils.py:890)
    assert any(models_0523.sum_now_groups(k.config) == (boundary.Group.TP,)
               and boundary.ffn_exit(k.config, k.state) == Exit.SUM_NOW for k in cases_0523)


def test_what_the_actors_cannot_run_on_gloo_is_not_a_case(cases_0523):
    assert all(k.config.moe_a2a_backend == MoeA2ABackend.NONE for k in cases_0523)
    assert not any(k.config.is_amd or k.state.attn_tp_input_scattered for k in cases_0523)


def test_the_prediction_is_the_case_eras(cases_0523):
    for k in cases_0523[:50]:
        m = models_0523.era_model(k.model)
        assert predicted(k) == (models_0523.sum_counts(k.config, k.state, m), models_0523.mixes_tokens(k.config, m))


def test_proto_groups_and_outcome_agree_with_its_counts(cases_0523):
    """The functions added to proto.models_0523 for the actors and the report restate nothing:
    the all-reduces they name sum exactly the axes proto counts, and layer_outcome is exactly_once."""
    from sumonce.proto.semantics import Outcome
    from sumonce.proto.sites import GROUP_AXES

    def axes(groups):
        return Counter(a.value for g in groups for a in GROUP_AXES[g])

    for k in cases_0523:
        c, s, m = k.config, k.state, models_0523.era_model(k.model)
        owed = boundary.sum_post_experts_output(c)
        assert axes(models_0523.sum_now_groups(c)) == Counter({"ep": owed.ep, "moe_tp": owed.moe_tp}) - Counter()
        block = models_0523.block_counts(c)
        assert axes(models_0523.block_groups(c)) == Counter({"ep": block.ep, "moe_tp": block.moe_tp}) - Counter()
        assert (models_0523.layer_outcome(c, s, m) == Outcome.ONCE) == models_0523.exactly_once(c, s, m)
