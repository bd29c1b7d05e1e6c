"""Bad input: one line, exit 2. Outputs: JSON, SARIF."""
import json

from sumonce.audit.command import main

from pathlib import Path

FIXTURES = Path(__file__).parent / "fixtures"


def one_line_error(capsys, argv):
    rc = main(argv)
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and err.startswith("sumonce audit: ")
    return err


def test_missing_path(capsys):
    assert "no such file" in one_line_error(capsys, ["/no/such/dir"])


def test_not_sglang(capsys, tmp_path):
    assert "not an SGLang source tree" in one_line_error(capsys, [str(tmp_path)])


def test_not_a_wheel(capsys, tmp_path):
    bad = tmp_path / "x.whl"
    bad.write_text("no zip")
    assert "not a readable wheel" in one_line_error(capsys, [str(bad)])


def test_unknown_version(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("SUMONCE_CACHE", str(tmp_path))
    assert "does not exist" in one_line_error(capsys, ["sglang==0.0.0.999"])


def test_json_and_sarif(capsys, tmp_path):
    sarif = tmp_path / "out.sarif"
    rc = main([str(FIXTURES / "tree"), "--json", "--sarif", str(sarif)])
    data = json.loads(capsys.readouterr().out)
    assert rc == 1 and len(data["sites"]) == 9
    s = json.loads(sarif.read_text())
    assert s["version"] == "2.1.0"
    flagged = [x for x in data["sites"] if x["verdict"] in ("differs", "not understood")]
    assert len(s["runs"][0]["results"]) == len(flagged) + len(data["unparsed"])
    loc = s["runs"][0]["results"][0]["locations"][0]["physicalLocation"]
    assert loc["artifactLocation"]["uri"].endswith("shapes.py") and loc["region"]["startLine"] > 0
