"""bench/tables.py turns the GPU benchmarks' JSON into PERF.md's tables; CPU only."""
import json

from bench import tables


def _row(world, hidden, tokens, unfused, oneshot, twoshot=None, chosen="oneshot"):
    r = {"kind": "fused-vs-unfused", "world": world, "hidden": hidden, "tokens": tokens, "unfused_us": unfused,
         "oneshot_us": oneshot, "default_us": oneshot, "allreduce_us": 10.0, "busbw_GBps": 1.0}
    if twoshot is not None:
        r["twoshot_us"] = twoshot
    r["chosen"], r["chosen_us"] = chosen, r[f"{chosen}_us"]
    return r


def test_flashinfers_pick_timed_faster_counts_as_its_kernel_reaching_the_goal(tmp_path):
    r = _row(2, 4096, 32, 16.4, 8.3)
    r["default_us"] = 6.0  # the same one-shot kernel, timed again: 2.73x
    lines = tables.goal(_write(tmp_path, [r]))
    assert "| 1.98× | 0 of 1 (not at 32) | 2.73× |" in lines[2]


def _write(tmp_path, rows, peak=300.0):
    path = tmp_path / "c.json"
    path.write_text(json.dumps([{"world": 4, "rows": [{"kind": "peak-busbw", "world": 4, "bytes": 2 ** 28,
                                                        "us": 1.0, "busbw_GBps": peak}] + rows}]))
    return str(path)


def test_goal_counts_the_sizes_where_a_variant_reaches_2x_and_the_chosen_one_does(tmp_path):
    rows = [_row(4, 2048, 1, 20.0, 5.0), _row(4, 2048, 64, 20.0, 10.5, 12.0),  # no variant reaches 2x at 64
            _row(4, 2048, 128, 30.0, 14.0, 20.0, chosen="twoshot"),           # one-shot does, the chosen does not
            _row(4, 2048, 512, 70.0, 84.0, 58.0, chosen="twoshot")]           # beyond 128: only the >= 1.0x goal
    lines = tables.goal(_write(tmp_path, rows))
    # min chosen/unfused: 70 / 58 = 1.21 at 512; flashinfer's pick (one-shot) falls to 70 / 84 = 0.83
    assert lines[2].startswith("| 4 | 2048 | 1.21× | 1 of 2 (not at 128) | 0.83× | ")


def test_floor_is_the_bus_bytes_at_the_peak_bus_bandwidth(tmp_path):
    # 512 tokens x 7168 x 2 bytes over 4 ranks: 1.5 x 7,340,032 bytes at 300 GB/s = 36.7 us
    assert abs(tables.floor_us(4, 512, 7168, 300.0) - 36.70016) < 1e-3
    path = _write(tmp_path, [_row(4, 7168, 512, 71.2, 83.7, 58.8, chosen="twoshot")])
    row = tables.fused(path)[2]
    assert "| twoshot | 1.21× | 36.70 | 1.6× |" in row  # the best, two-shot's 58.8 us, is 1.6x the floor


def test_older_files_read_with_flashinfers_pick_as_fused(tmp_path):
    old = {"kind": "fused-vs-unfused", "world": 2, "hidden": 2048, "tokens": 8, "unfused_us": 12.3,
           "fused_us": 5.4, "speedup": 2.28, "fused_twoshot_us": 11.3, "allreduce_us": 10.0, "busbw_GBps": 3.3}
    path = tmp_path / "old.json"
    path.write_text(json.dumps([{"world": 2, "rows": [old]}]))
    row = tables.fused(str(path))[2]
    assert row.startswith("| 2 | 2048 | 8 | 12.3 | – | – | 11.3 | 1.09× | 5.4 | 2.28× | – | – | – | – |")


def test_moe_tables_split_the_fused_rows_from_the_dp_rows(tmp_path):
    once = {"world": 2, "tokens": 64, "sites": [], "step_us": 100.0, "comm_us": 20.0,
            "raw_allreduce_us": 10.0, "comm_vs_allreduce": 2.0}
    double = dict(once, sites=["ep"], step_us=110.0, comm_us=35.0, comm_vs_allreduce=3.5)
    fused = [{"world": 4, "tokens": 512, "variant": v, "chosen": "twoshot", "sites": [], "step_us": s, "comm_us": c}
             for v, s, c in (("oneshot", 300.0, 40.0), ("twoshot", 280.0, 25.0), ("unfused", 310.0, 45.0),
                             ("default", 300.0, 40.0))]
    path = tmp_path / "m.json"
    path.write_text(json.dumps([double, once] + fused))
    assert tables.moe(str(path))[2].startswith(
        "| 2 | 64 | 100.0 µs | 110.0 µs | +10.0% | 20.0 µs | 35.0 µs | 10.0 µs | 2.00 |")
    assert len(tables.moe(str(path))) == 3
    assert tables.moe_fused(str(path))[2] == ("| 4 | 512 | twoshot | 280.0 µs | 310.0 µs | 9.7% | 300.0 µs | "
                                              "25.0 µs | 45.0 µs | 40.0 µs | 25.0 µs |")


def test_unreadable_results_exit_2_with_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    assert tables.main(["fused", str(bad)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "cannot read" in err[0] and "bad.json" in err[0]


def test_a_forced_table_makes_its_variant_the_choice_wherever_it_may_run(tmp_path):
    from bench import fused_force
    from sumonce.actors import fused_table as ft
    path = tmp_path / "f.json"
    assert fused_force.main(["twoshot", str(path), "--shapes", "4:4:64:float32"]) == 0
    table, shape = ft.load(path), ft.Shape(4, 4, 64, "float32")
    assert [table.choose(shape, t)[0] for t in (1, 4, 5, 2048)] == ["oneshot", "oneshot", "twoshot", "twoshot"]
    fused_force.main(["unfused", str(path), "--shapes", "4:4:64:float32"])
    assert {ft.load(path).choose(shape, t)[0] for t in ft.BUCKETS} == {"unfused"}
