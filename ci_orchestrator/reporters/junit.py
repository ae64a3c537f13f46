"""The JUnit XML report: one testsuite per playbook, one testcase per step instance.

Shaped for the JUnit readers used on GitHub (dorny/test-reporter, mikepenz/action-junit-report,
EnricoMi/publish-unit-test-result-action): `time` always a plain decimal number of seconds, counts
consistent with the children, and only characters XML 1.0 allows, whatever a step printed.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from datetime import UTC
from typing import TYPE_CHECKING, Any

import junit_xml

from ci_orchestrator.reporters.logs import clean, step_tail, xml_safe
from ci_orchestrator.reporters.writing import failure_message, write_atomic
from ci_orchestrator.results import Status

if TYPE_CHECKING:
    from collections.abc import Sequence
    from datetime import datetime
    from pathlib import Path

    from ci_orchestrator.results import RunResult, StepResult

TAIL_LINES = 50
_COUNTS = ("tests", "failures", "errors", "skipped", "disabled")


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
    cases = [_testcase(step, suite_name=suite_name, file=file, secrets=secrets) for step in result.steps]
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
    for case_element in suite_element.iter("testcase"):
        case_element.attrib.setdefault("time", _seconds(0.0))
    root = ET.Element("testsuites", {"name": suite_name})
    for name in _COUNTS:
        root.set(name, suite_element.get(name, "0"))
    root.set("time", suite_element.get("time", _seconds(0.0)))
    root.append(suite_element)
    ET.indent(root)
    body = ET.tostring(root, encoding="unicode")
    return f'<?xml version="1.0" encoding="UTF-8"?>\n{body}\n'


def _testcase(step: StepResult, *, suite_name: str, file: str, secrets: Sequence[str]) -> Any:
    case = junit_xml.TestCase(
        clean(step.id, secrets),
        classname=suite_name,
        elapsed_sec=float(_seconds(step.duration)),
        timestamp=_timestamp(step.started) if step.started else None,
        file=file,
        stdout=_notes(step) or None,
    )
    if step.status.is_failure:
        tail = step_tail(step, secrets=secrets, lines=TAIL_LINES)
        case.add_failure_info(
            message=clean(failure_message(step), secrets),
            output=tail or None,
            failure_type=_FAILURE_TYPES[step.status],
        )
    elif step.status is Status.SKIPPED:
        case.add_skipped_info(message=clean(step.reason or "skipped", secrets))
    return case


_FAILURE_TYPES = {Status.FAILED: "ExitCode", Status.TIMED_OUT: "Timeout", Status.CANCELLED: "Cancelled"}


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


def _seconds(value: float) -> str:
    """Seconds as readers parse them: plain decimal with a dot, never an exponent."""
    return f"{value:.6f}" if math.isfinite(value) and value > 0 else "0.000000"


def _timestamp(moment: datetime | None) -> str | None:
    """ISO 8601 in UTC without a zone, as JUnit readers expect."""
    if moment is None:
        return None
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.replace(tzinfo=None).isoformat(timespec="seconds")
