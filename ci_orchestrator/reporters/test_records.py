"""An instance's test results in run.json (`tests`), and read back.

`tests` is null for an instance without `junit:`; else its counts and its first failing tests
(`failures`, at most `RECORDED_FAILURES`), each named `INSTANCE :: classname.name` so that the
failures of two runs compare as plain names, with its message, the first lines of its text and
the place GitHub annotates (`file`, `line`). A record read back is untrusted: every value is
checked and held to what a record written here holds.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ci_orchestrator.output.masking import mask
from ci_orchestrator.results import (
    RECORDED_FAILURES,
    TestCaseResult,
    TestOutcome,
    TestResults,
    qualified_test_name,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from ci_orchestrator.results import StepResult

TEXT_LINES = 20  # of each failing test's text
TEXT_BYTES = 4 * 1024
MESSAGE_CHARS = 2_000
_COUNTS = ("total", "passed", "failed", "skipped")


def tests_record(step: StepResult, secrets: Sequence[str]) -> dict[str, Any] | None:
    """The instance's `tests` as run.json holds them (masked); None without `junit:`."""
    tests = step.tests
    if tests is None:
        return None
    instance = mask(step.id, secrets)
    failures = []
    for failure in tests.failures[:RECORDED_FAILURES]:
        entry: dict[str, Any] = {
            "name": mask(qualified_test_name(instance, failure.test), secrets),
            "message": mask(failure.message, secrets),
            "text": mask(first_lines(failure.text), secrets),
            "outcome": failure.outcome.value,  # `failed` (an assertion) or `error`
            "classname": mask(failure.classname, secrets),
        }
        if failure.file is not None:
            entry["file"] = mask(failure.file, secrets)
            entry["line"] = failure.line
        failures.append(entry)
    return {
        "total": tests.total,
        "passed": tests.passed,
        "failed": tests.failed,
        "skipped": tests.skipped,
        "failures": failures,
    }


def first_lines(text: str, *, lines: int = TEXT_LINES, max_bytes: int = TEXT_BYTES) -> str:
    """The start of a failure's text: at most `lines` lines and `max_bytes` bytes."""
    kept = "\n".join(text.splitlines()[:lines])
    data = kept.encode("utf-8")
    return kept if len(data) <= max_bytes else data[:max_bytes].decode("utf-8", errors="ignore")


def read_tests(
    data: Any, *, instance: str, at: str, fail: Callable[[str, str], Exception]
) -> TestResults | None:
    """The `tests` of a record's step (`at` its key path, `instance` its id); `fail(key, message)`
    makes the error for a value that is not what a record holds."""
    if data is None:
        return None
    if not isinstance(data, dict):
        raise fail(at, f"expected an object or null, not {data!r}")
    counts = {}
    for key in _COUNTS:
        value = data.get(key, 0)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise fail(f"{at}.{key}", f"expected a count, not {value!r}")
        counts[key] = value
    entries = data.get("failures", [])
    if not isinstance(entries, list):
        raise fail(f"{at}.failures", f"expected a list, not {entries!r}")
    failures = tuple(
        _failure(entry, instance=instance, at=f"{at}.failures[{index}]", fail=fail)
        for index, entry in enumerate(entries[:RECORDED_FAILURES])
    )
    return TestResults(
        total=counts["total"],
        passed=counts["passed"],
        failed=counts["failed"],
        skipped=counts["skipped"],
        failures=failures,
    )


def _failure(data: Any, *, instance: str, at: str, fail: Callable[[str, str], Exception]) -> TestCaseResult:
    if not isinstance(data, dict):
        raise fail(at, "expected an object")
    texts = {}
    for key in ("name", "message", "text", "file", "classname", "outcome"):
        value = data.get(key, "" if key != "file" else None)
        if value is not None and not isinstance(value, str):
            raise fail(f"{at}.{key}", f"expected a string, not {value!r}")
        texts[key] = value
    line = data.get("line")
    if line is not None and (not isinstance(line, int) or isinstance(line, bool) or line < 1):
        raise fail(f"{at}.line", f"expected a line number, not {line!r}")
    test = str(texts["name"]).removeprefix(qualified_test_name(instance, ""))
    # `classname.name` split as the file had it, where the record's `classname` says how.
    classname = str(texts["classname"])
    if classname and test.startswith(f"{classname}."):
        name = test[len(classname) + 1 :]
    elif classname and test == classname:  # the same text as class and name
        name = test
    else:
        classname, name = "", test
    return TestCaseResult(
        classname=classname,
        name=name or "(unnamed test)",
        outcome=TestOutcome.ERROR if texts["outcome"] == TestOutcome.ERROR.value else TestOutcome.FAILED,
        message=str(texts["message"])[:MESSAGE_CHARS],
        text=first_lines(str(texts["text"])),
        file=texts["file"],
        line=line if texts["file"] is not None else None,
    )
