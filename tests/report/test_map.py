"""The map's cells come from proto and agree with z3: every refuted property's witness is drawn
wrong, no drawn square in a proved property's scope is wrong, and classify is proto's verdict."""
import pytest

from sumonce.proto import semantics
from sumonce.proto.catalogue import MODELS
from sumonce.proto.semantics import SumCounts
from sumonce.proto.config import ServerConfig
from sumonce.proto.validation import ConfigError, validate
from sumonce.report.outcome import COLOURS, LEGEND, Outcome, classify, from_counts
from sumonce.report.panels import PANELS, SIZES, at
from sumonce.spec.check import run_all
from sumonce.spec.properties import all_properties


def test_the_legend_has_six_outcomes_in_six_colours():
    assert [o for o, _, _ in LEGEND] == list(Outcome)
    assert len(set(COLOURS.values())) == 6
    assert {o for o in Outcome if o.wrong} == {Outcome.TWICE, Outcome.NEVER, Outcome.MIXES_TOKENS, Outcome.CRASHES}


def test_from_counts_judges_only_axes_of_size_above_one():
    c = ServerConfig(tp_size=4, ep_size=4)  # moe_tp 1
    assert from_counts(c, SumCounts(1, 0)) == Outcome.ONCE
    assert from_counts(c, SumCounts(2, 0)) == Outcome.TWICE
    assert from_counts(c, SumCounts(0, 5)) == Outcome.NEVER
    assert from_counts(ServerConfig(tp_size=4, ep_size=2), SumCounts(2, 0)) == Outcome.TWICE


def test_classify_is_proto_verdict_on_every_drawn_square():
    for m in MODELS:
        for v in m.versions:
            for panel in PANELS:
                for tp in SIZES:
                    for ep in SIZES:
                        c, s = at(panel, m, tp, ep)
                        cell = classify(c, s, m, v)
                        try:
                            validate(c)
                        except ConfigError as e:
                            assert cell.outcome == Outcome.REFUSED and cell.rule == e.rule
                            continue
                        if not semantics.forward_state_valid(c, s):
                            assert cell.outcome == Outcome.REFUSED and cell.rule == "forward_state"
                            continue
                        once = all(semantics.exactly_once(c, s, m, x, v) for x in m.variants)
                        assert (cell.outcome == Outcome.ONCE) == once, (m.name, v, panel.key, tp, ep)


def test_every_refuted_property_has_its_witness_drawn_wrong(built):
    found, witnesses, maps = built
    drawn = {w.prop: w for vm in maps for w in vm.witnesses}
    refuted = [r for r in run_all([p for p in all_properties() if p.kind.value in ("finding", "history")], 10_000)
               if r.status.value == "refuted" and r.counterexample and r.counterexample.get("model")]
    assert len(refuted) >= 20
    for r in refuted:
        assert r.prop.name in drawn, r.prop.name
        assert drawn[r.prop.name].cell.outcome.wrong, (r.prop.name, drawn[r.prop.name].cell)


def test_no_drawn_square_contradicts_a_proved_property(built):
    found, _, maps = built
    proved = [p for vm in maps for p in vm.proofs if p.verdict == "proved"]
    assert len(proved) >= 45
    for p in proved:
        assert p.disagree == [], (p.name, p.disagree[:5])
    once = [p for p in proved if p.name.startswith("exactly-once:")]
    assert all(p.in_scope > 0 for p in once), [p.name for p in once if p.in_scope == 0]


def test_the_agreement_check_can_fail(built):
    """A proved property whose scope were wider (no known-finding exclusions) would be
    contradicted by the squares inside the findings: the check sees drawn squares, not verdicts."""
    from sumonce.report.proofs import Proof, agree
    from sumonce.spec import claims
    m = next(x for x in MODELS if x.name == "qwen3_moe")
    v = m.versions[0]
    wide = Proof("exactly-once without exclusions", "", "proved", True,
                 claims.in_scope_outside(m, v, ()), claims.exactly_once(m, v))
    for panel in PANELS:
        for tp in SIZES:
            for ep in SIZES:
                c, s = at(panel, m, tp, ep)
                agree(wide, c, s, classify(c, s, m, v), (panel.key, tp, ep))
    assert ("fusion-on", 4, 2) in wide.disagree


@pytest.mark.parametrize("model", [m.name for m in MODELS])
def test_every_model_has_every_panel_at_every_version(built, model):
    _, _, maps = built
    mine = [vm for vm in maps if vm.model.name == model]
    assert [vm.version for vm in mine] == list(mine[0].model.versions)
    for vm in mine:
        assert [g.panel.key for g in vm.grids] == [p.key for p in PANELS]
        assert all(len(g.tokens) == len(SIZES) ** 2 for g in vm.grids)
