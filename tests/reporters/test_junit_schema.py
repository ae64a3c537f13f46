"""The JUnit report against the rules of Jenkins' junit-10.xsd (jenkinsci/xunit-plugin, the
common JUnit schema), written out here as the elements, attributes and patterns it declares: an
attribute or child it does not declare makes a file invalid. And what JUnit readers on GitHub
need beyond the schema: a failure always has text; a failure that continue-on-error allows is
no failure for them."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from typing import TYPE_CHECKING

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ci_orchestrator.reporters.junit import render_junit
from ci_orchestrator.results import RunStatus, Status, StepResult
from tests.helpers import run_result, step_result

if TYPE_CHECKING:
    from pathlib import Path

# junit-10.xsd's SUREFIRE_TIME: digits (optionally grouped by commas), at most 3 decimals.
SUREFIRE_TIME = re.compile(r"(([0-9]{0,3},)*[0-9]{3}|[0-9]{0,3})*(\.[0-9]{0,3})?")
RESULT = {"attributes": {"type", "message"}, "required": set(), "children": set()}
RERUN = {
    "attributes": {"type", "message"},
    "required": {"type"},
    "children": {"stackTrace", "system-out", "system-err"},
}
SUITE_ATTRIBUTES = "name tests failures errors group time skipped timestamp hostname id package file log url"
SUITE_ATTRIBUTES += " version"
CASE_CHILDREN = "skipped error failure rerunFailure rerunError flakyFailure flakyError system-out system-err"
TEXT_ONLY = {"attributes": set(), "required": set(), "children": set()}
SCHEMA: dict[str, dict[str, set[str]]] = {
    "testsuites": {
        "attributes": {"name", "time", "tests", "failures", "errors"},
        "required": set(),
        "children": {"testsuite"},
    },
    "testsuite": {
        "attributes": set(SUITE_ATTRIBUTES.split()),
        "required": {"name", "tests", "failures", "errors"},
        "children": {"testsuite", "properties", "testcase", "system-out", "system-err"},
    },
    "properties": {"attributes": set(), "required": set(), "children": {"property"}},
    "property": {"attributes": {"name", "value"}, "required": {"name", "value"}, "children": set()},
    "testcase": {
        "attributes": {"name", "time", "classname", "group"},
        "required": {"name"},
        "children": set(CASE_CHILDREN.split()),
    },
    "failure": RESULT,
    "error": RESULT,
    "skipped": RESULT,
    "rerunFailure": RERUN,
    "rerunError": RERUN,
    "flakyFailure": RERUN,
    "flakyError": RERUN,
    "system-out": TEXT_ONLY,
    "system-err": TEXT_ONLY,
    "stackTrace": TEXT_ONLY,
}
ELEMENT_ONLY = {"testsuites", "testsuite", "testcase", "properties", "property"}  # no text in them


def schema_problems(document: str) -> list[str]:
    """What junit-10.xsd would refuse in `document`."""
    root = ET.fromstring(document.encode("utf-8"))
    problems = [] if root.tag in ("testsuites", "testsuite") else [f"root <{root.tag}>"]

    def check(element: ET.Element, where: str) -> None:
        rule = SCHEMA.get(element.tag)
        if rule is None:
            problems.append(f"{where}: unknown element")
            return
        for name in set(element.attrib) - rule["attributes"]:
            problems.append(f"{where}: attribute {name!r} not allowed")
        for name in rule["required"] - set(element.attrib):
            problems.append(f"{where}: attribute {name!r} required")
        time = element.get("time") if element.tag in ("testsuite", "testsuites") else None
        if time is not None and not SUREFIRE_TIME.fullmatch(time):
            problems.append(f"{where}: time {element.get('time')!r} is no SUREFIRE_TIME")
        children = list(element)
        if element.tag in ELEMENT_ONLY and any(
            (text or "").strip() for text in (element.text, *(child.tail for child in children))
        ):
            problems.append(f"{where}: text not allowed")
        for child in children:
            if child.tag not in rule["children"]:
                problems.append(f"{where}: <{child.tag}> not allowed in <{element.tag}>")
            else:
                check(child, f"{where}/{child.tag}")

    check(root, root.tag)
    return problems


def step(step_id: str, status: Status, **fields: object) -> StepResult:
    return step_result(step_id, status, **fields)  # type: ignore[arg-type]


def every_kind() -> list[StepResult]:
    return [
        step("ok", Status.PASSED),
        step("broken", Status.FAILED, log_tail="the cause"),
        step("silent", Status.FAILED, log_tail=""),  # printed nothing
        step("elsewhere", Status.FAILED, log="logs/elsewhere.log"),  # a record without its tail
        step("slow", Status.TIMED_OUT, duration=1234.56789, reason="timed out", log_tail="..."),
        step("stopped", Status.CANCELLED, reason="cancelled by SIGINT"),
        step("allowed", Status.FAILED, continue_on_error=True, log_tail="flaky thing broke"),
        step("later", Status.SKIPPED, reason="needs 'broken' failed"),
        step("build", Status.CACHED, cached=True),
        step("again", Status.PASSED, attempts=2),
    ]


def test_the_report_is_valid_against_junit_10_xsd() -> None:
    document = render_junit(run_result(*every_kind(), seconds=3600.123456))
    assert schema_problems(document) == []


def test_the_schema_check_finds_what_the_schema_refuses() -> None:
    bad = (
        '<testsuites skipped="1" time="1.123456"><testsuite name="x" tests="1" failures="0">'
        '<testcase name="a" file="f"><failure><b/></failure></testcase></testsuite></testsuites>'
    )
    problems = schema_problems(bad)
    assert any("'skipped' not allowed" in problem for problem in problems)
    assert any("no SUREFIRE_TIME" in problem for problem in problems)
    assert any("'errors' required" in problem for problem in problems)
    assert any("'file' not allowed" in problem for problem in problems)
    assert any("<b> not allowed" in problem for problem in problems)


def test_a_failure_allowed_by_continue_on_error_is_skipped_saying_so() -> None:
    root = ET.fromstring(render_junit(run_result(*every_kind())))
    cases = {case.get("name"): case for case in root.iter("testcase")}
    allowed = cases["allowed"]
    assert allowed.find("failure") is None and allowed.find("error") is None
    skipped = allowed.find("skipped")
    assert skipped is not None
    message = skipped.get("message", "")
    assert "failed" in message and "continue-on-error" in message and "exit code 1" in message
    assert "flaky thing broke" in (skipped.text or "")
    suite = root.find("testsuite")
    assert suite is not None
    assert (suite.get("failures"), suite.get("skipped")) == ("5", "2")
    assert root.get("failures") == "5"


def test_a_failure_always_has_text() -> None:
    root = ET.fromstring(render_junit(run_result(*every_kind())))
    for case in root.iter("testcase"):
        for failure in case.iter("failure"):
            assert (failure.text or "").strip(), case.get("name")
    cases = {case.get("name"): case.find("failure") for case in root.iter("testcase")}
    assert "printed nothing" in (cases["silent"].text or "")  # type: ignore[union-attr]
    assert "logs/elsewhere.log" in (cases["elsewhere"].text or "")  # type: ignore[union-attr]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(max_size=30), seconds=st.floats(min_value=0, max_value=1e7))
def test_valid_whatever_the_names_and_times(workdir: Path, text: str, seconds: float) -> None:
    steps = [
        step(text or "x", Status.FAILED, reason=text, duration=seconds, log_tail=text),
        step(f"s{text}", Status.SKIPPED, reason=text),
    ]
    result = run_result(*steps, status=RunStatus.FAILED, seconds=seconds, playbook=text or "p")
    document = render_junit(result)
    assert schema_problems(document) == []
