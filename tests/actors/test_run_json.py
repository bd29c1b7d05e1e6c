"""`sumonce run --json`: stdout carries one JSON document (progress and notes go to stderr),
valid against sumonce/schemas/run.schema.json, its rows measured on a real Ray cluster."""
import json

import pytest

from sumonce.actors.run import main
from sumonce.output import SCHEMA_VERSION, schema

jsonschema = pytest.importorskip("jsonschema")
pytestmark = pytest.mark.ray


def test_run_json_matches_its_schema(ray_cluster, capsys):
    code = main(["--tp-size", "2", "--ep-size", "2", "--gpu-arch", "cpu", "--guard-version", "helper",
                 "--device", "cpu", "--json"])
    captured = capsys.readouterr()
    doc = json.loads(captured.out)
    jsonschema.Draft202012Validator(schema("run")).validate(doc)
    assert code == 0 and doc["passed"] and doc["schema_version"] == SCHEMA_VERSION
    assert doc["device"] == "cpu" and doc["worlds"] == [2] and doc["mismatches"] == 0
    # ep 2 == tp 2: the EP axis is summed once, measured; MoE-TP has size 1 (null: not measured)
    assert doc["rows"] and all(r["ok"] and r["measured"] == {"ep": 1, "moe_tp": None} for r in doc["rows"])
    assert "case(s), world size(s) 2" in captured.err
