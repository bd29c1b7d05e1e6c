"""`sumonce prove --junit-xml FILE`: one testcase per property, read back with junitparser as CI
systems read it; a refutation that is expected passes, a verdict that is not as expected fails."""
from __future__ import annotations

import xml.etree.ElementTree as ET

from junitparser import Failure, JUnitXml


def cases(xml):
    suites = list(JUnitXml.fromfile(str(xml)))
    assert len(suites) == 1
    return suites[0], {c.name: c for c in suites[0]}


def test_one_testcase_per_property_and_the_counts_add_up(proved):
    code, doc, xml = proved
    suite, by_name = cases(xml)
    assert len(by_name) == len(doc["results"]) == suite.tests
    assert suite.failures == 0 and suite.errors == 0 and code == 0
    for r in doc["results"]:
        assert by_name[r["property"]].classname == f"sumonce.prove.{r['kind']}"


def test_a_refuted_as_expected_property_passes_with_its_counterexample(proved):
    _, doc, xml = proved
    _, by_name = cases(xml)
    expected = [r for r in doc["results"] if r["expect"] == "refuted" and r["verdict"] == "refuted"]
    assert expected
    for r in expected:
        case = by_name[r["property"]]
        assert case.is_passed and r["counterexample"]["flags"] in case.system_out


def test_a_property_not_as_expected_fails(not_as_expected):
    code, doc, xml = not_as_expected
    suite, by_name = cases(xml)
    failed = [r for r in doc["results"] if not r["passed"]]
    assert code == 1 and failed and suite.failures == len(failed)
    for r in failed:
        (failure,) = by_name[r["property"]].result
        assert isinstance(failure, Failure) and failure.type == "refuted"
        assert "expected holds" in failure.message and r["counterexample"]["flags"] in failure.text


def test_the_xml_structure(proved):
    _, doc, xml = proved
    root = ET.parse(xml).getroot()
    assert root.tag == "testsuites" and [s.tag for s in root] == ["testsuite"]
    for case in root.iter("testcase"):
        assert set(case.attrib) == {"classname", "name", "time"} and float(case.get("time")) >= 0
        assert {child.tag for child in case} <= {"failure", "error", "system-out"}
