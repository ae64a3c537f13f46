"""An instance's test results as the run history keeps them (`steps.tests`): its counts and the
names (`classname.name`) of its first failing tests, which is what a run compared with a run of
the history goes by. JSON text; NULL for an instance without `junit:`.

A history restored from a cache is untrusted: a value read back is checked to be of the form
written here, and one that is not is a ValueError.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from ci_orchestrator.output.masking import mask
from ci_orchestrator.results import RECORDED_FAILURES, TestCaseResult, TestOutcome, TestResults

if TYPE_CHECKING:
    from collections.abc import Sequence

_COUNTS = ("total", "passed", "failed", "skipped")


def tests_row(tests: TestResults | None) -> str | None:
    """The text the history keeps of an instance's tests; None without `junit:`."""
    if tests is None:
        return None
    data: dict[str, Any] = {key: getattr(tests, key) for key in _COUNTS}
    data["failing"] = [failure.test for failure in tests.failures[:RECORDED_FAILURES]]
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


def read_tests_row(text: object) -> TestResults | None:
    """The tests a row holds (None for NULL): counts, and the failing tests by name only."""
    if text is None:
        return None
    try:
        data = json.loads(text) if isinstance(text, str) else None
    except RecursionError:  # arrays nested thousands deep
        raise ValueError("nested too deep") from None
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")  # noqa: TRY004 - one error for every form it is not of
    counts: dict[str, int] = {}
    for key in _COUNTS:
        value = data.get(key)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise ValueError(f"{key}: not a count")
        counts[key] = value
    failing = data.get("failing")
    if not isinstance(failing, list) or len(failing) > RECORDED_FAILURES:
        raise ValueError("no list of failing tests")
    if not all(isinstance(name, str) and name for name in failing):
        raise ValueError("a failing test with no name")
    return TestResults(
        total=counts["total"],
        passed=counts["passed"],
        failed=counts["failed"],
        skipped=counts["skipped"],
        failures=tuple(
            TestCaseResult(classname="", name=name, outcome=TestOutcome.FAILED) for name in failing
        ),
    )


def masked_tests(tests: TestResults | None, secrets: Sequence[str]) -> TestResults | None:
    """`tests` as the history may keep them: the failing tests it keeps, each name masked whole
    (a secret may span the classname and the name)."""
    if tests is None or not secrets:
        return tests
    kept = tests.failures[:RECORDED_FAILURES]
    names = (mask(failure.test, secrets) for failure in kept)
    return TestResults(
        total=tests.total,
        passed=tests.passed,
        failed=tests.failed,
        skipped=tests.skipped,
        failures=tuple(TestCaseResult(classname="", name=name, outcome=TestOutcome.FAILED) for name in names),
    )
