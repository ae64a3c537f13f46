"""The JUnit XML report: one testsuite per playbook, one testcase per step instance; beside it,
one testsuite per instance with test results (the tests of its own JUnit files), named after it.

Shaped for the JUnit readers used on GitHub (dorny/test-reporter, mikepenz/action-junit-report,
EnricoMi/publish-unit-test-result-action) and valid against Jenkins' junit-10.xsd: `time` always
a plain decimal number of seconds, counts consistent with the children, a failure always with
text, a failure that continue-on-error allows a skip (a reader would fail a run that passed), only
the attributes the schema declares, and only characters XML 1.0 allows, whatever a step printed.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from datetime import UTC
from typing import TYPE_CHECKING, Any

import junit_xml

from ci_orchestrator.output.text import xml_safe
from ci_orchestrator.reporters.logs import clean, step_tail
from ci_orchestrator.reporters.writing import failure_message, tail_note, write_atomic
from ci_orchestrator.results import Status, TestOutcome

if TYPE_CHECKING:
    from collections.abc import Sequence
    from datetime import datetime
    from pathlib import Path

    from ci_orchestrator.results import RunResult, StepResult

_COUNTS = ("tests", "failures", "errors")
# The attributes junit-10.xsd declares for the elements written here: any other makes the file
# invalid (junit_xml adds `disabled`, a testcase's `file` and `timestamp`).
_SUITE = {
    "name", "tests", "failures", "errors", "group", "time", "skipped", "timestamp", "hostname", "id",
    "package", "file", "log", "url", "version",
}  # fmt: skip
_DECLARED = {
    "testsuites": {"name", "time", "tests", "failures", "errors"},
    "testsuite": _SUITE,
    "testcase": {"name", "time", "classname", "group"},
    "failure": {"type", "message"},
    "error": {"type", "message"},
    "skipped": {"type", "message"},
    "properties": set(),
    "property": {"name", "value"},
    "system-out": set(),
    "system-err": set(),
}


def write_junit(result: RunResult, path: Path | str) -> None:
    """Write the JUnit report of `result` to `path` (atomically, UTF-8, with an XML declaration)."""
    write_atomic(path, render_junit(result))


def render_junit(result: RunResult) -> str:
    """The JUnit XML document of `result`, as text.

    junit_xml builds the elements; the document around them is finished here because junit_xml
    leaves `time` out when it is zero, may print it with an exponent, and gives the root no name.
    """
    secrets = result.secrets
    suite_name = clean(result.playbook, secrets)
    file = xml_safe(result.playbook_path)
    cases = [_testcase(step, suite_name=suite_name, secrets=secrets) for step in result.steps]
    suite = junit_xml.TestSuite(
        suite_name,
        cases,
        timestamp=_timestamp(result.started),
        file=file,
        properties={"run_id": xml_safe(result.run_id), "status": result.status.value},
    )
    suite_element: ET.Element = suite.build_xml_doc()
    # The suite took the run's wall time, not the sum of its cases: steps ran side by side.
    suite_element.set("time", _seconds(result.wall_time))
    for case_element, step in zip(suite_element.iter("testcase"), result.steps, strict=True):
        case_element.set("time", _seconds(step.duration))
    _keep_declared(suite_element)
    root = ET.Element("testsuites", {"name": suite_name})
    suites = [suite_element]
    suites += [_tests_suite(step, secrets) for step in result.steps if step.tests is not None]
    for name in _COUNTS:
        root.set(name, str(sum(int(suite.get(name, "0")) for suite in suites)))
    root.set("time", suite_element.get("time", _seconds(0.0)))
    root.extend(suites)
    ET.indent(root)
    body = ET.tostring(root, encoding="unicode")
    return f'<?xml version="1.0" encoding="UTF-8"?>\n{body}\n'


def _testcase(step: StepResult, *, suite_name: str, secrets: Sequence[str]) -> Any:
    case = junit_xml.TestCase(clean(step.id, secrets), classname=suite_name, stdout=_notes(step) or None)
    if step.status.is_failure:
        # Never empty: a reader (dorny's jest-junit parser) fails on a failure without text.
        text = step_tail(step, secrets=secrets) or clean(tail_note(step), secrets)
        message = clean(failure_message(step), secrets)
        if step.continue_on_error:
            case.add_skipped_info(message=f"failed, allowed by continue-on-error: {message}", output=text)
        else:
            case.add_failure_info(message=message, output=text, failure_type=_FAILURE_TYPES[step.status])
    elif step.status is Status.SKIPPED:
        case.add_skipped_info(message=clean(step.reason or "skipped", secrets))
    return case


_FAILURE_TYPES = {Status.FAILED: "ExitCode", Status.TIMED_OUT: "Timeout", Status.CANCELLED: "Cancelled"}


def _tests_suite(step: StepResult, secrets: Sequence[str]) -> ET.Element:
    """The tests of an instance's own JUnit files, as a suite named after it. A run read from a
    run record keeps only the failing tests (the first ones): the suite lists those, and says so."""
    tests = step.tests
    assert tests is not None
    listed = tests.cases or tests.failures
    suite = ET.Element("testsuite", {"name": clean(step.id, secrets)})
    counts = dict.fromkeys(("failure", "error", "skipped"), 0)
    for case in listed:
        element = ET.SubElement(suite, "testcase", {"name": clean(case.name, secrets)})
        if case.classname:
            element.set("classname", clean(case.classname, secrets))
        element.set("time", _seconds(case.time))
        kind = _ELEMENTS.get(case.outcome)
        if kind is None:
            continue
        message = clean(case.message, secrets)
        if kind != "skipped" and step.continue_on_error:  # as the instance's own testcase
            kind, message = (
                "skipped",
                f"failed, allowed by continue-on-error: {message or case.outcome.value}",
            )
        counts[kind] += 1
        detail = ET.SubElement(element, kind, {"message": message} if message else {})
        if case.kind:
            detail.set("type", clean(case.kind, secrets))
        if case.failed:  # never empty: a reader fails on a failure without text
            detail.text = clean(case.text, secrets) or message or case.outcome.value
    suite.set("tests", str(len(listed)))
    suite.set("failures", str(counts["failure"]))
    suite.set("errors", str(counts["error"]))
    suite.set("skipped", str(counts["skipped"]))
    suite.set("time", _seconds(sum(case.time for case in listed)))
    if step.started is not None:
        suite.set("timestamp", _timestamp(step.started) or "")
    if len(listed) < tests.total:
        note = ET.SubElement(suite, "system-out")
        note.text = (
            f"{tests.total} tests ran: {tests.passed} passed, {tests.failed} failed, {tests.skipped} skipped."
            f" Listed here: {len(listed)}"
            + (" (a run record keeps the first failing tests only)." if not tests.cases else ".")
        )
    return suite


_ELEMENTS = {TestOutcome.FAILED: "failure", TestOutcome.ERROR: "error", TestOutcome.SKIPPED: "skipped"}


def _notes(step: StepResult) -> str:
    """What a reader of the report would want to know beyond the status, one fact per line."""
    notes: list[str] = []
    if step.status is Status.CACHED or step.cached:
        notes.append("cached: taken from the step cache, not run")
    if step.status.is_failure and step.continue_on_error:
        notes.append("continue-on-error: this failure does not fail the run")
    if step.attempts > 1:
        notes.append(f"attempts: {step.attempts}")
    return "\n".join(notes)


def _keep_declared(element: ET.Element) -> None:
    for node in element.iter():
        declared = _DECLARED.get(node.tag, set())
        for name in [name for name in node.attrib if name not in declared]:
            del node.attrib[name]


def _seconds(value: float) -> str:
    """Seconds as readers parse them: plain decimal with a dot, never an exponent, at most three
    decimals (junit-10.xsd's SUREFIRE_TIME)."""
    return f"{value:.3f}" if math.isfinite(value) and value > 0 else "0.000"


def _timestamp(moment: datetime | None) -> str | None:
    """ISO 8601 in UTC without a zone, as JUnit readers expect."""
    if moment is None:
        return None
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.replace(tzinfo=None).isoformat(timespec="seconds")
