"""What changed between two runs of a playbook, instance by instance: new failures, fixes, what
still fails, instances added and removed, the flaky ones, and notable changes of duration; test
by test, the tests of the steps' JUnit files that fail now and did not, and those fixed; and the
comparison as run.json holds it (`comparison`), written and read back.

Only finished results are compared: a baseline read from a run record or from the run history
is a `RunResult` like any other.

A test is the same test in both runs when its instance id, classname and name are the same: its
name `INSTANCE :: classname.name`. A baseline keeps the first `RECORDED_FAILURES` failing tests
of each instance (as run.json does), not the tests that passed, so a claim is made only where
what both runs hold decides it: the instance read JUnit files in both runs, and no failing test
that a record left out could make the claim wrong.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from ci_orchestrator.errors import UsageError
from ci_orchestrator.output.masking import mask
from ci_orchestrator.results import Comparison, DurationChange, Status, TestOutcome, qualified_test_name

if TYPE_CHECKING:
    from collections.abc import Collection, Mapping, Sequence

    from ci_orchestrator.errors import Location
    from ci_orchestrator.results import RunResult, StepResult, TestResults

SLOWER_RATIO = 1.2  # a change of duration is notable at 1.2x as long (or as short) ...
SLOWER_SECONDS = 1.0  # ... and at least a second more (or less)
_FAILED = (Status.FAILED, Status.TIMED_OUT)
_GOOD = (Status.PASSED, Status.CACHED)
_LISTS = ("new_failures", "fixed", "still_failing", "added", "removed", "flaky")
_TEST_LISTS = ("new_test_failures", "fixed_tests")
_CHANGES = ("slower", "faster")


def compare(baseline: RunResult, head: RunResult, *, planned: Collection[str] | None = None) -> Comparison:
    """What changed from `baseline` to `head`.

    `planned`: every instance id of the head's playbook before `--select` and `--shard` (known
    when comparing a run that is being made): a baseline instance left out by the head's
    selection is then neither removed nor anything else. Without it, instances missing from the
    head count as removed only when the head covered its whole playbook, and instances missing
    from the baseline count as added only when the baseline did.
    """
    before = {step.id: step for step in baseline.steps}
    after = {step.id: step for step in head.steps}
    new_failures, fixed, still_failing, added, flaky = [], [], [], [], []
    new_test_failures, fixed_tests = [], []
    slower, faster = [], []
    for step in head.steps:
        if step.status is Status.PASSED and step.attempts > 1 and not step.cached:
            flaky.append(step.id)
        old = before.get(step.id)
        if old is None:
            if baseline.whole:
                added.append(step.id)
            continue
        failing, passing = _test_changes(old, step)
        new_test_failures += failing
        fixed_tests += passing
        if step.status in _FAILED:
            if old.status in _GOOD:
                new_failures.append(step.id)
            elif old.status in _FAILED:
                still_failing.append(step.id)
        elif step.status in _GOOD and old.status in _FAILED:
            fixed.append(step.id)
        if _timed(old) and _timed(step):
            if _notably_longer(step.duration, old.duration):
                slower.append(DurationChange(id=step.id, before=old.duration, after=step.duration))
            elif _notably_longer(old.duration, step.duration):
                faster.append(DurationChange(id=step.id, before=old.duration, after=step.duration))
    if planned is not None and not head.matrix_filters:
        known = set(planned)
        removed = [step.id for step in baseline.steps if step.id not in after and step.id not in known]
    elif head.whole:
        removed = [step.id for step in baseline.steps if step.id not in after]
    else:
        removed = []
    # The biggest changes first.
    slower.sort(key=lambda change: change.before - change.after)
    faster.sort(key=lambda change: change.after - change.before)
    return Comparison(
        baseline_run_id=baseline.run_id,
        baseline_branch=baseline.branch,
        baseline_commit=baseline.commit,
        new_failures=tuple(new_failures),
        fixed=tuple(fixed),
        still_failing=tuple(still_failing),
        added=tuple(added),
        removed=tuple(removed),
        flaky=tuple(flaky),
        new_test_failures=tuple(new_test_failures),
        fixed_tests=tuple(fixed_tests),
        slower=tuple(slower),
        faster=tuple(faster),
    )


def _test_changes(old: StepResult, new: StepResult) -> tuple[list[str], list[str]]:
    """The tests of one instance that fail now and did not in the baseline, and those that
    failed in the baseline and pass now; none where a run read no test of the instance (no
    `junit:` then, or no file it could read: nothing is known of its tests)."""
    before, after = old.tests, new.tests
    if before is None or after is None or not before.total or not after.total:
        return [], []
    failed_before = dict.fromkeys(before.failing_names(new.id))
    failing_now = dict.fromkeys(after.failing_names(new.id))
    # A test not among the baseline's failing tests did not fail there, unless the record left
    # failing tests out. A new test that fails is a new failure: it did not fail before.
    new_failures = [] if _left_out(before) else [name for name in failing_now if name not in failed_before]
    if after.cases:
        # A run being made holds its test cases: fixed means run and passed (not skipped, and
        # not renamed or deleted since, which a name missing from the failing tests could be).
        passed = {
            qualified_test_name(new.id, case.test)
            for case in after.cases
            if case.outcome is TestOutcome.PASSED
        }
        fixed = [name for name in failed_before if name in passed and name not in failing_now]
    elif _left_out(after):
        fixed = []
    else:
        fixed = [name for name in failed_before if name not in failing_now]
    return new_failures, fixed


def _left_out(tests: TestResults) -> bool:
    """Whether some of the failing tests are not listed (a record keeps the first ones)."""
    return len(tests.failures) < tests.failed


def _timed(step: StepResult) -> bool:
    """Whether its duration says how long the step takes: it ran to its end, here and now."""
    return step.status in (Status.PASSED, Status.FAILED) and not step.cached


def _notably_longer(longer: float, shorter: float) -> bool:
    return longer >= shorter * SLOWER_RATIO and longer - shorter >= SLOWER_SECONDS


def same_playbook(baseline: RunResult, playbook: str) -> None:
    """A comparison is of two runs of one playbook: a UsageError otherwise."""
    if baseline.playbook != playbook:
        raise UsageError(
            f"the baseline run {baseline.run_id} is of playbook {baseline.playbook!r},"
            f" not {playbook!r}: only runs of one playbook are compared"
        )


def merge_comparisons(results: Sequence[RunResult]) -> Comparison | None:
    """The comparison of runs merged from shards: each shard compared its own instances, so
    the merged lists are theirs joined (the baseline named is the first shard's). None when a
    record has none: a comparison of some shards only would pass the others over in silence."""
    comparisons = [result.comparison for result in results]
    if not comparisons or any(comparison is None for comparison in comparisons):
        return None
    first = comparisons[0]
    assert first is not None

    def joined(name: str) -> tuple[Any, ...]:
        found: dict[str, Any] = {}
        for comparison in comparisons:
            for item in getattr(comparison, name):
                found.setdefault(item if isinstance(item, str) else item.id, item)
        return tuple(found.values())

    lists = {name: joined(name) for name in (*_LISTS, *_TEST_LISTS, *_CHANGES)}
    return Comparison(
        baseline_run_id=first.baseline_run_id,
        baseline_branch=first.baseline_branch,
        baseline_commit=first.baseline_commit,
        **lists,
    )


def comparison_record(comparison: Comparison | None, secrets: Sequence[str] = ()) -> dict[str, Any] | None:
    """The comparison as run.json's `comparison` (and `report compare --format json`) holds it."""
    if comparison is None:
        return None
    data: dict[str, Any] = {
        "baseline": {
            "run_id": mask(comparison.baseline_run_id, secrets),
            "branch": comparison.baseline_branch,
            "commit": comparison.baseline_commit,
        }
    }
    for name in (*_LISTS, *_TEST_LISTS):
        data[name] = [mask(item, secrets) for item in getattr(comparison, name)]
    for name in _CHANGES:
        data[name] = [
            {"id": mask(change.id, secrets), "before": change.before, "after": change.after}
            for change in getattr(comparison, name)
        ]
    return data


def read_comparison(data: Any, where: Location) -> Comparison | None:
    """run.json's `comparison` read back (untrusted: another job's record); what is not of its
    form is a UsageError naming the key."""
    if data is None:
        return None

    def fail(key: str, message: str) -> UsageError:
        return UsageError(message, location=where, path=f"comparison{key}")

    if not isinstance(data, dict):
        raise fail("", "expected an object or null")
    baseline = data.get("baseline")
    if not isinstance(baseline, dict) or not isinstance(baseline.get("run_id"), str):
        raise fail(".baseline", "expected an object with a run_id")
    texts: dict[str, str | None] = {}
    for key in ("branch", "commit"):
        value = baseline.get(key)
        if value is not None and not isinstance(value, str):
            raise fail(f".baseline.{key}", f"unexpected value {value!r}")
        texts[key] = value
    lists: dict[str, Any] = {}
    for name in (*_LISTS, *_TEST_LISTS):
        # Absent from a record written before tests were compared: nothing was claimed.
        items = data.get(name, [])
        if not isinstance(items, list) or not all(isinstance(item, str) for item in items):
            what = "test names" if name in _TEST_LISTS else "instance ids"
            raise fail(f".{name}", f"expected a list of {what}")
        lists[name] = tuple(items)
    for name in _CHANGES:
        items = data.get(name, [])
        changes = [_change(item) for item in items] if isinstance(items, list) else [None]
        if None in changes:
            raise fail(f".{name}", "expected a list of {id, before, after} (seconds)")
        lists[name] = tuple(changes)
    return Comparison(
        baseline_run_id=baseline["run_id"],
        baseline_branch=texts["branch"],
        baseline_commit=texts["commit"],
        **lists,
    )


def _change(item: Any) -> DurationChange | None:
    """One `{id, before, after}`; None when it is not of that form."""
    if not isinstance(item, dict) or not isinstance(item.get("id"), str):
        return None
    seconds: Mapping[str, Any] = {key: item.get(key) for key in ("before", "after")}
    for value in seconds.values():
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            return None
    return DurationChange(id=item["id"], before=float(seconds["before"]), after=float(seconds["after"]))
