"""The map's 0.5.23 era: its cells are proto.models_0523's verdicts (classify_0523), drawn for
every model and panel beside the 0.5.11 guards, and where the eras differ the map shows it."""
from sumonce.proto import models_0523
from sumonce.proto.catalogue import MODELS
from sumonce.proto.eras import Era, accepts
from sumonce.proto.validation import violations
from sumonce.report import mapdata
from sumonce.report.outcome import Outcome, classify, classify_0523
from sumonce.report.page import Inputs, era_summary, render
from sumonce.report.panels import PANELS, PANELS_BY_KEY, SIZES, at


def test_classify_0523_is_proto_models_0523_on_every_drawn_square():
    for m in MODELS:
        em = models_0523.era_model(m.name)
        for panel in PANELS:
            for tp in SIZES:
                for ep in SIZES:
                    c, s = at(panel, m, tp, ep)
                    cell = classify_0523(c, s, em)
                    if violations(c) or not accepts(Era.V0_5_23, c) or not models_0523.in_scope(c, em) \
                            or not models_0523.state_in_scope(c, s):
                        assert cell.outcome == Outcome.REFUSED, (m.name, panel.key, tp, ep)
                        continue
                    once = models_0523.exactly_once(c, s, em)
                    assert (cell.outcome == Outcome.ONCE) == once, (m.name, panel.key, tp, ep)
                    assert (cell.ep, cell.moe_tp) == tuple(vars(models_0523.sum_counts(c, s, em)).values())


def test_every_model_has_every_panel_in_the_0_5_23_era():
    maps = mapdata.build_era()
    assert [em.model.name for em in maps] == [m.name for m in MODELS]
    for em in maps:
        assert [g.panel.key for g in em.grids] == [p.key for p in PANELS]
        assert all(len(g.tokens) == len(SIZES) ** 2 for g in em.grids)
        assert all(g.template.startswith(f"sumonce run --era 0.5.23 --model {em.model.name} ") for g in em.grids)
    # the input-scattered panel is outside proto.models_0523's scope: grey, with that reason
    scattered = [g for em in maps for g in em.grids if g.panel.key == "tp-scattered"]
    assert all(t[0] == "R" for g in scattered for t in g.tokens)


def test_where_the_eras_differ_the_map_differs():
    """qwen3_moe, tp 4, ep 2, fusion on: the #23748 guards never sum MoE-TP (the fused kernel sums
    EP only); the 0.5.23 exit merges both sums into one TP all-reduce. hunyuan_v3 under DP attention
    still mixes tokens in 0.5.23 (its block sums, no DP gather)."""
    m = next(x for x in MODELS if x.name == "qwen3_moe")
    c, s = at(PANELS_BY_KEY["fusion-on"], m, 4, 2)
    assert classify(c, s, m, m.versions[0]).outcome == Outcome.NEVER
    assert classify_0523(c, s, models_0523.era_model("qwen3_moe")).outcome == Outcome.ONCE
    h = next(x for x in MODELS if x.name == "hunyuan_v3")
    c, s = at(PANELS_BY_KEY["dp-attention"], h, 4, 4)
    assert classify_0523(c, s, models_0523.era_model("hunyuan_v3")).outcome == Outcome.MIXES_TOKENS


def test_the_page_draws_the_era(built):
    _, _, maps = built
    era = mapdata.build_era()
    html = render(Inputs(maps, era_maps=era))
    e = era_summary(era)
    assert 'id="era-summary"' in html and f"{e['wrong']} of {e['cells']} squares wrong there" in html
    assert html.count('data-era="0.5.23" data-site=') == len(MODELS) * len(PANELS)
    assert 0 < e["wrong"] < e["cells"]
