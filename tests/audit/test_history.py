"""`sumonce audit --history`: a real three-release range (cached wheels, audited afresh), the
result cache giving the same entries, the audit-history JSON against its schema, bad ranges."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
from sumonce.audit import history, history_report
from sumonce.audit.command import main
from sumonce.audit.source import TargetError

from sumonce.output import schema

pytestmark = pytest.mark.sglang

RANGE = "sglang==0.5.13..sglang==0.5.14"
THREE = ["0.5.13", "0.5.13.post1", "0.5.14"]


@pytest.fixture(scope="module")
def fresh(tmp_path_factory):
    """The three releases audited afresh, their results written to a private result cache."""
    results = tmp_path_factory.mktemp("audits")
    mp = pytest.MonkeyPatch()
    mp.setattr(history, "_results_dir", lambda: results)
    try:
        yield history.run(THREE, jobs=2, use_cache=True), results
    finally:
        mp.undo()


def test_the_range_is_the_registrys_releases_in_version_order():
    known = history.registry_versions()
    assert history.releases_in("0.5.13", "0.5.14", known) == THREE
    assert history.releases_in("0.5.10.post1", "0.5.11", known) == ["0.5.10.post1", "0.5.11"]
    assert len(history.releases_in("0.5.10.post1", "0.5.23", known)) == 17
    # PEP 440: 0.5.9 < 0.5.10 < 0.5.10.post1 < 0.5.11
    assert sorted(["0.5.10.post1", "0.5.11", "0.5.9", "0.5.10"], key=history.version_key) == \
        ["0.5.9", "0.5.10", "0.5.10.post1", "0.5.11"]


def test_each_release_is_judged_in_its_era(fresh):
    entries, _ = fresh
    assert [e["release"] for e in entries] == THREE
    assert all(e["era"] == "0.5.11" and not e["cached"] for e in entries)


def test_per_model_verdicts_as_read_from_the_source(fresh):
    """Read from the wheels (sglang/srt/models/, lines at 0.5.14 unless said):
    - qwen2_moe: its block calls the helper (qwen2_moe.py:580); 0.5.14 adds a PP hand-off in
      Qwen2MoeModel.forward (:944, :946) that all-reduces over EP and MoE-TP under an attribute
      set for fusion, never asking the helper: differs.
    - zaya: new in 0.5.14; ZayaBlock.forward all-reduces under `if self.tp_size > 1` (:1224, :1229),
      and ZayaAttention.__init__ asserts attention TP == TP (:845-849: DP attention is refused), so
      the unguarded sum is equivalent in effect (it differed only under DP attention).
    - glm4_moe_lite: calls the helper from 0.5.13 on (docs/eras.json helper_callers).
    - nemotron_h 0.5.14: `self.tp_size > 1 and not should_skip_post_experts_all_reduce(...)` (:324).
    - grok: the all-reduce sits in `self.ffn = lambda ...` (Grok1DecoderLayer.__init__), called on
      every forward: followed, one sum within grok's own decoder: equivalent in effect.
    - dbrx: DbrxExperts.forward's `if self.tp_size > 1` guard (dbrx.py:197 in 0.5.14)."""
    entries, _ = fresh
    rows = {m["model"]: [m["verdicts"][v] for v in THREE] for m in history_report.models(entries)}
    H, D = "calls the helper", "differs"
    assert rows["qwen2_moe"] == [H, H, D]
    assert rows["zaya"] == [None, None, "equivalent in effect here"]
    assert rows["glm4_moe_lite"] == [H, H, H]
    assert rows["nemotron_h"][2] == H
    assert rows["grok"] == ["equivalent in effect here"] * 3
    assert rows["dbrx"] == [D, D, D]


def test_findings_hold_from_first_to_last(fresh):
    entries, _ = fresh
    found = {(f["model"], f["method"], f["path"]): f for f in history_report.findings(entries)}
    pp = found[("qwen2_moe", "Qwen2MoeModel.forward", "ep/ep")]
    assert (pp["first"], pp["last"], pp["lines"]) == ("0.5.14", "0.5.14", {"0.5.14": [944]})
    assert not [f for f in found if f[0] == "zaya"]
    assert not [f for f in found if f[0] == "grok"]


def test_the_result_cache_gives_the_fresh_entries(fresh):
    entries, results = fresh
    assert len(list(results.glob("*.json"))) == 3
    mp = pytest.MonkeyPatch()
    mp.setattr(history, "_results_dir", lambda: results)
    try:
        again = history.run(THREE, jobs=2, use_cache=True)
    finally:
        mp.undo()
    assert all(e["cached"] for e in again)
    strip = lambda es: [{k: v for k, v in e.items() if k != "cached"} for e in es]
    assert strip(again) == strip(entries)


def test_fresh_neither_reads_nor_writes_the_cache(fresh, monkeypatch):
    _, results = fresh
    monkeypatch.setattr(history, "_results_dir", lambda: results)
    before = sorted(results.iterdir())
    (entry,) = history.run(["0.5.13"], jobs=1, use_cache=False)
    assert entry["cached"] is False and sorted(results.iterdir()) == before


def test_the_cache_key_changes_with_the_code(tmp_path, monkeypatch):
    """The key covers every .py file of proto, spec and audit: one changed byte is a new key."""
    from sumonce import audit
    before = history.code_fingerprint()
    pkg = tmp_path / "audit"
    pkg.mkdir()
    for f in (history.Path(audit.__file__).parent).glob("*.py"):
        (pkg / f.name).write_bytes(f.read_bytes())
    monkeypatch.setattr(audit, "__file__", str(pkg / "__init__.py"))
    assert history.code_fingerprint() == before
    (pkg / "judge.py").write_text((pkg / "judge.py").read_text() + "\n# changed\n")
    assert history.code_fingerprint() != before


def test_the_history_json_matches_its_schema(fresh, capsys, monkeypatch):
    _, results = fresh
    monkeypatch.setattr(history, "_results_dir", lambda: results)
    rc = main(["--history", RANGE, "--json"])
    doc = json.loads(capsys.readouterr().out)
    assert rc == 1 and doc["kind"] == "audit-history" and doc["passed"] is False
    jsonschema.Draft202012Validator(schema("audit-history")).validate(doc)
    assert [r["release"] for r in doc["releases"]] == THREE and all(r["cached"] for r in doc["releases"])
    assert {b["id"]: b["shipped_in"] for b in doc["bugs"]}["v_with_attention_tp"] == THREE
    broken = json.loads(json.dumps(doc))
    broken["releases"][0]["era"] = None  # a release with no era is never a valid document
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft202012Validator(schema("audit-history")).validate(broken)


def test_the_schema_names_every_era_and_verdict_the_code_has():
    from sumonce.audit.verdict import SiteVerdict
    from sumonce.proto.eras import Era
    doc = schema("audit-history")
    assert set(doc["$defs"]["release"]["properties"]["era"]["enum"]) == {e.value for e in Era}
    assert set(doc["$defs"]["site"]["properties"]["verdict"]["enum"]) == {v.value for v in SiteVerdict}
    # a model's cell: a site verdict, or the coverage row's kind of a MoE model file without sites
    from sumonce.audit.coverage_rows import RowKind
    rows = {k.value for k in RowKind} - {RowKind.SITES.value}
    assert set(doc["$defs"]["model"]["properties"]["verdicts"]["additionalProperties"]["enum"]) == \
        {v.value for v in SiteVerdict} | rows | {None}
    assert set(history_report.ORDER) == {v.value for v in SiteVerdict} | rows


def test_a_model_without_sites_takes_its_coverage_row():
    """0.5.23's qwen3_moe has no site of its own: its cell says its sum is the layer boundary's."""
    entry = {"audit": {"sites": [{"model": "dbrx", "verdict": "differs"}],
                       "coverage": {"rows": [{"model": "dbrx", "kind": "sites"},
                                             {"model": "qwen3_moe", "kind": "delegated to the layer boundary"},
                                             {"model": "inkling", "kind": "unaccounted"}]}}}
    assert history_report.model_verdicts(entry) == {"dbrx": "differs", "qwen3_moe": "delegated to the layer boundary",
                                                    "inkling": "unaccounted"}


def test_the_table_names_eras_models_findings_and_bugs(fresh, capsys, monkeypatch):
    _, results = fresh
    monkeypatch.setattr(history, "_results_dir", lambda: results)
    assert main(["--history", RANGE]) == 1
    out = capsys.readouterr().out
    assert "3 releases" in out and "qwen2_moe Qwen2MoeModel.forward (ep/ep) differs: 0.5.14 .. 0.5.14" in out
    assert "v_with_attention_tp (sgl-project/sglang#32663): shipped in 0.5.13..0.5.14" in out


def test_the_report_draws_the_history_json(fresh, capsys, monkeypatch, tmp_path):
    """`sumonce report OUT.html --history-json FILE`: the model x release matrix and one table per
    release, from the document alone; a file that is not such a document: one line, exit 2."""
    from sumonce.report.cli import main as report
    _, results = fresh
    monkeypatch.setattr(history, "_results_dir", lambda: results)
    main(["--history", RANGE, "--json"])
    doc = tmp_path / "history.json"
    doc.write_text(capsys.readouterr().out)
    page = tmp_path / "h.html"
    assert report([str(page), "--history-json", str(doc)]) == 0
    html = page.read_text()
    assert 'id="audit-matrix"' in html and html.count('<table class="audit"') == 3
    assert "era 0.5.11" in html and "sglang/srt/models/qwen2_moe.py:944" in html
    capsys.readouterr()
    assert report([str(page), "--history-json", str(tmp_path / "h.html")]) == 2
    assert "cannot read an audit-history JSON document" in capsys.readouterr().err


def one_line_error(capsys, argv) -> str:
    rc = main(argv)
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and err.startswith("sumonce audit: "), err
    return err


@pytest.mark.parametrize("spec, says", [
    ("sglang==0.5.11", "give a range as sglang==A..sglang==B"),
    ("0.5.10.post1..0.5.11", "give a range as sglang==A..sglang==B"),
    ("sglang==0.5.11..sglang==0.5.x", "is not a release version"),
    ("sglang==0.5.11rc1..sglang==0.5.12", "is not a release version"),
    ("sglang==0.5.12..sglang==0.5.11", "is empty"),
    ("sglang==0.5.11..sglang==0.5.99", "sglang==0.5.99 is not on the package registry"),
])
def test_bad_ranges_exit_2(capsys, spec, says):
    assert says in one_line_error(capsys, ["--history", spec])


def test_history_takes_no_target(capsys):
    assert "takes no target" in one_line_error(capsys, ["sglang==0.5.11", "--history", RANGE])


def test_0_5_10_is_judged_in_the_pre_helper_era():
    """0.5.10 (before 0.5.10.post1) has no helper either: the code's shape names the pre-helper era."""
    (entry,) = history.run(["0.5.10"], jobs=1, use_cache=False)
    assert entry["era"] == "0.5.10.post1" and "no helper" in entry["era_reason"]


def test_a_release_no_era_fits_fails_loudly(monkeypatch, tmp_path):
    """A release whose code has no known shape (here a wheel made of the synthetic tree whose helper
    has another signature, standing in for a registry release) stops the history with exit 2
    naming it: it is never skipped."""
    import zipfile
    tree = Path(__file__).parent / "fixtures" / "eras" / "none-other-signature" / "python"
    wheel = tmp_path / "sglang-9.9.9-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as z:
        for f in tree.rglob("*.py"):
            z.write(f, f.relative_to(tree).as_posix())
    monkeypatch.setattr(history, "fetch", lambda v: wheel)
    with pytest.raises(TargetError, match="no era has this shape"):
        history.run(["9.9.9"], jobs=1, use_cache=False)


def test_a_release_reads_the_same_whatever_was_audited_before_it():
    """A worker audits consecutive releases (one job: both in one worker): 0.5.16 after
    0.5.15.post1 reads as alone. Its witnesses (a block's F and R, a sum count) came out otherwise
    before spec/readable pinned every setting."""
    def strip(e):
        return json.dumps({k: v for k, v in e["audit"].items() if k != "seconds"}, sort_keys=True)
    after = history.run(["0.5.15.post1", "0.5.16"], jobs=1, use_cache=False)[1]
    alone = history.run(["0.5.16"], jobs=1, use_cache=False)[0]
    assert after["release"] == alone["release"] == "0.5.16"
    assert strip(after) == strip(alone)


def test_an_audit_in_one_process_after_others_reads_as_alone(monkeypatch):
    """The witness itself depends on the question alone (spec/readable pins every setting, F, R
    and the guard's opaque atoms): audited in this very process after 0.5.15 and 0.5.15.post1,
    keeping their trees and solver answers as a --history worker does (audit/memo.py: most of
    0.5.15.post1's questions are 0.5.15's), 0.5.16 reads as in a fresh process. Before the atoms were pinned, longcat_flash's witness
    read "summed 3 times" here and "4 times" alone (a free atom of the guard)."""
    import subprocess
    import sys

    from sumonce.audit import memo

    def strip(e):
        return json.dumps({k: v for k, v in e["audit"].items() if k != "seconds"}, sort_keys=True)
    memo.forget()
    monkeypatch.setattr(memo, "_KEEP", True)  # as a --history worker: trees and answers kept
    asked = []
    for v in ("0.5.15", "0.5.15.post1"):
        history.audit_one(v, str(history.fetch(v)), None)
        asked.append(len(memo._ASKED))
    assert 0 < asked[0] and asked[1] - asked[0] < asked[0] / 4  # 0.5.15.post1 asks little afresh
    here = history.audit_one("0.5.16", str(history.fetch("0.5.16")), None)
    memo.forget()
    code = ("import json; from sumonce.audit.history import audit_one, fetch; "
            "print(json.dumps(audit_one('0.5.16', str(fetch('0.5.16')), None)))")
    alone = json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                      check=True).stdout)
    assert strip(here) == strip(alone)


def test_a_failing_audit_fails_the_history_with_its_message(monkeypatch, tmp_path):
    """An audit that raises in its own process (forked, or spawned where forking is not safe)
    raises in the command, its one line kept: here the wheel is not a zip."""
    bad = tmp_path / "sglang-0.0.1-py3-none-any.whl"
    bad.write_bytes(b"not a zip")
    monkeypatch.setattr(history, "fetch", lambda v: bad)
    with pytest.raises(TargetError, match="is not a readable wheel"):
        history.run(["0.5.13", "0.5.13.post1"], jobs=2, use_cache=False)


_DEALT = """
import json, os, sys
from sumonce.audit import history
n, jobs = int(sys.argv[1]), int(sys.argv[2])
versions = [f"0.{i // 3}.{i % 3}" for i in range(n)]
history.audit_one = lambda v, _w, _k: {"release": v, "pid": os.getpid()}
got = history._audit_each([(v, "", None) for v in reversed(versions)], jobs)
print(json.dumps({"parent": os.getpid(), "versions": versions, "got": got}))
"""


@pytest.mark.parametrize("n, jobs", [(17, 2), (17, 3), (17, 4), (2, 2), (3, 3), (1, 2), (5, 4)])
def test_each_release_is_audited_once_and_each_workers_releases_are_consecutive(n, jobs):
    """The workers (real forked processes; the audit replaced by one that names its process) take
    releases from both ends of their blocks: each release once, each worker's releases consecutive
    in version order. Run in a fresh interpreter: this one may hold a Ray session (tests/actors),
    where the workers are spawned and would not see the replaced audit."""
    out = subprocess.run([sys.executable, "-c", _DEALT, str(n), str(jobs)], capture_output=True, text=True,
                         check=True)
    doc = json.loads(out.stdout)
    versions, got = doc["versions"], doc["got"]
    assert sorted(e["release"] for e in got) == sorted(versions)
    by_worker: dict[int, list[int]] = {}
    for e in got:
        by_worker.setdefault(e["pid"], []).append(versions.index(e["release"]))
    assert len(by_worker) <= jobs and doc["parent"] not in by_worker
    for idx in by_worker.values():
        assert sorted(idx) == list(range(min(idx), min(idx) + len(idx)))


def test_a_range_is_the_registrys_releases_though_the_cache_holds_others(monkeypatch, tmp_path):
    """run_range audits the cached wheels of the range while the registry is asked: a cached wheel
    the registry does not list (here 0.5.13.post9, a copy of 0.5.13's) is not in the history, and
    the entries are those of run() over the registry's releases."""
    from sumonce.audit.source import cache_dir
    for v in THREE:
        (wheel,) = cache_dir().glob(f"sglang-{v}-*.whl")
        (tmp_path / wheel.name).symlink_to(wheel)
        if v == "0.5.13":
            (tmp_path / wheel.name.replace("0.5.13", "0.5.13.post9")).symlink_to(wheel)
    monkeypatch.setenv("SUMONCE_CACHE", str(tmp_path))
    got = history.run_range("0.5.13", "0.5.14", jobs=2, use_cache=False)
    assert [e["release"] for e in got] == THREE
    with pytest.raises(TargetError, match="0.5.13.post9 is not on the package registry"):
        history.run_range("0.5.13.post9", "0.5.14", jobs=2, use_cache=False)
