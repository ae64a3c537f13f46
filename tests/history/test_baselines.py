"""The baseline taken from the run history (`--baseline auto`): the newest finished run before, with
its steps' tests as the history keeps them (counts and the first failing tests by name), so that a
run compares its tests with it as with a run record; a value of the history's not of that form
makes no claim."""

from __future__ import annotations

import sqlite3
from datetime import timedelta
from typing import TYPE_CHECKING

import pytest

from ci_orchestrator.history.baselines import find_baseline
from ci_orchestrator.history.database import History
from ci_orchestrator.history.revision import Revision
from ci_orchestrator.reporters.comparison import compare
from ci_orchestrator.results import RECORDED_FAILURES, Status, TestCaseResult, TestOutcome, TestResults
from tests.helpers import T0, run_result, step_result

if TYPE_CHECKING:
    from pathlib import Path


def failing(*names: str, passed: int = 0) -> TestResults:
    cases = [TestCaseResult(classname="suite", name=name, outcome=TestOutcome.FAILED) for name in names]
    cases += [
        TestCaseResult(classname="suite", name=f"ok{index}", outcome=TestOutcome.PASSED)
        for index in range(passed)
    ]
    return TestResults.of(cases)


def baseline_of(path: Path) -> list[tuple[str, TestResults | None]]:
    with History.open(path) as history:
        found = find_baseline(history, "ci", Revision(branch="main"), before=T0 + timedelta(days=1))
    assert found is not None
    return [(step.id, step.tests) for step in found.steps]


def test_the_baseline_keeps_each_instances_counts_and_first_failing_tests(tmp_path: Path) -> None:
    path = tmp_path / "history.db"
    many = [f"t{index:03d}" for index in range(RECORDED_FAILURES + 30)]
    with History.open(path) as history:
        history.finish_run(
            run_result(
                step_result("unit", Status.FAILED, tests=failing("a", "b", passed=5)),
                step_result("lint"),  # no `junit:`
                step_result("big", Status.FAILED, tests=failing(*many)),
                branch="main",
            )
        )
    (unit, lint, big) = baseline_of(path)
    assert lint == ("lint", None)
    assert unit[1] is not None
    assert (unit[1].total, unit[1].passed, unit[1].failed) == (7, 5, 2)
    assert [failure.test for failure in unit[1].failures] == ["suite.a", "suite.b"]
    assert big[1] is not None
    assert big[1].failed == len(many)
    assert [failure.test for failure in big[1].failures] == [
        f"suite.{name}" for name in many[:RECORDED_FAILURES]
    ]

    # A run compared with it: what was failing is known, so `c` is new and `a` is fixed.
    with History.open(path) as history:
        base = find_baseline(history, "ci", Revision(branch="main"), before=T0 + timedelta(days=1))
    assert base is not None
    now = [
        TestCaseResult(classname="suite", name="a", outcome=TestOutcome.PASSED),
        *failing("b", "c").cases,
    ]
    head = run_result(step_result("unit", Status.FAILED, tests=TestResults.of(now)), run_id="run-2")
    found = compare(base, head)
    assert found.new_test_failures == ("unit :: suite.c",)
    assert found.fixed_tests == ("unit :: suite.a",)


@pytest.mark.parametrize(
    "stored",
    [
        "not json",
        "[1, 2]",
        '{"total": -1, "passed": 0, "failed": 0, "skipped": 0, "failing": []}',
        '{"total": 1}',
    ],
)
def test_tests_not_of_the_historys_form_are_unknown(tmp_path: Path, stored: str) -> None:
    path = tmp_path / "history.db"
    with History.open(path) as history:
        history.finish_run(run_result(step_result("unit", tests=failing("a")), branch="main"))
    with sqlite3.connect(path) as connection:
        connection.execute("UPDATE steps SET tests = ?", (stored,))
    assert baseline_of(path) == [("unit", None)]
