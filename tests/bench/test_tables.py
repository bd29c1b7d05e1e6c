"""bench/tables.py turns the GPU benchmarks' JSON into PERF.md's tables; CPU only."""
import json

from bench import tables


def _row(world, hidden, tokens, unfused, fused):
    return {"kind": "fused-vs-unfused", "world": world, "hidden": hidden, "tokens": tokens,
            "unfused_us": unfused, "fused_us": fused, "speedup": unfused / fused,
            "allreduce_us": 10.0, "busbw_GBps": 1.0}


def test_goal_names_the_last_token_count_that_meets_it(tmp_path):
    rows = [_row(4, 2048, t, 20.0, f) for t, f in ((1, 5.0), (32, 8.0), (64, 10.5), (128, 9.0), (256, 30.0))]
    path = tmp_path / "c.json"
    path.write_text(json.dumps([{"world": 4, "rows": rows}]))
    lines = tables.goal(str(path))
    # 64 tokens: 20 / 10.5 = 1.90 < 2, so the goal holds up to 32 tokens although 128 meets it again;
    # 256 tokens is outside the goal's range and does not lower the minimum.
    assert lines[2] == "| 4 | 2048 | 1.90× | 32 tokens |"


def test_moe_table_pairs_exactly_once_with_the_double_sum(tmp_path):
    once = {"world": 2, "tokens": 64, "sites": [], "step_us": 100.0, "comm_us": 20.0,
            "raw_allreduce_us": 10.0, "comm_vs_allreduce": 2.0}
    double = dict(once, sites=["ep"], step_us=110.0, comm_us=35.0, comm_vs_allreduce=3.5)
    path = tmp_path / "m.json"
    path.write_text(json.dumps([double, once]))
    row = tables.moe(str(path))[2]
    assert row.startswith("| 2 | 64 | 100.0 µs | 110.0 µs | +10.0% | 20.0 µs | 35.0 µs | 10.0 µs | 2.00 |")


def test_unreadable_results_exit_2_with_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    assert tables.main(["fused", str(bad)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "cannot read" in err[0] and "bad.json" in err[0]
