"""The tests of the steps' own JUnit files in the job summary and the pull-request comment: the
run's counts in the summary's header, and under each step the tests that failed, by name, with
their message and the first lines of their failure text, those that fail since the baseline
first."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ci_orchestrator.reporters.markdown_text import code, escape, fenced
from ci_orchestrator.results import qualified_test_name

if TYPE_CHECKING:
    from collections.abc import Collection

    from ci_orchestrator.results import RunResult, StepResult, TestCaseResult

SHOWN = 50  # failing tests named per instance: as many as run.json keeps
TEXT_LINES = 10  # of each failing test's text
_LINE_CHARS = 300


def totals_line(result: RunResult) -> str | None:
    """`**Tests** 1,204: ✅ 1,190 passed · ❌ 3 failed · ⏭️ 11 skipped`; None when no instance
    has test results."""
    counted = [step.tests for step in result.steps if step.tests is not None]
    if not counted:
        return None
    total = sum(tests.total for tests in counted)
    parts = [
        f"{icon} {count:,} {label}"
        for icon, count, label in (
            ("✅", sum(tests.passed for tests in counted), "passed"),
            ("❌", sum(tests.failed for tests in counted), "failed"),
            ("⏭️", sum(tests.skipped for tests in counted), "skipped"),
        )
        if count
    ]
    return f"**Tests {total:,}**" + (f": {' · '.join(parts)}" if parts else "")


def has_failing_tests(step: StepResult) -> bool:
    return step.tests is not None and step.tests.failed > 0


def detailed(result: RunResult) -> list[StepResult]:
    """The instances a report gives a section of their own: those that failed, and those whose
    tests did (a step may pass with failing tests: `pytest || true`)."""
    return [step for step in result.steps if step.status.is_failure or has_failing_tests(step)]


def new_test_failures(result: RunResult) -> frozenset[str]:
    """The names (`INSTANCE :: classname.name`) of the tests that fail since the baseline."""
    return frozenset(result.comparison.new_test_failures) if result.comparison else frozenset()


def failed_count(step: StepResult, new: int = 0) -> str:
    """`3 of 1,204 tests failed` (`, 2 new` with new failing tests)."""
    tests = step.tests
    if tests is None:
        return ""
    said = f"{tests.failed:,} of {tests.total:,} test{'s' * (tests.total != 1)} failed"
    return f"{said}, {new:,} new" if new else said


def failing_tests(
    step: StepResult, *, lines: int = TEXT_LINES, new: Collection[str] = (), shown: int = SHOWN
) -> list[str]:
    """The markdown lines that name the instance's failing tests (none when it has none): each
    with its message, and the first `lines` of its text folded in a `<details>`; those that
    fail since the baseline (`new`, by name) first and marked, `shown` tests at most."""
    tests = step.tests
    if tests is None or not tests.failed:
        return []
    import html  # only with failing tests: it loads its table of entities (~1 ms)

    prefix = qualified_test_name(step.id, "")
    fresh = {name.removeprefix(prefix) for name in new if name.startswith(prefix)}
    # New failures first, each kind in file order.
    ordered = sorted(tests.failures, key=lambda failure: failure.test not in fresh)
    said = ["", f"**Failing tests**: {escape(failed_count(step, len(fresh)))}"]
    for failure in ordered[:shown]:
        mark = "🆕 " if failure.test in fresh else ""
        first = [line[:_LINE_CHARS] for line in failure.text.splitlines() if line.strip()][:lines]
        if first:
            # An HTML block ends at a blank line only: one before and after each.
            summary = f"{mark}<code>{html.escape(failure.test)}</code>{_message(failure, markdown=False)}"
            said += ["", f"<details><summary>{summary}</summary>", "", fenced("\n".join(first), "text")]
            said += ["", "</details>"]
        else:
            said += ["", f"- {mark}{code(failure.test)}{_message(failure, markdown=True)}"]
    if (more := tests.failed - min(shown, len(ordered))) > 0:
        said += ["", f"And {more:,} more: see the JUnit report."]
    return said


def _message(failure: TestCaseResult, *, markdown: bool) -> str:
    message = " ".join(failure.message.split())
    if len(message) > _LINE_CHARS:
        message = message[: _LINE_CHARS - 1] + "…"
    if not message:
        return ""
    if markdown:
        return f": {escape(message)}"
    import html

    return f": {html.escape(message)}"
