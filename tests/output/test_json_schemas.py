"""Every --json document validates against its JSON Schema (sumonce/schemas/, draft 2020-12, read
as the installed package reads them) and carries schema_version; the validator is the registry's
jsonschema, and it rejects a document that breaks the schema."""
from __future__ import annotations

import json
import shutil

import jsonschema
import pytest

from sumonce.output import DOCUMENTS, SCHEMA_VERSION, schema

from .conftest import run


def validate(doc: dict, kind: str) -> None:
    jsonschema.Draft202012Validator(schema(kind), format_checker=jsonschema.FormatChecker()).validate(doc)


@pytest.mark.parametrize("kind", DOCUMENTS)
def test_every_schema_is_a_valid_draft_2020_12_schema(kind):
    jsonschema.Draft202012Validator.check_schema(schema(kind))
    assert schema(kind)["properties"]["schema_version"]["const"] == SCHEMA_VERSION


def test_prove_json_matches_its_schema(proved):
    code, doc, _ = proved
    assert code == 0 and doc["schema_version"] == SCHEMA_VERSION and doc["kind"] == "prove"
    validate(doc, "prove")
    assert sum(doc["counts"].values()) == len(doc["results"]) > 100
    with_cx = [r for r in doc["results"] if r["counterexample"]]
    assert with_cx and all(r["counterexample"]["python_claim"] is False for r in with_cx)


def test_a_failing_prove_matches_its_schema(not_as_expected):
    code, doc, _ = not_as_expected
    assert code == 1 and doc["passed"] is False
    validate(doc, "prove")


def test_the_validator_rejects_a_broken_document(proved):
    _, doc, _ = proved
    broken = json.loads(json.dumps(doc))
    broken["results"][0]["verdict"] = "probably"
    with pytest.raises(jsonschema.ValidationError):
        validate(broken, "prove")
    del broken["schema_version"]
    with pytest.raises(jsonschema.ValidationError):
        validate(broken, "prove")


def test_audit_json_matches_its_schema(tree):
    code, out = run(["audit", str(tree), "--json"])
    doc = json.loads(out)
    assert code == 1 and doc["passed"] is False and doc["kind"] == "audit"
    validate(doc, "audit")
    assert len(doc["sites"]) == 9


def test_audit_compare_and_baseline_documents_match_their_schemas(tree, tmp_path):
    base = tmp_path / "baseline.json"
    assert run(["audit", str(tree), "--write-baseline", str(base)])[0] == 0
    validate(json.loads(base.read_text()), "audit-baseline")
    fixed = tmp_path / "fixed"
    shutil.copytree(tree, fixed)
    shapes = fixed / "python" / "sglang" / "srt" / "models" / "shapes.py"
    shapes.write_text(shapes.read_text().replace("all_reduce", "all_reduce_renamed"))
    code, out = run(["audit", "--compare", str(tree), str(fixed), "--json"])
    doc = json.loads(out)
    validate(doc, "audit-compare")
    assert code == 0 and doc["changes"], "removing the all-reduces must change verdicts"
    code, out = run(["audit", str(tree), "--json", "--baseline", str(base)])
    doc = json.loads(out)
    validate(doc, "audit")
    # the verdicts pass the baseline; the fixture's unparsable broken.py still fails the run (exit 4)
    assert code == 4 and doc["baseline"]["passed"] is True and doc["passed"] is False and doc["unparsed"]


def test_the_schemas_name_every_verdict_and_kind_the_code_has():
    """The schemas' enums are the code's own (a verdict or property kind added later must reach the
    schema too, or real output would fail validation)."""
    from sumonce.audit.verdict import SiteVerdict
    from sumonce.proto.eras import Era
    from sumonce.spec.properties import Kind
    audit = schema("audit")
    assert set(audit["$defs"]["site"]["properties"]["verdict"]["enum"]) == {v.value for v in SiteVerdict}
    baseline = schema("audit-baseline")
    assert set(baseline["properties"]["sites"]["additionalProperties"]["enum"]) == {v.value for v in SiteVerdict}
    prove = schema("prove")["$defs"]["result"]["properties"]
    assert set(prove["kind"]["enum"]) == {k.value for k in Kind}
    assert set(prove["era"]["enum"]) == {e.value for e in Era}
