"""Every MoE model file gets a row (audit/coverage.py), on the cached wheels 0.5.10.post1, 0.5.11 and
0.5.23; every fact asserted here was read from those wheels (file:line in the rows' evidence).
A MoE file nobody accounts for fails the audit with its name."""
from __future__ import annotations

import json
from pathlib import Path

import jsonschema

from sumonce.audit.command import main
from sumonce.audit.coverage import RowKind
from sumonce.output import schema

BOUNDARY, SITES, NOT_NEEDED, UNACCOUNTED = (RowKind.BOUNDARY, RowKind.SITES, RowKind.NOT_NEEDED,
                                            RowKind.UNACCOUNTED)
# SGLang PR #23748's 15 models (0.5.11's helper callers, docs/eras.json)
MIGRATED = ("bailing_moe", "bailing_moe_linear", "deepseek_v2", "exaone_moe", "glm4_moe", "hunyuan_v3", "llada2",
            "llama4", "mimo_v2", "minimax_m2", "qwen2_moe", "qwen3_moe", "sarvam_moe", "sdar_moe", "step3p5")


def rows(rep) -> dict:
    return {r.model: r for r in rep.coverage.rows}


def cites(row, text: str) -> bool:
    return any(text == f"{e.file.rsplit('/', 1)[-1]}:{e.line}" for e in row.evidence)


def test_counts_per_release(release_reports):
    got = {v: (r.coverage.accounted, r.coverage.found, r.coverage.counts()) for v, r in release_reports.items()}
    # nemotron_h (0.5.10.post1 line 288, 0.5.11 line 296): a sites row since NemotronHMoE.forward's
    # all-reduce is taken as a site (it runs the experts through self._forward_core)
    assert got["0.5.10.post1"] == (45, 46, {"sites": 41, "no post-experts reduce needed": 4, "unaccounted": 1})
    assert got["0.5.11"] == (48, 49, {"sites": 43, "no post-experts reduce needed": 5, "unaccounted": 1})
    # issue 13's six files (tests/audit/test_coverage_patterns.py): cohere2_moe, deepseek_v4 and
    # deepseek_v4_dspark are sites rows, inkling and kimi_k3 delegated; transformers stays unaccounted
    assert got["0.5.23"][:2] == (68, 69)
    assert got["0.5.23"][2] == {"sites": 16, "delegated to the layer boundary": 48,
                                "no post-experts reduce needed": 4, "unaccounted": 1}


def test_every_moe_file_of_the_rule_has_a_row(release_reports):
    """docs/eras.json's list (its rule) is inside the rows; the rows add the files that call the
    fused-experts kernel or hold a site (afmoe, dbrx, deepseek, mixtral_quant, xverse_moe)."""
    eras = json.load(open("docs/eras.json"))["releases"]
    for v, rep in release_reports.items():
        have = set(rows(rep))
        assert set(eras[v]["moe_model_files"]) <= have, v
        assert {"afmoe", "dbrx", "deepseek", "mixtral_quant", "xverse_moe"} <= have - set(eras[v]["moe_model_files"])


def test_0523_fourteen_of_the_migrated_models_are_delegated_hunyuan_v3_sums_in_its_block(release_reports):
    r = rows(release_reports["0.5.23"])
    assert {m for m in MIGRATED if r[m].kind is BOUNDARY} == set(MIGRATED) - {"hunyuan_v3"}
    assert r["hunyuan_v3"].kind is SITES and r["hunyuan_v3"].summary == "calls the helper (2 sites)"
    assert cites(r["hunyuan_v3"], "hunyuan_v3.py:190") and cites(r["hunyuan_v3"], "hunyuan_v3.py:215")
    # qwen3_moe: append_stages, declare_ffn, the FFN boundary's finish
    assert all(cites(r["qwen3_moe"], x) for x in ("qwen3_moe.py:867", "qwen3_moe.py:882", "qwen3_moe.py:917"))
    # qwen2_moe's reduce_moe_output (886) runs only with reduce_results=True; its decoder passes False (1032)
    assert cites(r["qwen2_moe"], "qwen2_moe.py:886") and cites(r["qwen2_moe"], "qwen2_moe.py:1032")
    # deepseek_v2: DeepseekV2MoE built with reduce_results=False (2662); the 3 post_experts_all_reduce sites
    assert all(cites(r["deepseek_v2"], f"deepseek_v2.py:{n}") for n in (2662, 1293, 1452, 1521))
    # nemotron_h declares its stage through nemotron_h_utils.make_stage_boundary (declare_ffn at line 32)
    assert r["nemotron_h"].kind is BOUNDARY and cites(r["nemotron_h"], "nemotron_h_utils.py:32")


def test_0523_reasons_read_from_the_code(release_reports):
    r = rows(release_reports["0.5.23"])
    # granitemoe: GraniteMoeMoE's reduce_results defaults to True and the decoder gives none
    assert r["granitemoe"].kind is NOT_NEEDED and cites(r["granitemoe"], "granitemoe.py:325")
    assert r["olmoe"].kind is NOT_NEEDED and cites(r["olmoe"], "olmoe.py:92")
    assert r["qwen3_vl_moe"].kind is BOUNDARY and r["qwen3_vl_moe"].via == ["qwen3_moe"]
    unaccounted = {m: x.summary for m, x in r.items() if x.kind is UNACCOUNTED}
    assert set(unaccounted) == {"transformers"}
    # the all-reduce patched in at run time: both tests named, for a reader to compare
    assert "line 387 under `self.tp_size > 1`" in unaccounted["transformers"]
    assert "fused_experts.tp_size > 1 or fused_experts.ep_size > 1" in unaccounted["transformers"]


def test_0511_rows(release_reports):
    r = rows(release_reports["0.5.11"])
    assert r["qwen3_moe"].summary == "calls the helper (2 sites)"
    assert cites(r["qwen3_moe"], "qwen3_moe.py:339") and cites(r["qwen3_moe"], "qwen3_moe.py:346")
    assert r["lfm2_moe"].kind is NOT_NEEDED and cites(r["lfm2_moe"], "lfm2_moe.py:151")
    # glm4_moe_lite's block subclasses deepseek_v2's DeepseekV2MoE and keeps its forward
    assert r["glm4_moe_lite"].kind is SITES and r["glm4_moe_lite"].via == ["deepseek_v2"]
    # qwen3_next builds qwen2_moe's block in its own decoder; the audit judged the site within it
    assert r["qwen3_next"].summary == "builds qwen2_moe's block: calls the helper (1 site), judged within this decoder"
    assert cites(r["qwen3_next"], "qwen2_moe.py:474")
    assert {m for m, x in r.items() if x.kind is UNACCOUNTED} == {"transformers"}
    # NemotronHMoE.forward: `if self.tp_size > 1` all-reduce after self._forward_core, whose callee
    # _forward_core_normal calls self.experts(...): a site, judged within nemotron_h's decoder
    assert r["nemotron_h"].kind is SITES and cites(r["nemotron_h"], "nemotron_h.py:296")
    assert r["nemotron_h"].summary == "equivalent in effect here (1 site)"


def test_0510_post1_has_no_boundary(release_reports):
    r = rows(release_reports["0.5.10.post1"])
    assert not any(x.kind is BOUNDARY for x in r.values())
    assert r["qwen3_moe"].summary == "differs (1 site), equivalent (1 site)"


MOE_FILE = '''
from sglang.srt.layers.moe.fused_moe_triton.layer import FusedMoE


class OrphanMoE:
    def __init__(self):
        self.experts = FusedMoE(num_experts=8, top_k=2, reduce_results=False)

    def forward(self, x):
        return self.experts(x)
'''


def test_a_moe_file_nobody_accounts_for_fails_with_its_name(tmp_path, capsys):
    models = tmp_path / "sglang" / "srt" / "models"
    models.mkdir(parents=True)
    (models / "orphan_moe.py").write_text(MOE_FILE)
    (models / "dense.py").write_text("class Dense:\n    pass\n")
    # the 0.5.11 shape's utils.py (the audit names the era before anything else)
    era_tree = Path(__file__).parent / "fixtures" / "eras" / "0.5.11" / "python" / "sglang" / "srt"
    for f in era_tree.rglob("*.py"):
        if "models" not in f.relative_to(era_tree).parts:
            dest = tmp_path / "sglang" / "srt" / f.relative_to(era_tree)
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_text(f.read_text())
    sarif = tmp_path / "out.sarif"
    assert main([str(tmp_path), "--format", "plain", "--sarif", str(sarif)]) == 1
    out = capsys.readouterr().out
    assert "MoE model files accounted for: 0/1" in out and "unaccounted MoE model file orphan_moe" in out
    results = json.loads(sarif.read_text())["runs"][0]["results"]
    assert [(x["ruleId"], x["properties"]["model"]) for x in results] == [("SUMONCE004", "orphan_moe")]
    assert main([str(tmp_path), "--json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    jsonschema.Draft202012Validator(schema("audit")).validate(doc)
    assert doc["passed"] is False and doc["coverage"]["unaccounted"] == ["orphan_moe"]
    # built with reduce_results=True it sums inside the experts layer: accounted for, exit 0
    (models / "orphan_moe.py").write_text(MOE_FILE.replace("reduce_results=False", "reduce_results=True"))
    assert main([str(tmp_path), "--format", "plain"]) == 0
    assert "MoE model files accounted for: 1/1" in capsys.readouterr().out


def test_compare_per_model(capsys):
    assert main(["--compare", "sglang==0.5.11", "sglang==0.5.23"]) == 0
    out = capsys.readouterr().out
    assert "  qwen3_moe           calls the helper (2 sites) -> delegated to the layer boundary" in out
    assert "  hunyuan_v3          calls the helper (4 sites) -> calls the helper (2 sites)" in out
    assert "  beam                absent -> calls the helper (2 sites)" in out
    assert main(["--compare", "sglang==0.5.11", "sglang==0.5.23", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    jsonschema.Draft202012Validator(schema("audit-compare")).validate(doc)
    models = {m["model"]: m for m in doc["models"]}
    assert len(models) == 69 and models["qwen3_moe"]["kind_after"] == "delegated to the layer boundary"
    assert doc["coverage"]["a"]["found"] == 49 and doc["coverage"]["b"]["found"] == 69
