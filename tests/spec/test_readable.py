"""A property's counterexample depends only on the property: the same with `--only` as in a full
run, whatever ran before it in the same solver (issue 10: tp 6 alone, tp 4 in a full run)."""
from sumonce.spec.check import run_all
from sumonce.spec.properties import all_properties


def _point(result) -> tuple:
    cx = result.counterexample
    return cx["flags"], tuple(sorted(cx["state"].items())), cx["block_F"], cx["block_R"]


def test_counterexamples_do_not_depend_on_which_properties_run():
    props = all_properties()
    full = {r.prop.name: r for r in run_all(props, timeout_ms=10_000)}
    refuted = [p for p in props if full[p.name].counterexample]
    assert len(refuted) >= 20
    for p in refuted:
        alone = run_all([p], timeout_ms=10_000)[0]
        assert _point(alone) == _point(full[p.name]), p.name
    # and in the reverse order, so each property follows a different history of checks
    backwards = {r.prop.name: r for r in run_all(refuted[::-1], timeout_ms=10_000)}
    assert all(_point(backwards[p.name]) == _point(full[p.name]) for p in refuted)


def test_the_counterexample_keeps_settings_at_their_defaults_where_it_can():
    (p,) = [p for p in all_properties() if p.name == "history:qwen3_moe@pre-23734:#23734"]
    cx = run_all([p], timeout_ms=10_000)[0].counterexample
    # the #23734 double reduce, at a point qwen3_moe can reach: attention-TP-scattered input is
    # DeepSeek-only (communicator.py:260-272 at 0.5.11), so R comes from DP attention's MAX_LEN
    # padding with ep != dp; nothing else moves off SGLang's defaults
    assert cx["flags"] == "--tp-size 4 --dp-size 2 --ep-size 4 --enable-dp-attention"
    assert cx["state"]["dp_padding_mode"] == "max_len"


def test_an_unknown_of_the_incremental_solver_is_asked_of_a_fresh_one():
    """CI saw one witness fall back to the raw refuting point: a question of the greedy search came
    back unknown from the incremental session (it skips z3's preprocessing). Such a question is now
    asked of a fresh solver, and only its unknown is a failure."""
    import z3
    from sumonce.spec import readable

    class Unsure(z3.Solver):
        def check(self, *assumptions):
            return z3.unknown

    x, flag = z3.Int("x"), z3.Bool("flag")
    s = Unsure()
    s.add(x * x == 49, x > 0, z3.Implies(flag, x < 5))
    assert readable._sat(s) and readable._model(s).eval(x).as_long() == 7
    assert not readable._sat(s, flag)
    plain = z3.Solver()
    plain.add(x > 2)
    assert readable._sat(plain) and readable._model(plain).eval(x).as_long() > 2
