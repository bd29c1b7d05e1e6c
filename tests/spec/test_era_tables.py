"""`sumonce prove --era X` for the eras between 0.5.11 and 0.5.23 (spec.era_tables,
spec.era_differences): each table passes with the counts established from the source, every
refuted row's witness is a configuration its era accepts (and, where reachable, the model runs
it), and the proofs rest on proto's facts (a changed fact is caught)."""
import contextlib
import io
import json

import pytest

from sumonce.proto import era_layers as L
from sumonce.proto import models_0521 as m21
from sumonce.proto.boundary import Exit
from sumonce.proto.config import ForwardState, ServerConfig
from sumonce.proto.decisions import HELPERS
from sumonce.proto.eras import Era, accepts
from sumonce.proto.semantics import model_supports
from sumonce.proto.serial import from_dict
from sumonce.proto.validation import validate
from sumonce.spec import check, cli
from sumonce.spec import era_differences as D
from sumonce.spec.era_tables import era_properties
from sumonce.spec.properties import Expect
from sumonce.spec.world import World

# (kind, verdict) -> count, per era: what the source establishes (docs/ERAS.md, section 6).
COUNTS = {
    "0.5.10.post1": {("lemma", "proved"): 1, ("no-drift", "refuted"): 1, ("exactly-once", "proved"): 14,
                     ("finding", "proved"): 1, ("finding", "refuted"): 9},
    "0.5.15": {("lemma", "proved"): 1, ("no-drift", "proved"): 1, ("exactly-once", "proved"): 15,
               ("finding", "refuted"): 8, ("difference", "proved"): 1, ("difference", "refuted"): 1},
    "0.5.16": {("lemma", "proved"): 1, ("no-drift", "proved"): 1, ("difference", "proved"): 2},
    "0.5.17": {("lemma", "proved"): 1, ("no-drift", "proved"): 1, ("exactly-once", "proved"): 15,
               ("finding", "proved"): 2, ("finding", "refuted"): 7, ("difference", "proved"): 1,
               ("difference", "refuted"): 4},
    "0.5.20": {("lemma", "proved"): 1, ("no-drift", "proved"): 1, ("exactly-once", "proved"): 15,
               ("finding", "proved"): 2, ("finding", "refuted"): 6, ("difference", "proved"): 1,
               ("difference", "refuted"): 1},
    "0.5.21": {("lemma", "proved"): 1, ("no-drift", "proved"): 1, ("exactly-once", "proved"): 15,
               ("finding", "proved"): 6, ("finding", "refuted"): 7, ("difference", "proved"): 1,
               ("difference", "refuted"): 1},
}


def prove(*argv):
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = cli.prove_main(["--json", *argv])
    return code, json.loads(out.getvalue())


@pytest.fixture(scope="module", params=sorted(COUNTS))
def table(request):
    code, report = prove("--era", request.param)
    # spec.shared_expert's rows ("shared-once:...") join each era's table through their own hook and
    # are counted in tests/spec/test_shared_expert.py.
    return request.param, code, [r for r in report["results"] if r["era"] == request.param
                                 and not r["property"].startswith("shared-once:")]


def test_the_table_passes_with_its_counts(table):
    era, code, rows = table
    assert code == 0 and all(r["passed"] and r["lift_ok"] for r in rows)
    counts = {}
    for r in rows:
        counts[(r["kind"], r["verdict"])] = counts.get((r["kind"], r["verdict"]), 0) + 1
    assert counts == COUNTS[era]


def test_every_refuted_witness_is_accepted_by_its_era(table):
    """A refutation's counterexample: SGLang's validity, the era's own acceptance (its releases'
    arguments), and the claim False there in plain Python; a finding marked reachable is one the
    failing model runs (model_supports) at the era's release."""
    era, _, rows = table
    refuted = [r for r in rows if r["verdict"] == "refuted"]
    assert refuted or era == "0.5.16"
    for r in refuted:
        cx = r["counterexample"]
        c, s = validate(from_dict(ServerConfig, cx["config"])), from_dict(ForwardState, cx["state"])
        assert accepts(Era(era), c), r["property"]
        assert cx["python_claim"] is False, r["property"]
        story = cx["era_story"]
        if r["kind"] == "finding" and r.get("reachable") == "reachable" and era == "0.5.21":
            m = m21.era_model(story["model"])
            assert m21.model_supports(c, m) and not m21.exactly_once(c, s, m), r["property"]
        elif r["kind"] == "finding" and r.get("reachable") == "reachable":
            m = next(m for m in L.models_of(Era(era)) if m.name == story["model"])
            assert model_supports(c, m) and not L.exactly_once(story["release"], c, s, m), r["property"]


def test_each_helper_change_has_a_witness_where_the_helpers_differ():
    """Every refuted helper row: at its witness the two eras' helpers really disagree on a path,
    with nothing handed on (F, R False) and tp > 1 (a site would run); its completeness row is
    proved."""
    props = {p.name: p for era in Era for p in D.differences_into(era)}
    for ch in D.CHANGES:
        p = props[D.name(ch)]
        r = check.run_property(World(), p, 10_000)
        assert r.passed, p.name
        if ch.claim is not None or ch.expect == Expect.HOLDS:
            continue
        cx = r.counterexample
        c, F, R = validate(from_dict(ServerConfig, cx["config"])), cx["block_F"], cx["block_R"]
        assert accepts(ch.after, c) and c.tp_size > 1, p.name
        before, after = HELPERS[ch.before], HELPERS[ch.after]
        assert any(before(c, path, R, F) != after(c, path, R, F) for path in (True, False)), p.name
    pairs = {(ch.before, ch.after) for ch in D.CHANGES if ch.claim is None and ch.expect == Expect.REFUTED}
    for before, after in pairs:
        assert any(ch.id == "helpers-agree-outside-the-changes" for ch in D.CHANGES
                   if (ch.before, ch.after) == (before, after)), (before, after)


def test_the_refactor_rests_on_the_publishing_facts():
    """0.5.16's sites decide as 0.5.15's because each decoder publishes what it passed: drop
    qwen3_moe's published F (its line in PUBLISH_LINES) and the proof finds the difference."""
    p = next(p for p in era_properties(Era.V0_5_16) if p.name.endswith("every-site-decides-the-same"))
    assert check.run_property(World(), p, 10_000).passed
    saved = dict(L.PUBLISH_LINES["0.5.16"])
    try:
        L.PUBLISH_LINES["0.5.16"]["qwen3_moe"] = (0, saved["qwen3_moe"][1])
        r = check.run_property(World(), p, 10_000)
    finally:
        L.PUBLISH_LINES["0.5.16"].clear()
        L.PUBLISH_LINES["0.5.16"].update(saved)
    assert r.status.value == "refuted" and r.counterexample["config"]["tp_size"] > 1


def fusion_without_gate(release, c, s, m):
    """F as 0.5.17 computes it, at every release."""
    return L.decoder_fusion(c, s, m)


def test_the_0_5_18_gate_is_load_bearing():
    """Without 0.5.18's hybrid F gate the finding would still hold at 0.5.18."""
    p = next(p for p in era_properties(Era.V0_5_17) if p.name.endswith("fused-allreduce-sums-ep-group-only@0.5.18"))
    assert check.run_property(World(), p, 10_000).passed
    r = check.run_property(World(overrides={L.fusion: fusion_without_gate}), p, 10_000)
    assert r.status.value == "refuted"


def publishes_nothing(c, s, m):
    """A 0.5.21 exit that published neither flag (the model file would sum on F = R = False)."""
    return False, False


def test_the_0_5_21_layer_rests_on_the_published_flags():
    """qwen2_moe sums once in 0.5.21 because its reduce_moe_output reads the exit's F and R
    (exit.py:518-522): with nothing published it sums on top of the deferred or scattered sum."""
    p = next(p for p in era_properties(Era.V0_5_21) if p.name == "exactly-once:qwen2_moe@0.5.21")
    assert check.run_property(World(), p, 10_000).passed
    r = check.run_property(World(overrides={m21.published: publishes_nothing}), p, 10_000)
    assert r.status.value == "refuted"
    cx = r.counterexample
    step = m21.ffn_exit(from_dict(ServerConfig, cx["config"]), from_dict(ForwardState, cx["state"]))
    assert step not in (Exit.COMPLETE, Exit.SUM_NOW), step
