"""The sweep, performance and audit sections, and `sumonce report`'s errors (one line, exit 2)."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from sumonce.report import sweep
from sumonce.report.cli import main
from sumonce.report.outcome import Outcome

ROOT = Path(__file__).resolve().parents[2]
SWEEP = Path(__file__).parent / "data" / "sweep_small_w2.json"


def test_the_sweep_fixture_reads_as_outcomes():
    rows = sweep.load(str(SWEEP))
    assert len(rows) > 100
    assert {r.predicted for r in rows} >= {Outcome.ONCE, Outcome.TWICE, Outcome.NEVER}
    assert sweep.mismatches(rows) == []
    assert "<svg" in sweep.bars(rows)


def test_a_mismatch_is_red_at_the_top(tmp_path, built):
    from sumonce.report.page import Inputs, render
    data = json.loads(SWEEP.read_text())
    row = next(r for r in data["rows"] if r["predicted"]["ep"] == 1 and r["config"]["ep_size"] > 1)
    row["measured"]["ep"], row["ok"] = 2, False
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(data))
    rows = sweep.load(str(bad))
    html = render(Inputs(built[2], sweep=rows, sweep_svg=sweep.bars(rows)))
    assert 'id="top-mismatch"' in html and html.index('id="top-mismatch"') < html.index('id="map"')
    assert "predicted exactly once, measured summed twice" in html


def test_the_page_has_the_sweep_and_perf_sections(report_html):
    html = report_html.read_text()
    assert 'id="sweep-ok"' in html and 'id="top-mismatch"' not in html
    assert "none contradicts it" in html and 'id="top-disagree"' not in html
    assert "all-reduce bus bandwidth vs message size" in html
    assert "fused vs unfused" in html
    assert "<script src" not in html and "<link" not in html and "kozea.github.io" not in html


@pytest.mark.parametrize("argv, words", [
    (["/no/such/folder/r.html"], "does not exist"),
    (["r.txt"], "name it OUT.html"),
    (["r.html", "--sweep", "/no/such.json"], "--sweep /no/such.json"),
    (["r.html", "--perf", "/no/such/dir"], "--perf /no/such/dir"),
    (["r.html", "--audit", "/no/such/tree"], "/no/such/tree"),
    (["r.html", "--bogus"], "unrecognized arguments"),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path, argv, words):
    argv = [str(tmp_path / a) if a.startswith("r.") else a for a in argv]
    p = subprocess.run([sys.executable, "-m", "sumonce.cli", "report", *argv], capture_output=True, text=True,
                       cwd=ROOT)
    assert p.returncode == 2, p.stderr
    assert p.stderr.count("\n") == 1 and p.stderr.startswith("sumonce report: ") and words in p.stderr


def test_a_sweep_row_without_counts_is_refused(tmp_path):
    f = tmp_path / "s.json"
    f.write_text(json.dumps({"rows": [{"model": "qwen3_moe", "version": "helper", "config": {}}]}))
    with pytest.raises(sweep.SweepError, match="missing predicted, measured, ok"):
        sweep.load(str(f))


@pytest.mark.sglang
def test_the_audit_of_two_releases_is_a_matrix(tmp_path):
    out = tmp_path / "a.html"
    assert main([str(out), "--audit", "sglang==0.5.10.post1", "sglang==0.5.11"]) == 0
    html = out.read_text()
    assert 'id="audit-matrix"' in html
    assert html.count('<table class="audit"') == 2
    assert "sglang/srt/models/qwen3_moe.py:" in html
    assert 'class="v-differs"' in html


def test_the_report_never_imports_torch_or_ray():
    code = ("import sys, sumonce.report.cli, sumonce.report.page, sumonce.report.mapdata, sumonce.report.sweep, "
            "sumonce.report.perf, sumonce.report.audit_view, sumonce.report.proofs\n"
            "bad = [m for m in ('torch', 'ray') if m in sys.modules]\nassert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)
