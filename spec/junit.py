"""`sumonce prove --junit-xml FILE`: the property table as JUnit XML, one testcase per property
(classname = its kind), for CI systems that display test reports.

A property whose verdict is the expected one passes, a refuted-as-expected one included (its
counterexample goes to the testcase's system-out); any other verdict is a <failure>, or an
<error> when z3 answered unknown (a failure too, never a pass).
"""
from __future__ import annotations

import xml.etree.ElementTree as ET

from .check import Result
from .output import counterexample_lines, verdict_text
from .solve import Status


def testcase(r: Result) -> ET.Element:
    case = ET.Element("testcase", classname=f"sumonce.prove.{r.prop.kind.value}", name=r.prop.name,
                      time=f"{r.seconds:.4f}")
    if not r.passed:
        tag = "error" if r.status == Status.UNKNOWN else "failure"
        bad = ET.SubElement(case, tag, type=r.status.value,
                            message=f"expected {r.prop.expect.value}, got {verdict_text(r)}")
        bad.text = "\n".join([r.prop.meaning, r.detail] + (counterexample_lines(r) if r.counterexample else []))
    elif r.counterexample:
        ET.SubElement(case, "system-out").text = "\n".join(counterexample_lines(r))
    return case


def junit_tree(results: list[Result], wall: float) -> ET.ElementTree:
    failures = sum(1 for r in results if not r.passed and r.status != Status.UNKNOWN)
    errors = sum(1 for r in results if not r.passed and r.status == Status.UNKNOWN)
    attrs = {"name": "sumonce prove", "tests": str(len(results)), "failures": str(failures),
             "errors": str(errors), "skipped": "0", "time": f"{wall:.3f}"}
    suites = ET.Element("testsuites", attrs)
    suite = ET.SubElement(suites, "testsuite", attrs)
    suite.extend(testcase(r) for r in results)
    return ET.ElementTree(suites)


def write_junit(results: list[Result], wall: float, path: str) -> None:
    tree = junit_tree(results, wall)
    ET.indent(tree)
    tree.write(path, encoding="utf-8", xml_declaration=True)
