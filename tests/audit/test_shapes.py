"""Each guard shape the extractor must follow, and each way it must refuse, on a synthetic file."""
from sumonce.audit.verdict import SiteVerdict

DIFFERS, EQUIVALENT, HELPER, NOT_UNDERSTOOD = (SiteVerdict.DIFFERS, SiteVerdict.EQUIVALENT, SiteVerdict.HELPER,
                                              SiteVerdict.NOT_UNDERSTOOD)


def by_class(rep):
    return {v.method.split(".")[0]: v for v in rep.sites}


def test_followed_shapes(fixture_report):
    v = by_class(fixture_report)
    assert v["NestedIf"].verdict == EQUIVALENT           # nested ifs, full legacy guard
    assert v["EarlyReturn"].verdict == EQUIVALENT        # early returns, negated
    assert v["StoredCondition"].verdict == HELPER        # helper result stored in a variable
    assert v["StoredCondition"].detail.startswith("passes R and F")


def test_else_branch_without_v_double_reduces(fixture_report):
    v = by_class(fixture_report)["ElseBranch"]
    assert v.verdict == DIFFERS and "summed twice" in v.detail and "--enable-dp-attention" in v.witness


def test_wrong_helper_arguments(fixture_report):
    v = by_class(fixture_report)["WrongPath"]
    assert v.verdict == DIFFERS
    assert "is_tp_path=True on the ep all-reduce" in v.detail and "F is not passed" in v.detail


def test_refusals(fixture_report):
    v = by_class(fixture_report)
    assert (v["InLoop"].verdict, v["InLoop"].detail) == (NOT_UNDERSTOOD, "all-reduce inside a loop")
    assert "assigned on some paths only" in v["BranchVariable"].detail
    assert "self.some_private_switch" in v["UnknownAtom"].detail
    assert v["SizeFromArgument"].verdict == NOT_UNDERSTOOD
    assert all(x.verdict == NOT_UNDERSTOOD for k, x in v.items()
               if k in ("InLoop", "BranchVariable", "UnknownAtom", "SizeFromArgument"))


def test_unparsable_file_is_reported_and_others_audited(fixture_report):
    assert [u["file"] for u in fixture_report.unparsed] == ["sglang/srt/models/broken.py"]
    assert len(fixture_report.sites) == 9


def test_fixture_helper_is_three_argument_and_equivalent(fixture_report):
    assert fixture_report.release.form.startswith("three-argument")
    assert all(c["verdict"] == "equivalent" for c in fixture_report.release.checks)
