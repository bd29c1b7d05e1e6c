"""The era is read from the code (audit/era.py), never from a version: every cached registry
release is detected as the era the research gives it (proto.eras.era_of_release), each synthetic
tree of tests/audit/fixtures/eras/ as the era it is named after, and a tree of no known shape is a
one-line error (exit 2) naming what was found."""
import subprocess
import sys

import pytest

from sumonce.audit.era import detect
from sumonce.audit.source import TargetError, cache_dir, load
from sumonce.proto.eras import RELEASE_ERA, Era, era_of_release

from .conftest import FIXTURES

ERA_TREES = sorted(p for p in (FIXTURES / "eras").iterdir() if not p.name.startswith("none-"))
NO_SHAPE = sorted(p for p in (FIXTURES / "eras").iterdir() if p.name.startswith("none-"))


@pytest.mark.sglang
@pytest.mark.parametrize("version", sorted(RELEASE_ERA))
def test_every_release_is_detected_as_its_era(version):
    if not list(cache_dir().glob(f"sglang-{version}-*.whl")):
        pytest.skip(f"sglang=={version} not cached")
    era, reason = detect(load(f"sglang=={version}"))
    assert era == era_of_release(version)
    assert reason.startswith(f"era {era.value} (")


def test_a_tree_per_shape_covers_every_era():
    assert {Era(p.name) for p in ERA_TREES} == set(Era)


@pytest.mark.parametrize("tree", ERA_TREES, ids=lambda p: p.name)
def test_each_shape_is_its_era(tree):
    era, reason = detect(load(str(tree)))
    assert era == Era(tree.name), reason


def test_reason_names_what_decided():
    _era, reason = detect(load(str(FIXTURES / "eras" / "0.5.23")))
    assert "one-argument helper" in reason and "ctx reads mlp_reduce_scatter only" in reason
    assert "sum_post_experts_output" in reason
    _era, reason = detect(load(str(FIXTURES / "eras" / "0.5.21")))
    assert "ctx reads fuse_mlp_allreduce and mlp_reduce_scatter" in reason


@pytest.mark.parametrize("tree", NO_SHAPE, ids=lambda p: p.name)
def test_no_known_shape_is_an_error(tree):
    with pytest.raises(TargetError) as e:
        detect(load(str(tree)))
    msg = str(e.value)
    assert "\n" not in msg and "shapes allowed" in msg
    assert ("found" in msg) or ("utils.py is missing" in msg)


def test_no_known_shape_exits_2_with_one_line():
    tree = FIXTURES / "eras" / "none-other-signature"
    out = subprocess.run([sys.executable, "-m", "sumonce.cli", "audit", str(tree)], capture_output=True, text=True)
    assert out.returncode == 2
    assert out.stderr.count("\n") == 1 and "helper(is_tp_path, reason)" in out.stderr
    assert "Traceback" not in out.stderr


@pytest.mark.parametrize("tree", ERA_TREES, ids=lambda p: p.name)
def test_each_shapes_predicates_are_its_eras(tree):
    """The synthetic utils, written from docs/ERAS.md, read in the detected era: every predicate
    (helper, V, complete, the boundary's sum) is equivalent to proto's for that era."""
    from sumonce.audit.audit import audit
    rep = audit(load(str(tree)))
    verdicts = {c["name"]: c["verdict"] for c in rep.release.checks}
    assert set(verdicts.values()) <= {"equivalent", "absent"}, verdicts
    assert rep.era_reason.startswith(f"era {tree.name} (")
