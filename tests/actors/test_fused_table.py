"""The fused step's choice (actors/fused_table.py) on CPU: the choice from a given table, the
file format, the cache keying. The GPU measurement that fills a table: tests/actors/test_gpu.py."""
import json

import pytest

from sumonce.actors import fused_table as ft
from sumonce.actors.fused_table import Shape, Table, TableError

MACHINE = {"host": "h", "gpu": "NVIDIA H200", "gpus": 4, "flashinfer": "0.7.2.post1", "nccl": "2.28.9",
           "torch": "2.11.0+cu130"}
S4 = Shape(4, 4, 7168, "bfloat16")


def times_at(oneshot, twoshot, unfused):
    return {k: v for k, v in (("oneshot", oneshot), ("twoshot", twoshot), ("unfused", unfused)) if v != "-"}


def test_the_fastest_allowed_variant_is_chosen():
    times = {64: times_at(15.3, 19.9, 27.5), 512: times_at(83.7, 58.8, 71.2), 1024: times_at(200.0, 150.0, 120.0)}
    assert ft.choose(times, 4, 64) == ("oneshot", 64)
    assert ft.choose(times, 4, 512) == ("twoshot", 512)
    assert ft.choose(times, 4, 1024) == ("unfused", 1024)


def test_between_and_beyond_measured_sizes():
    times = {4: times_at(5.0, "-", 20.0), 8: times_at(30.0, 6.0, 20.0)}
    # 5 tokens read the next measured size up (8), where two-shot is fastest and 5 > 4 ranks allows it
    assert ft.choose(times, 4, 5) == ("twoshot", 8)
    assert ft.choose(times, 4, 3) == ("oneshot", 4)
    assert ft.choose(times, 4, 4096) == ("twoshot", 8)  # beyond the table: its largest size


def test_two_shot_is_never_chosen_without_more_tokens_than_ranks():
    # measured at 4 tokens over 2 ranks; asked for 4 tokens over a group of 4 (a table with fewer
    # ranks would not be read for it, but the rule holds on its own)
    assert ft.choose({4: times_at(9.0, 1.0, 8.0)}, 4, 4) == ("unfused", 4)
    assert ft.choose({8: times_at(9.0, 1.0, 8.0)}, 4, 3) == ("unfused", 8)
    assert ft.choose({8: times_at(9.0, 1.0, 8.0)}, 4, 5) == ("twoshot", 8)


def test_a_variant_that_failed_its_check_never_wins_and_ties_keep_order():
    assert ft.choose({8: times_at(None, None, 50.0)}, 2, 8) == ("unfused", 8)
    assert ft.choose({8: times_at(5.0, 5.0, 5.0)}, 2, 8) == ("oneshot", 8)
    assert ft.choose({}, 2, 8) is None


def test_table_round_trips_through_its_file(tmp_path):
    t = Table(dict(MACHINE))
    t.merge(S4, {8: times_at(7.2, 17.4, 16.8), 1: times_at(5.7, "-", 15.5)})
    t.merge(Shape(2, 2, 64, "float32"), {4: times_at(None, 9.0, 12.0)})
    path = tmp_path / "t.json"
    ft.save(t, path)
    back = ft.load(path)
    assert back == t
    assert back.choose(S4, 2) == ("oneshot", 8)
    assert back.covers(S4, (1, 8)) and not back.covers(S4, (1, 8, 16))
    assert json.loads(path.read_text())["format"] == "sumonce.fused-table"


def _entry(**over):
    row = {"world": 4, "group": 4, "hidden": 2048, "dtype": "bfloat16", "tokens": 8,
           "us": {"oneshot": 7.0, "twoshot": 17.0, "unfused": 16.0}}
    row.update(over)
    return row


@pytest.mark.parametrize("entries, says", [
    ([_entry(us={"oneshot": 7.0})], "us['unfused'] is required"),
    ([_entry(tokens=4)], "it needs tokens > group"),
    ([_entry(us={"unfused": -1})], "positive number"),
    ([_entry(us={"threeshot": 1.0, "unfused": 2.0})], "must map some of"),
    ([_entry(dtype="fp8")], "dtype 'fp8'; allowed: bfloat16, float16, float32"),
    ([_entry(group=8)], "group 8 must be between 2 and world 4"),
    ([_entry(hidden=0)], "'hidden' must be a positive integer"),
    ([_entry(), _entry()], "repeats"),
    (["x"], "an entry must be an object"),
])
def test_bad_entries_are_named_in_one_line(tmp_path, entries, says):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"format": ft.FORMAT, "version": 1, "machine": MACHINE, "entries": entries}))
    with pytest.raises(TableError) as e:
        ft.load(path)
    assert says in str(e.value) and str(path) in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize("text, says", [
    ("{oops", "not JSON"),
    (json.dumps({"format": "other"}), "not a fused-step table"),
    (json.dumps({"format": ft.FORMAT, "version": 2}), "version 2; this sumonce reads version 1"),
    (json.dumps({"format": ft.FORMAT, "version": 1, "entries": []}), "needs a 'machine' object"),
])
def test_bad_files_are_named_in_one_line(tmp_path, text, says):
    path = tmp_path / "bad.json"
    path.write_text(text)
    with pytest.raises(TableError, match=says):
        ft.load(path)
    with pytest.raises(TableError, match="cannot read"):
        ft.load(tmp_path / "missing.json")


def test_cache_is_keyed_by_machine_and_flashinfer_version(tmp_path, monkeypatch):
    monkeypatch.setenv(ft.CACHE_ENV, str(tmp_path))
    here = ft.cache_path(MACHINE)
    assert here.parent == tmp_path / "fused" and "NVIDIA-H200-x4-flashinfer-0.7.2.post1" in here.name
    assert ft.cache_path(dict(MACHINE)) == here
    for field, other in (("flashinfer", "0.7.3"), ("host", "other"), ("gpus", 2), ("nccl", "2.27.1")):
        assert ft.cache_path(dict(MACHINE, **{field: other})) != here, field


def test_startup_reads_a_given_file_else_this_machines_cache(tmp_path, monkeypatch):
    monkeypatch.setenv(ft.CACHE_ENV, str(tmp_path))
    monkeypatch.delenv(ft.TABLE_ENV, raising=False)
    table, source, cache = ft.startup_table(MACHINE)
    assert (table.entries, source, cache) == ({}, "calibrated", ft.cache_path(MACHINE))
    ft.merge_into_cache(cache, MACHINE, S4, {8: times_at(7.0, 17.0, 16.0)})
    ft.merge_into_cache(cache, MACHINE, Shape(4, 2, 7168, "bfloat16"), {8: times_at(5.0, 6.0, 9.0)})
    table, source, _ = ft.startup_table(MACHINE)
    assert source.startswith("cache ") and len(table.entries) == 2  # the second merge kept the first
    given = tmp_path / "given.json"
    ft.save(Table({"host": "elsewhere"}, {S4: {8: times_at(50.0, 60.0, 10.0)}}), given)
    monkeypatch.setenv(ft.TABLE_ENV, str(given))
    table, source, cache = ft.startup_table(MACHINE)
    assert source == f"file {given}" and cache is None and table.choose(S4, 8) == ("unfused", 8)


def test_a_foreign_or_broken_cache_is_recalibrated_not_trusted(tmp_path, monkeypatch):
    monkeypatch.setenv(ft.CACHE_ENV, str(tmp_path))
    monkeypatch.delenv(ft.TABLE_ENV, raising=False)
    path = ft.cache_path(MACHINE)
    ft.save(Table(dict(MACHINE, flashinfer="0.6.0"), {S4: {8: times_at(1.0, 1.0, 1.0)}}), path)
    assert ft.startup_table(MACHINE)[1] == "calibrated"
    path.write_text("{truncated")
    assert ft.startup_table(MACHINE)[1] == "calibrated"
    ft.merge_into_cache(path, MACHINE, S4, {8: times_at(7.0, 17.0, 16.0)})
    assert ft.load(path).machine == MACHINE


def test_run_refuses_a_bad_table_before_any_actor_starts(tmp_path, monkeypatch, capsys):
    from sumonce.actors import run
    bad = tmp_path / "t.json"
    bad.write_text("[]")
    monkeypatch.setenv(ft.TABLE_ENV, str(bad))
    assert run.main(["--sweep", "small", "--worlds", "2"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not a fused-step table" in err[0] and str(bad) in err[0]
