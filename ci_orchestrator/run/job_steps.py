"""A job's steps in the reports: the job's process writes how each of its steps ended to a file
beside its log, and the run reads it back as the job instance's tests, so that each step has its
own entry in the run's JUnit file (a test case in the job's suite), in run.json's test counts
and failures, and in the summary, as the tests of a `junit:` file have.

A step that failed makes a failed case (its reason the message), a skipped step a skipped one;
a failure `continue-on-error` allows is a passed case whose message says so, as GitHub shows
the step failed and the job going on.
"""

from __future__ import annotations

import json
import math
from typing import TYPE_CHECKING, Any

from ci_orchestrator.results import TestCaseResult, TestOutcome, TestResults

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

MAX_BYTES = 4 * 1024 * 1024  # a job of thousands of steps stays far below
_OUTCOMES = {"success": TestOutcome.PASSED, "failure": TestOutcome.FAILED, "skipped": TestOutcome.SKIPPED}


SKIPPED_EXIT = 78  # a job's process that did not run its steps (see `skipped`)
_SYSTEMS = (("windows", "Windows"), ("macos", "macOS"), ("ubuntu", "Linux"), ("linux", "Linux"))


def write(path: Path, steps: Sequence[dict[str, Any]], *, skipped: str | None = None) -> None:
    """Each step's `title`, `outcome`, `conclusion`, `reason` and `seconds`, in the order run;
    `skipped`: why the job ran none (its process exits with SKIPPED_EXIT)."""
    path.write_text(json.dumps({"steps": list(steps), "skipped": skipped}), encoding="utf-8")


def skipped(path: Path) -> str | None:
    """Why the job ran none of its steps, as its process wrote it; None when it did not say."""
    try:
        with path.open("rb") as file:
            why = json.loads(file.read(MAX_BYTES + 1) or b"null")["skipped"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return why[:500] if isinstance(why, str) else None


def other_system(labels: Sequence[str], here: str) -> str | None:
    """Why a job whose runner labels are `labels` does not run on this machine (its system
    `here`: Linux, macOS, Windows): they name another system (`windows-latest`, `macos-14`);
    None for labels that name none (`self-hosted`, a group's) or this one."""
    for label in labels:
        system = next((name for prefix, name in _SYSTEMS if label.lower().startswith(prefix)), None)
        if system is not None and system != here:
            return f"runs-on {label}: a {system} runner, and this machine runs {here}"
    return None


def read(path: Path, instance_id: str) -> TestResults | None:
    """The job's steps as test cases (class name: the job instance's id); None when the file is
    missing or not what `write` writes (a job stopped before its end)."""
    try:
        with path.open("rb") as file:
            data = json.loads(file.read(MAX_BYTES + 1) or b"null")
        entries = data["steps"]
        cases = [_case(entry, instance_id) for entry in entries]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not cases:  # it ran none: no tests to count
        return None
    failures = tuple(case for case in cases if case.outcome is TestOutcome.FAILED)
    skipped = sum(case.outcome is TestOutcome.SKIPPED for case in cases)
    return TestResults(
        total=len(cases),
        passed=len(cases) - len(failures) - skipped,
        failed=len(failures),
        skipped=skipped,
        failures=failures,
        cases=tuple(cases),
    )


def _case(entry: Any, instance_id: str) -> TestCaseResult:
    title, outcome, conclusion = str(entry["title"]), str(entry["outcome"]), str(entry["conclusion"])
    seconds = float(entry.get("seconds", 0.0))
    reason = str(entry.get("reason", ""))
    if outcome == "failure" and conclusion == "success":
        outcome, reason = "success", reason or "failed, allowed by continue-on-error"
    return TestCaseResult(
        classname=instance_id,
        name=title,
        outcome=_OUTCOMES.get(outcome, TestOutcome.FAILED),
        time=seconds if math.isfinite(seconds) and seconds >= 0 else 0.0,
        message=reason,
    )
