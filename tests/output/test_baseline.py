"""`sumonce audit --baseline FILE`: fail only on sites whose verdict is new or changed against the
recorded baseline; moving code (other lines) changes nothing; a file that is not a baseline is a
one-line error."""
from __future__ import annotations

import json

import pytest

from .conftest import run


@pytest.fixture
def tree(tree):
    """The fixture checkout without its unparsable model file: a file the audit cannot read fails
    it with exit 4 whatever the baseline says (test_an_unread_file_fails_despite_the_baseline)."""
    (tree / "python" / "sglang" / "srt" / "models" / "broken.py").unlink()
    return tree


def shapes(tree):
    return tree / "python" / "sglang" / "srt" / "models" / "shapes.py"


def edit(tree, old: str, new: str) -> None:
    f = shapes(tree)
    text = f.read_text()
    assert old in text
    f.write_text(text.replace(old, new, 1))


def gate(tree, base) -> tuple[int, dict]:
    code, out = run(["audit", str(tree), "--json", "--baseline", str(base)])
    return code, json.loads(out)["baseline"]


def test_todays_tree_passes_against_its_own_baseline(tree, tmp_path):
    base = tmp_path / "b.json"
    assert run(["audit", str(tree)])[0] == 1  # without a baseline: 2 differ, 4 not understood
    assert run(["audit", str(tree), "--write-baseline", str(base)])[0] == 0
    code, result = gate(tree, base)
    assert code == 0 and result == {"file": str(base), "new": [], "changed": [], "fixed": [], "unaccounted": [],
                                    "passed": True}


def test_moved_lines_change_nothing(tree, tmp_path):
    base = tmp_path / "b.json"
    run(["audit", str(tree), "--write-baseline", str(base)])
    edit(tree, "# Synthetic", "# moved\n# by\n# three lines\n# Synthetic")
    assert gate(tree, base)[0] == 0


def test_a_changed_verdict_and_a_new_site_fail_a_fixed_one_is_listed(tree, tmp_path):
    base = tmp_path / "b.json"
    run(["audit", str(tree), "--write-baseline", str(base)])
    # EarlyReturn forgets V (equivalent -> differs); ElseBranch is gone (differs -> fixed);
    # a new block all-reduces in a loop (not understood, new)
    edit(tree, "if should_allreduce_fusion or use_reduce_scatter or should_use_dp_reduce_scatterv():",
         "if should_allreduce_fusion or use_reduce_scatter:")
    text = shapes(tree).read_text()
    start, end = text.index("class ElseBranch:"), text.index("class WrongPath:")
    loop = text[text.index("class InLoop:"):text.index("class BranchVariable:")]
    shapes(tree).write_text(text[:start] + text[end:] + "\n\n" + loop.replace("InLoop", "InLoopToo"))
    code, result = gate(tree, base)
    assert code == 1 and not result["passed"]
    assert [(c["method"], c["before"], c["after"]) for c in result["changed"]] == \
        [("EarlyReturn.forward", "equivalent", "differs")]
    assert [(c["method"], c["after"]) for c in result["new"]] == [("InLoopToo.forward", "not understood")]
    assert [(c["method"], c["before"], c["after"]) for c in result["fixed"]] == \
        [("ElseBranch.forward", "differs", None)]


def test_the_baseline_lines_in_the_log(tree, tmp_path, capsys):
    base = tmp_path / "b.json"
    run(["audit", str(tree), "--write-baseline", str(base)])
    edit(tree, "if should_allreduce_fusion or use_reduce_scatter or should_use_dp_reduce_scatterv():",
         "if should_allreduce_fusion or use_reduce_scatter:")
    code, out = run(["audit", str(tree), "--format", "plain", "--baseline", str(base)])
    assert code == 1
    assert "  changed  shapes:EarlyReturn.forward:tp/tp#1  equivalent -> differs" in out.splitlines()


def test_a_file_that_is_not_a_baseline_is_one_line(tree, tmp_path, capsys):
    bad = tmp_path / "bad.json"
    for text, words in (("{", "is not JSON"), ('{"kind": "prove", "sites": {}}', "is not a sumonce audit baseline"),
                        ('{"kind": "audit-baseline", "sites": {}, "schema_version": 99}', "schema_version 99")):
        bad.write_text(text)
        assert run(["audit", str(tree), "--baseline", str(bad)])[0] == 2
        err = capsys.readouterr().err
        assert words in err and err.count("\n") == 1 and err.startswith("sumonce audit: ")
    assert run(["audit", str(tree), "--baseline", str(tmp_path / "none.json")])[0] == 2
    assert "cannot read the baseline" in capsys.readouterr().err


def test_an_unread_file_fails_despite_the_baseline(tree, tmp_path):
    """Issue 15: the audit never passes what it did not read, baseline or not (exit 4)."""
    base = tmp_path / "b.json"
    assert run(["audit", str(tree), "--write-baseline", str(base)])[0] == 0
    (tree / "python" / "sglang" / "srt" / "models" / "broken.py").write_text("def broken(:\n    tensor_model_parallel_all_reduce(x)\n")
    code, result = gate(tree, base)
    assert code == 4 and result["passed"]
