"""`sumonce prove --catalogue my_models.py`: a model kept outside the package is proved like a
catalogued one, without editing the package (its catalogue and the tests pinned to SGLang's counts
stay as they are); a file that cannot be used is one line and exit 2."""
from __future__ import annotations

import contextlib
import io
import json

import pytest

from sumonce.proto.catalogue import MODELS
from sumonce.spec.cli import prove_main

MY_MODELS = '''
from sumonce.proto import guards
from sumonce.proto.catalogue import FUSING
from sumonce.proto.sites import Group, Model, Path, Site, Version


def forgot_v(c, F, R):
    """A hand-written guard that forgot DP attention's reduce-scatterv."""
    return c.tp_size > 1 and not F and not R


def toy(name, legacy):
    site = Site(name, "ToyMoE.forward", Path.TP, Group.TP, receives_F=True, receives_R=True,
                guards={Version.LEGACY: legacy, Version.HELPER: guards.helper_tp_fr})
    return Model(name, ("ToyMoeForCausalLM",), FUSING, ("ToyMoE.forward",), (), (site,))


MODELS = (toy("toy_good", guards.legacy_full_tp), toy("toy_forgot_v", forgot_v))
'''


def prove(*argv) -> tuple[int, dict]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = prove_main(["--json", *argv])
    return code, json.loads(out.getvalue())


@pytest.fixture
def my_models(tmp_path):
    f = tmp_path / "my_models.py"
    f.write_text(MY_MODELS)
    return f


def test_out_of_tree_models_are_proved(my_models):
    code, doc = prove("--catalogue", str(my_models), "--only", "*toy_*")
    rows = {r["property"]: r for r in doc["results"]}
    assert rows["exactly-once:toy_good@helper"]["passed"] and rows["exactly-once:toy_good@legacy"]["passed"]
    assert rows["exactly-once:toy_forgot_v@helper"]["passed"]
    bad = rows["exactly-once:toy_forgot_v@legacy"]
    assert bad["verdict"] == "refuted" and not bad["passed"] and code == 1
    assert bad["counterexample"]["flags"] == ("--tp-size 2 --dp-size 2 --ep-size 2 --enable-dp-attention "
                                              "--architecture ToyMoeForCausalLM")
    assert rows["site-equivalent:toy_good:ToyMoE.forward:tp"]["passed"]


def test_the_package_catalogue_is_untouched(my_models):
    before = len(MODELS)
    prove("--catalogue", str(my_models), "--only", "exactly-once:toy_good@*")
    assert len(MODELS) == before and "toy_good" not in {m.name for m in MODELS}


@pytest.mark.parametrize("text, words", [
    ("raise RuntimeError('nope')", "importing it failed: RuntimeError: nope"),
    ("MODELS = (1, 2)", "MODELS must be a non-empty tuple"),
    ("X = 1", "MODELS must be a non-empty tuple"),
    ("from sumonce.proto.catalogue import MODELS as _M\nMODELS = _M[:1]", "already in the package's catalogue"),
])
def test_a_catalogue_that_cannot_be_used_is_one_line(tmp_path, capsys, text, words):
    f = tmp_path / "bad.py"
    f.write_text(text)
    assert prove_main(["--catalogue", str(f)]) == 2
    err = capsys.readouterr().err
    assert words in err and err.count("\n") == 1 and err.startswith("sumonce prove: --catalogue ")


def test_a_missing_catalogue_file(tmp_path, capsys):
    assert prove_main(["--catalogue", str(tmp_path / "none.py")]) == 2
    assert "not a Python file" in capsys.readouterr().err
