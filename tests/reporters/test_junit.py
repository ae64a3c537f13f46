"""The JUnit report, read back as the GitHub JUnit readers do: right counts, always well-formed."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from typing import TYPE_CHECKING, Any

import junitparser
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ci_orchestrator.reporters.junit import render_junit, write_junit
from ci_orchestrator.results import RunResult, RunStats, RunStatus, Status
from tests.helpers import run_result, step_result

if TYPE_CHECKING:
    from pathlib import Path

HOSTILE = b'\x1b[31mERROR\x1b[0m \x00NUL ]]> <tag> & "q" \xff\xfe\xc3( \x07\x0b\x0c\x1f bell token=hunter2\n'


# As a failed run hands its result to the reports.
REPORTED: dict[str, Any] = {
    "status": RunStatus.FAILED,
    "stats": RunStats(serial_duration=8.0, speedup=1.6),
    "with_tails": True,
}


def every_status(log: str | None) -> RunResult:
    return run_result(
        step_result("lint", Status.PASSED, exit_code=0),
        step_result("test (3.12, <&>)", Status.FAILED, exit_code=3, log=log, matrix={"python": "3.12"}),
        step_result("slow", Status.TIMED_OUT, exit_code=124, duration=30.2, log=log, reason="timed out"),
        step_result("stopped", Status.CANCELLED, reason="cancelled by SIGINT", log=log),
        step_result("deploy", Status.SKIPPED, reason="needs 'test (3.12, <&>)' failed\x00"),
        step_result("build", Status.CACHED, cached=True),
        secrets=("hunter2",),
        **REPORTED,
    )


def test_counts_per_status_read_back_by_junitparser(workdir: Path) -> None:
    (workdir / "step.log").write_bytes(HOSTILE * 20)
    write_junit(every_status("step.log"), "reports/junit.xml")

    xml = junitparser.JUnitXml.fromfile("reports/junit.xml")
    suites = list(xml) if isinstance(xml, junitparser.JUnitXml) else [xml]

    assert [suite.name for suite in suites] == ["ci"]
    suite = suites[0]
    assert (suite.tests, suite.failures, suite.errors, suite.skipped) == (6, 3, 0, 1)
    outcome = {case.name: [type(r).__name__ for r in case.result] for case in suite}
    assert outcome == {
        "lint": [],
        "test (3.12, <&>)": ["Failure"],
        "slow": ["Failure"],
        "stopped": ["Failure"],
        "deploy": ["Skipped"],
        "build": [],
    }
    assert {case.classname for case in suite} == {"ci"}


def test_messages_and_log_tails_are_clean(workdir: Path) -> None:
    (workdir / "step.log").write_bytes(HOSTILE * 20)
    write_junit(every_status("step.log"), "junit.xml")

    raw = (workdir / "junit.xml").read_bytes()
    root = ET.fromstring(raw)
    cases = {case.get("name"): case for case in root.iter("testcase")}
    messages = {name: case[0].get("message") for name, case in cases.items() if len(case)}

    assert raw.startswith(b'<?xml version="1.0" encoding="UTF-8"?>')
    assert messages["test (3.12, <&>)"] == "exit code 3"
    assert messages["slow"] == "timed out after 30s (exit code 124)"
    assert messages["stopped"] == "cancelled by SIGINT"
    assert messages["deploy"] == "needs 'test (3.12, <&>)' failed"
    failure = cases["test (3.12, <&>)"].find("failure")
    assert failure is not None and failure.text is not None
    assert 'ERROR NUL ]]> <tag> & "q"' in failure.text
    assert "token=***" in failure.text
    assert b"hunter2" not in raw
    assert b"\x1b" not in raw and b"\x00" not in raw


def test_time_is_always_plain_decimal_seconds(workdir: Path) -> None:
    result = every_status(None)
    tiny = run_result(
        step_result("quick", Status.PASSED, duration=0.00001), step_result("none", Status.SKIPPED), **REPORTED
    )
    for document in (render_junit(result), render_junit(tiny)):
        times = re.findall(r'\btime="([^"]*)"', document)
        assert times
        assert all(re.fullmatch(r"\d+\.\d+", value) for value in times), times
    case_count = len(re.findall(r"<testcase ", render_junit(result)))
    assert case_count == len(re.findall(r'<testcase [^>]*time="', render_junit(result)))


def test_cached_is_noted_and_the_playbook_file_given(workdir: Path) -> None:
    root = ET.fromstring(render_junit(every_status(None)))
    build = next(case for case in root.iter("testcase") if case.get("name") == "build")

    assert build.find("failure") is None and build.find("skipped") is None
    out = build.find("system-out")
    assert out is not None and "cached" in (out.text or "")
    # On the suite: junit-10.xsd declares no `file` on a testcase (readers fall back to the suite's).
    suite = root.find("testsuite")
    assert suite is not None and suite.get("file") == "playbooks/ci.yml"


def test_a_5_mb_log_gives_a_small_report(workdir: Path) -> None:
    line = b"\x1b[33mwarning\x1b[0m: something noisy \xff ]]>\n"
    (workdir / "huge.log").write_bytes(line * (5 * 1024 * 1024 // len(line)) + b"FATAL: the cause\n")
    write_junit(
        run_result(step_result("big", Status.FAILED, exit_code=1, log="huge.log"), **REPORTED), "junit.xml"
    )

    assert (workdir / "junit.xml").stat().st_size < 128 * 1024
    failure = ET.parse(workdir / "junit.xml").getroot().find(".//failure")
    assert failure is not None and (failure.text or "").endswith("FATAL: the cause")


def test_rewriting_replaces_the_file_and_leaves_no_temporary_files(workdir: Path) -> None:
    (workdir / "out").mkdir()
    (workdir / "out" / "junit.xml").write_text("old and broken <")
    write_junit(every_status(None), workdir / "out" / "junit.xml")

    assert [path.name for path in (workdir / "out").iterdir()] == ["junit.xml"]
    ET.parse(workdir / "out" / "junit.xml")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(log=st.binary(max_size=400), text=st.text(max_size=40))
def test_well_formed_whatever_a_step_printed(workdir: Path, log: bytes, text: str) -> None:
    (workdir / "any.log").write_bytes(log)
    result = run_result(
        step_result(text or "x", Status.FAILED, exit_code=1, log="any.log", reason=text),
        step_result(f"s{text}", Status.SKIPPED, reason=text),
        **REPORTED,
    )
    document = render_junit(result)

    root = ET.fromstring(document.encode("utf-8"))
    assert root.find("testsuite") is not None
    assert len(list(root.iter("testcase"))) == 2
