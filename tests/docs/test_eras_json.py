"""docs/eras.json: its structure, and spot checks of recorded facts against the cached wheels.

Wheel checks read ~/.cache/sumonce/sglang/ only (no download) and are skipped for a release
whose wheel is not there. What is compared is read from the wheel here with ast/re, never
typed in twice: the recorded helper signature and line, the recorded helper callers, and a
few era facts whose cited line must hold the named identifier.
"""
import ast
import json
import re
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ERAS = json.loads((ROOT / "docs" / "eras.json").read_text())
CACHE = Path.home() / ".cache" / "sumonce" / "sglang"
UTILS = "sglang/srt/layers/moe/utils.py"
HELPER = "should_skip_post_experts_all_reduce"
SHAPES = set(ERAS["shapes"])
# Every registry release from 0.5.10.post1 to the newest (0.5.23 on 2026-11-28).
EXPECTED_RELEASES = [
    "0.5.10.post1", "0.5.11", "0.5.12", "0.5.12.post1", "0.5.13", "0.5.13.post1", "0.5.14",
    "0.5.15", "0.5.15.post1", "0.5.16", "0.5.17", "0.5.18", "0.5.19", "0.5.20", "0.5.21",
    "0.5.22", "0.5.23",
]
# (release, file, line, identifier the cited line must contain): facts the docs lean on.
SPOT_FACTS = [
    ("0.5.11", UTILS, 381, "should_use_flashinfer_cutlass_moe_fp4_allgather"),
    ("0.5.11", UTILS, 379, "should_use_dp_reduce_scatterv"),
    ("0.5.15", UTILS, 476, "is_flashinfer"),
    ("0.5.16", UTILS, 491, "should_skip_mlp_all_reduce"),
    ("0.5.17", UTILS, 465, "tp_size"),
    ("0.5.17", UTILS, 509, "dwdp_size"),
    ("0.5.20", UTILS, 754, "is_flashinfer_megamoe"),
    ("0.5.23", UTILS, 771, "should_use_flashinfer_cutlass_moe_fp4_allgather"),
    ("0.5.23", UTILS, 758, "mlp_reduce_scatter"),
    ("0.5.23", UTILS, 837, "can_merge_post_experts_all_reduce"),
    ("0.5.23", UTILS, 912, "post_experts_sum_is_one_all_reduce"),
    ("0.5.23", "sglang/srt/layers/layer_boundary/exit.py", 150, "_sum_deferral_allowed"),
    ("0.5.23", "sglang/srt/layers/layernorm.py", 264, "deferred_post_experts_all_reduce"),
    ("0.5.20", "sglang/srt/models/deepseek_v2.py", 1178, "_shared_expert_tp1"),
    ("0.5.10.post1", "sglang/srt/models/qwen3_moe.py", 328, "should_allreduce_fusion"),
]


def wheel(version):
    found = sorted(CACHE.glob(f"sglang-{version}-*.whl"))
    if not found:
        pytest.skip(f"sglang {version} wheel not in {CACHE}")
    return found[0]


def read(version, name):
    with zipfile.ZipFile(wheel(version)) as z:
        return z.read(name).decode("utf-8-sig")


def era_facts():
    for era in ERAS["eras"].values():
        yield from era["facts"]


# ---- structure -------------------------------------------------------------------------

def test_every_release_in_range_is_recorded_once():
    assert list(ERAS["releases"]) == EXPECTED_RELEASES


def test_eras_partition_the_releases_and_agree_on_shape():
    seen = []
    for name, era in ERAS["eras"].items():
        assert era["shape"] in SHAPES, name
        assert era["decision"] and era["facts"], name
        for v in era["releases"]:
            rel = ERAS["releases"][v]
            assert rel["era"] == name and rel["shape"] == era["shape"], v
            seen.append(v)
    assert sorted(seen) == sorted(EXPECTED_RELEASES) and len(seen) == len(set(seen))


def test_release_records_are_consistent():
    for v, rel in ERAS["releases"].items():
        assert rel["shape"] in SHAPES, v
        assert (rel["helper"] is None) == (rel["shape"] == "no_helper"), v
        assert set(rel["helper_callers"]) <= set(rel["moe_model_files"]) | {"deepseek_v4"}, v
        assert 0 < len(rel["moe_model_files"]) <= rel["model_files"], v


def test_facts_cite_release_file_and_line():
    for fact in era_facts():
        assert fact["release"] in ERAS["releases"]
        assert fact["file"].startswith("sglang/srt/")
        assert fact["line"] is None or fact["line"] > 0
        assert fact["fact"]


def test_differences_have_change_evidence_and_upstream():
    for d in ERAS["differences_0_5_11_to_0_5_23"]:
        assert d["since"] in ERAS["releases"], d["id"]
        assert d["evidence"]["release"] in ERAS["releases"], d["id"]
        assert "found" in d["upstream"], d["id"]
        assert d["witness"] is not None or d["witness_note"], d["id"]


def test_bugs_shipped_name_real_releases():
    for bug in ERAS["bugs_shipped"]:
        assert bug["shipped"] and set(bug["shipped"]) <= set(EXPECTED_RELEASES), bug["id"]
        first, last = EXPECTED_RELEASES.index(bug["shipped"][0]), EXPECTED_RELEASES.index(bug["shipped"][-1])
        assert bug["shipped"] == EXPECTED_RELEASES[first:last + 1], bug["id"]
        assert all(e["release"] in bug["shipped"] for e in bug["evidence"]), bug["id"]


def test_oracle_cases_name_their_test_and_version():
    oracle = ERAS["oracle"]
    versions = {str(v["chars"]) for v in oracle["source"]["versions"]}
    assert oracle["source"]["path"].startswith("test/")
    assert len(oracle["cases"]) == 21
    for case in oracle["cases"]:
        assert case["class"].startswith("Test") and case["test"].startswith("test_")
        assert case["expect"] and set(case["versions"]) <= versions


def test_each_migrated_model_has_its_0_5_23_facts():
    migrated = set(ERAS["releases"]["0.5.11"]["helper_callers"])
    assert len(migrated) == 15
    assert set(ERAS["models_0_5_23"]) == migrated
    for name, m in ERAS["models_0_5_23"].items():
        assert m["post_experts_sum"] and "publishes_F_R" in m, name


# ---- against the cached wheels ---------------------------------------------------------

def helper_def(version):
    tree = ast.parse(read(version, UTILS))
    return next((n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == HELPER), None)


@pytest.mark.sglang
@pytest.mark.parametrize("version", ["0.5.10.post1", "0.5.11", "0.5.16", "0.5.21", "0.5.23"])
def test_recorded_helper_signature_matches_the_wheel(version):
    recorded = ERAS["releases"][version]["helper"]
    fn = helper_def(version)
    if recorded is None:
        assert fn is None
        return
    assert fn is not None and fn.lineno == recorded["line"]
    assert [a.arg for a in fn.args.kwonlyargs] == recorded["keyword_only"]
    assert not fn.args.args and not fn.args.posonlyargs


@pytest.mark.sglang
@pytest.mark.parametrize("version", ["0.5.11", "0.5.20", "0.5.23"])
def test_recorded_helper_callers_match_the_wheel(version):
    call = re.compile(rf"\b{HELPER}\s*\(")
    with zipfile.ZipFile(wheel(version)) as z:
        callers = sorted(
            n.rsplit("/", 1)[-1][:-3]
            for n in z.namelist()
            if re.fullmatch(r"sglang/srt/models/[^/]+\.py", n) and call.search(z.read(n).decode())
        )
    assert callers == ERAS["releases"][version]["helper_callers"]


@pytest.mark.sglang
@pytest.mark.parametrize("version", ["0.5.16", "0.5.23"])
def test_recorded_context_publishers_match_the_wheel(version):
    """Which decoders publish F (fuse_mlp_allreduce) and R (mlp_reduce_scatter) into ctx."""
    flags = {"F": "fuse_mlp_allreduce", "R": "mlp_reduce_scatter"}
    found = {}
    with zipfile.ZipFile(wheel(version)) as z:
        for n in z.namelist():
            if re.fullmatch(r"sglang/srt/models/[^/]+\.py", n):
                text = z.read(n).decode()
                got = [k for k, f in flags.items() if re.search(rf"\b{f}\s*=", text)]
                if got:
                    found[n.rsplit("/", 1)[-1][:-3]] = got
    assert found == ERAS["releases"][version]["context_publishers"]


@pytest.mark.sglang
@pytest.mark.parametrize("release,file,line,ident", SPOT_FACTS)
def test_cited_line_holds_the_fact(release, file, line, ident):
    assert any(
        (f["release"], f["file"], f["line"]) == (release, file, line) for f in era_facts()
    ) or any(
        (d["evidence"]["release"], d["evidence"]["file"], d["evidence"]["line"]) == (release, file, line)
        for d in ERAS["differences_0_5_11_to_0_5_23"]
    ) or any(
        (e["release"], e["file"], e["line"]) == (release, file, line)
        for b in ERAS["bugs_shipped"] for e in b["evidence"]
    ), "spot fact not recorded in docs/eras.json"
    assert ident in read(release, file).splitlines()[line - 1]
