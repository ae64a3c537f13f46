"""The tests of the steps' own JUnit files in the job summary: the run's counts in its header, and
under each step the tests that failed, by name, with their message and the first lines of
their failure text."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ci_orchestrator.reporters.markdown_text import code, escape, fenced

if TYPE_CHECKING:
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


def failed_count(step: StepResult) -> str:
    """`3 of 1,204 tests failed`."""
    tests = step.tests
    if tests is None:
        return ""
    return f"{tests.failed:,} of {tests.total:,} test{'s' * (tests.total != 1)} failed"


def failing_tests(step: StepResult, *, lines: int = TEXT_LINES) -> list[str]:
    """The markdown lines that name the instance's failing tests (none when it has none): each
    with its message, and the first `lines` of its text folded in a `<details>`."""
    tests = step.tests
    if tests is None or not tests.failed:
        return []
    import html  # only with failing tests: it loads its table of entities (~1 ms)

    shown = tests.failures[:SHOWN]
    said = ["", f"**Failing tests**: {escape(failed_count(step))}"]
    for failure in shown:
        first = [line[:_LINE_CHARS] for line in failure.text.splitlines() if line.strip()][:lines]
        if first:
            # An HTML block ends at a blank line only: one before and after each.
            summary = f"<code>{html.escape(failure.test)}</code>{_message(failure, markdown=False)}"
            said += ["", f"<details><summary>{summary}</summary>", "", fenced("\n".join(first), "text")]
            said += ["", "</details>"]
        else:
            said += ["", f"- {code(failure.test)}{_message(failure, markdown=True)}"]
    if (more := tests.failed - len(shown)) > 0:
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
