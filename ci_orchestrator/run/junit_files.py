"""The JUnit files a step wrote (its `junit:` globs), found and read once it ended: its tests.

The globs are workspace-relative, as `outputs` (a `${{ matrix.* }}` in them names each
instance's files). A file is read only when it is a regular file of at most `MAX_FILE_BYTES`
changed since the step started (an older one was left by an earlier run: stale); its bytes go
to `junit_parsing`. A glob matching nothing, or a file missing, empty, stale, too large or not
JUnit, is a warning naming it; what the other files hold still counts, and the step's status is
its own.
"""

from __future__ import annotations

import dataclasses
import os
import posixpath
from pathlib import Path
from typing import TYPE_CHECKING

from ci_orchestrator import notices
from ci_orchestrator.errors import ExpressionError
from ci_orchestrator.output import untrusted
from ci_orchestrator.output.paths import shown_path
from ci_orchestrator.output.untrusted import MAX_FILE_BYTES
from ci_orchestrator.results import Status, TestOutcome, TestResults

if TYPE_CHECKING:
    from collections.abc import Mapping
    from datetime import datetime

    from ci_orchestrator.playbook.model import Instance
    from ci_orchestrator.results import StepResult, TestCaseResult

MAX_CASES = 200_000  # kept per instance for the run's JUnit report; the rest are counted
MAX_FAILURES = 1_000  # failing tests kept per instance (run.json keeps fewer)
# A file changed this long before the step started was not written by it. Coarse file times
# (a second, two on some filesystems) and the kernel's coarse clock stay inside it.
STALE_SLACK = 2.0


class NotRead(Exception):  # noqa: N818 - a reason to leave a file out, said as a warning
    """Why a JUnit file is left out."""


def with_tests(
    result: StepResult, instance: Instance, *, workspace: Path, variables: Mapping[str, str]
) -> StepResult:
    """`result` with what its `junit:` files hold, for an instance that ran or came from the
    cache (its files restored with it), and for a job the steps it ran (`job_steps`);
    unchanged for another."""
    steps = _job_steps(result, workspace) if instance.step.steps else None
    if steps is not None:
        result = dataclasses.replace(result, tests=steps)
    if not instance.step.junit or result.started is None:
        return result
    from ci_orchestrator.cache.keys import instance_patterns

    cached = result.status is Status.CACHED
    try:
        patterns = instance_patterns(instance, instance.step.junit, variables)
    except ExpressionError as error:
        notices.warn(f"{result.id}: junit: cannot expand its globs ({error})")
        return dataclasses.replace(result, tests=TestResults())
    tests = read_tests(
        patterns,
        workspace=workspace,
        working_directory=instance.working_directory,
        since=None if cached else result.started,
        instance_id=result.id,
        # An interrupted step had no time to write its files: saying so would be noise.
        quiet=result.status is Status.CANCELLED,
    )
    return dataclasses.replace(result, tests=tests if steps is None else _joined(steps, tests))


def _job_steps(result: StepResult, workspace: Path) -> TestResults | None:
    """A job's steps, from the file its process wrote beside its log."""
    if result.log is None or result.status is Status.CACHED:
        return None
    from ci_orchestrator.run import job_steps

    log = Path(result.log)
    log = log if log.is_absolute() else workspace / log
    return job_steps.read(log.with_suffix(".steps.json"), result.id)


def _joined(first: TestResults, second: TestResults) -> TestResults:
    return TestResults(
        total=first.total + second.total,
        passed=first.passed + second.passed,
        failed=first.failed + second.failed,
        skipped=first.skipped + second.skipped,
        failures=(*first.failures, *second.failures)[:MAX_FAILURES],
        cases=(*first.cases, *second.cases)[:MAX_CASES],
    )


def read_tests(
    patterns: tuple[str, ...],
    *,
    workspace: Path,
    working_directory: str = ".",
    since: datetime | None = None,
    instance_id: str = "",
    quiet: bool = False,
) -> TestResults:
    """The tests of the files the globs match (workspace-relative, as `outputs`), in file order;
    files changed before `since` are stale and left out."""
    from ci_orchestrator.cache.digests import FileDigests

    files = FileDigests(workspace)
    found: dict[str, None] = {}
    for pattern in patterns:
        matched = files.expand(pattern)
        if not matched and not quiet:
            notices.warn(f"{instance_id}: junit: no file matches {pattern!r}")
        found.update(dict.fromkeys(matched))
    base = _relative_directory(workspace, working_directory)
    counts = dict.fromkeys(TestOutcome, 0)
    kept: list[TestCaseResult] = []
    failures: list[TestCaseResult] = []
    for name in found:
        try:
            cases = read_file(Path(files.root) / name, since=since, base=base, workspace=workspace)
        except NotRead as why:
            notices.warn(f"{instance_id}: junit file {name}: {why}")
            continue
        for case in cases:
            counts[case.outcome] += 1
            if len(kept) < MAX_CASES:
                kept.append(case)
            if case.failed and len(failures) < MAX_FAILURES:
                failures.append(case)
    return TestResults(
        total=sum(counts.values()),
        passed=counts[TestOutcome.PASSED],
        failed=counts[TestOutcome.FAILED] + counts[TestOutcome.ERROR],
        skipped=counts[TestOutcome.SKIPPED],
        failures=tuple(failures),
        cases=tuple(kept),
    )


def read_file(
    path: Path, *, since: datetime | None = None, base: str = ".", workspace: Path | None = None
) -> list[TestCaseResult]:
    """The test cases of one JUnit file; `NotRead` says why there are none to take.

    `base` is the step's working directory relative to the workspace: where a relative `file`
    attribute starts.
    """
    data = _read_bytes(path, since=since)
    from ci_orchestrator.run.junit_parsing import parse_cases

    return parse_cases(data, base=base, workspace=workspace)


def _read_bytes(path: Path, *, since: datetime | None) -> bytes:
    def stale(info: os.stat_result) -> str | None:
        if since is not None and info.st_mtime < since.timestamp() - STALE_SLACK:
            return "not written by this run of the step (last changed before it started)"
        return None

    try:
        return untrusted.read_file(path, max_bytes=MAX_FILE_BYTES, refuse=stale)
    except untrusted.Unreadable as why:
        raise NotRead(why.message) from None


def _relative_directory(workspace: Path, directory: str) -> str:
    """The step's working directory relative to the workspace, as POSIX text."""
    path = Path(directory)
    shown = shown_path(path if path.is_absolute() else workspace / path, workspace)
    return posixpath.normpath(shown.replace(os.sep, "/"))
