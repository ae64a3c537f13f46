"""The tests of the steps' own JUnit files in each report: the run's JUnit file (a suite per
instance beside the playbook's, valid against junit-10.xsd whatever the names), the summary
(failing tests under their step, within GitHub's 1 MiB), run.json (written, read back, checked,
merged) and GitHub's annotations (sharing the cap with everything else)."""

from __future__ import annotations

import dataclasses
import json
import xml.etree.ElementTree as ET
from typing import TYPE_CHECKING

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ci_orchestrator.errors import UsageError
from ci_orchestrator.output.workflow_commands import Command
from ci_orchestrator.reporters.github import WorkflowCommands
from ci_orchestrator.reporters.junit import render_junit
from ci_orchestrator.reporters.markdown import render_summary
from ci_orchestrator.reporters.merging import merge_results
from ci_orchestrator.reporters.run_record import read_run_record, record, write_run_record
from ci_orchestrator.results import RunStatus, Status, TestCaseResult, TestOutcome, TestResults
from tests.helpers import run_result, step_result
from tests.reporters.test_junit_schema import schema_problems

if TYPE_CHECKING:
    from pathlib import Path


def case(name: str, outcome: TestOutcome = TestOutcome.PASSED, **fields: object) -> TestCaseResult:
    fields.setdefault("classname", "tests.test_app")
    if outcome in (TestOutcome.FAILED, TestOutcome.ERROR):
        fields.setdefault("message", f"{name} broke")
        fields.setdefault("text", f"Traceback\n  assert {name}\nAssertionError")
    return TestCaseResult(name=name, outcome=outcome, time=0.25, **fields)  # type: ignore[arg-type]


def results_of(*cases: TestCaseResult) -> TestResults:
    return TestResults.of(cases)


SOME_TESTS = results_of(
    case("test_ok"),
    case("test_broken", TestOutcome.FAILED, file="tests/test_app.py", line=12),
    case("test_setup", TestOutcome.ERROR),
    case("test_later", TestOutcome.SKIPPED, message="not today"),
)


def test_the_tests_of_an_instance_are_a_suite_beside_the_playbooks() -> None:
    steps = [
        step_result("unit (3.12)", Status.FAILED, log_tail="1 failed", tests=SOME_TESTS),
        step_result("lint", Status.PASSED),
    ]
    document = render_junit(run_result(*steps))
    assert schema_problems(document) == []
    root = ET.fromstring(document)
    playbook_suite, tests_suite = root.findall("testsuite")
    own = [element.get("name") for element in playbook_suite.iter("testcase")]
    assert own == ["unit (3.12)", "lint"]  # its own testcase stays
    assert tests_suite.get("name") == "unit (3.12)"
    counts = {name: tests_suite.get(name) for name in ("tests", "failures", "errors", "skipped")}
    assert counts == {"tests": "4", "failures": "1", "errors": "1", "skipped": "1"}
    assert root.get("tests") == "6" and root.get("failures") == "2" and root.get("errors") == "1"
    cases = {element.get("name"): element for element in tests_suite.iter("testcase")}
    broken = cases["test_broken"].find("failure")
    assert broken is not None and broken.get("message") == "test_broken broke"
    assert "assert test_broken" in (broken.text or "")
    assert cases["test_ok"].get("classname") == "tests.test_app"


def test_an_instance_that_may_fail_has_its_failing_tests_skipped_saying_so() -> None:
    step = step_result("flaky", Status.FAILED, continue_on_error=True, log_tail="", tests=SOME_TESTS)
    document = render_junit(run_result(step))
    assert schema_problems(document) == []
    suite = ET.fromstring(document).findall("testsuite")[1]
    assert suite.find(".//failure") is None and suite.find(".//error") is None
    assert suite.get("skipped") == "3"
    broken = suite.find("testcase[@name='test_broken']/skipped")
    assert broken is not None
    assert broken.get("message") == "failed, allowed by continue-on-error: test_broken broke"


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(max_size=30), seconds=st.floats(allow_nan=True, allow_infinity=True))
def test_valid_whatever_the_test_names_texts_and_times(text: str, seconds: float) -> None:
    tests = results_of(
        TestCaseResult(classname=text, name=text or "x", outcome=TestOutcome.FAILED, message=text, text=text),
        TestCaseResult(classname="", name=text or "y", outcome=TestOutcome.SKIPPED, time=seconds, kind=text),
    )
    document = render_junit(run_result(step_result(text or "s", Status.FAILED, log_tail=text, tests=tests)))
    assert schema_problems(document) == []


def test_the_summary_names_failing_tests_under_their_step() -> None:
    steps = [
        step_result("unit", Status.FAILED, log_tail="boom", tests=SOME_TESTS),
        # Passed (`pytest || true`), yet its tests failed: it gets a section too.
        step_result("lenient", Status.PASSED, tests=results_of(case("test_odd", TestOutcome.FAILED))),
        step_result("docs", Status.PASSED, tests=results_of(case("test_fine"))),
    ]
    summary = render_summary(run_result(*steps))
    assert "**Tests 6**: ✅ 2 passed · ❌ 3 failed · ⏭️ 1 skipped" in summary
    unit = summary.index("#### ❌ `unit`: exit code 1")
    lenient = summary.index("#### ✅ `lenient`: 1 of 1 test failed")
    assert unit < summary.index("<code>tests.test_app.test_broken</code>: test_broken broke") < lenient
    assert "assert test_broken" in summary  # the first lines of its text
    assert summary.index("<code>tests.test_app.test_odd</code>") > lenient
    assert "| ❌ failed | `unit` | 2.0s |  | exit code 1: 2 of 4 tests failed |" in summary
    assert "`docs`:" not in summary


def test_the_summary_stays_under_its_limit_naming_the_tests_first() -> None:
    long_text = "\n".join(f"frame {n}: " + "x" * 200 for n in range(40))
    many = results_of(*(case(f"test_{n}", TestOutcome.FAILED, text=long_text) for n in range(50)))

    def summary(instances: int, limit: int) -> str:
        steps = [
            step_result(f"shard {n}", Status.FAILED, log_tail="y" * 60_000, tests=many)
            for n in range(instances)
        ]
        text = render_summary(run_result(*steps), max_bytes=limit)
        assert len(text.encode()) <= limit
        assert text.count("<details>") == text.count("</details>")  # no block cut inside
        return text

    shortened = summary(10, 512 * 1024)  # log tails go first, then the tests' texts are shortened
    assert "log tails left out; the failing tests' texts cut to their first 3 lines" in shortened
    assert "<code>tests.test_app.test_49</code>: test_49 broke" in shortened
    names_only = summary(30, 512 * 1024)
    assert "the failing tests' texts left out" in names_only
    assert "- `tests.test_app.test_49`: test\\_49 broke" in names_only


def test_run_json_holds_the_counts_and_the_first_failures_by_instance_and_name(tmp_path: Path) -> None:
    failing = tuple(case(f"test_{n}", TestOutcome.FAILED, file="t.py", line=n + 1) for n in range(60))
    step = step_result("unit (3.12)", Status.FAILED, tests=results_of(case("test_ok"), *failing))
    path = tmp_path / "run.json"
    write_run_record(run_result(step, step_result("lint")), path)
    data = json.loads(path.read_text())
    tests = data["steps"][0]["tests"]
    assert {key: tests[key] for key in ("total", "passed", "failed", "skipped")} == {
        "total": 61,
        "passed": 1,
        "failed": 60,
        "skipped": 0,
    }
    assert len(tests["failures"]) == 50
    assert tests["failures"][0]["name"] == "unit (3.12) :: tests.test_app.test_0"
    assert tests["failures"][0]["message"] == "test_0 broke" and tests["failures"][0]["line"] == 1
    assert data["steps"][1]["tests"] is None  # no `junit:`
    back = read_run_record(path).steps[0].tests
    assert back is not None
    assert (back.total, back.failed, len(back.failures), back.cases) == (61, 60, 50, ())
    # The names two runs compare, read back as written.
    assert list(back.failing_names("unit (3.12)")) == [failure["name"] for failure in tests["failures"]]
    first = back.failures[0]
    assert (first.test, first.classname, first.name, first.file, first.line) == (
        "tests.test_app.test_0",
        "tests.test_app",
        "test_0",
        "t.py",
        1,
    )


def test_a_secret_in_a_test_is_masked_in_run_json() -> None:
    secret = "hunter2-s3cr3t"
    tests = results_of(case(f"test_{secret}", TestOutcome.FAILED, message=f"got {secret}", text=secret))
    data = record(run_result(step_result("unit", Status.FAILED, tests=tests), secrets=(secret,)))
    assert secret not in json.dumps(data)


@pytest.mark.parametrize(
    ("tests", "where"),
    [
        ("lots", "steps[0].tests"),
        ({"total": -1}, "steps[0].tests.total"),
        ({"failed": True}, "steps[0].tests.failed"),
        ({"failures": {}}, "steps[0].tests.failures"),
        ({"failures": ["x"]}, "steps[0].tests.failures[0]"),
        ({"failures": [{"name": 3}]}, "steps[0].tests.failures[0].name"),
        ({"failures": [{"name": "a", "line": 0, "file": "f"}]}, "steps[0].tests.failures[0].line"),
    ],
)
def test_a_record_whose_tests_are_not_tests_is_refused_naming_the_key(
    tmp_path: Path, tests: object, where: str
) -> None:
    path = tmp_path / "run.json"
    write_run_record(run_result(step_result("unit")), path)
    data = json.loads(path.read_text())
    data["steps"][0]["tests"] = tests
    path.write_text(json.dumps(data))
    with pytest.raises(UsageError) as caught:
        read_run_record(path)
    assert caught.value.problems[0].path == where


def test_merged_shards_keep_each_instances_tests(tmp_path: Path) -> None:
    first = run_result(step_result("unit", Status.FAILED, tests=SOME_TESTS), shard="1/2")
    second = run_result(step_result("docs", tests=results_of(case("test_fine"))), shard="2/2", offset=10)
    records = []
    for index, result in enumerate((first, second)):
        path = tmp_path / f"{index}.json"
        write_run_record(result, path)
        records.append(read_run_record(path))
    merged = merge_results(records)
    tests = {step.id: step.tests for step in merged.steps}
    assert tests["unit"] is not None and tests["unit"].failed == 2
    assert tests["docs"] is not None and tests["docs"].total == 1
    assert merged.status is RunStatus.FAILED


def annotations(lines: list[str], level: str = "error") -> list[str]:
    return [line for line in lines if line.startswith((f"::{level} ", f"::{level}::"))]


def test_failing_tests_share_githubs_ten_annotations_and_the_rest_is_counted() -> None:
    placed = results_of(
        *(case(f"test_{n}", TestOutcome.FAILED, file="tests/t.py", line=n) for n in range(1, 9))
    )
    unplaced = results_of(case("test_nowhere", TestOutcome.FAILED))  # no file and line: no annotation
    commands = WorkflowCommands()
    step_said = commands.passed_on(Command(name="error", data="the step's own", properties={}))
    first = step_result("unit", Status.FAILED, tests=placed)
    lines = [*(step_said or []), *commands.annotate(first), *commands.annotate_tests(first)]
    second = step_result("more", Status.FAILED, tests=dataclasses.replace(placed))
    lines += [*commands.annotate(second), *commands.annotate_tests(second)]
    lines += commands.annotate_tests(step_result("elsewhere", Status.FAILED, tests=unplaced))
    lines += commands.annotate_rest()
    errors = annotations(lines)
    assert len(errors) == 10
    at_place = [line for line in errors if line.startswith("::error file=tests/t.py,line=")]
    assert len(at_place) == 7
    assert "title=unit %3A%3A tests.test_app.test_1::test_1 broke%0ATraceback" in at_place[0]
    assert "1 more steps failed" in errors[-1] and "9 more failing tests" in errors[-1]


def test_a_test_that_may_fail_is_a_warning() -> None:
    step = step_result("flaky", Status.FAILED, continue_on_error=True, tests=SOME_TESTS)
    lines = WorkflowCommands().annotate_tests(step)
    assert [line.split(" ", 1)[0] for line in lines] == ["::warning"]
