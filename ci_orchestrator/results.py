"""What a run produced: statuses, step and run results, run statistics, and the observer protocol
through which the scheduler tells the outside what happens."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import Enum
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence


def iso_time(moment: datetime) -> str:
    """ISO 8601 in UTC with microseconds and a `Z`, as every report and the history write times:
    `2026-11-25T10:00:00.123456Z` (sorts as text). A naive time is taken as UTC already."""
    if moment.tzinfo is not UTC:  # the times of a run already are: no new object for each
        moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    # isoformat is twice as fast as strftime, and the same text for years 1000 to 9999.
    return moment.isoformat(timespec="microseconds")[:-6] + "Z"


class Status(Enum):
    """The final status of a step instance."""

    PASSED = "passed"
    FAILED = "failed"
    TIMED_OUT = "timed-out"
    CANCELLED = "cancelled"
    SKIPPED = "skipped"
    CACHED = "cached"

    @property
    def ok(self) -> bool:
        """Counts as success for dependents."""
        return self in _OK

    @property
    def is_failure(self) -> bool:
        return self in _FAILURES


# Asked of every result several times over; built once.
_OK = (Status.PASSED, Status.CACHED)
_FAILURES = (Status.FAILED, Status.TIMED_OUT, Status.CANCELLED)
_NOT_RUN = (Status.SKIPPED, Status.CACHED)  # no process of theirs ran in the run


class RunStatus(Enum):
    PASSED = "passed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @classmethod
    def of(cls, steps: Iterable[StepResult], *, interrupted: bool = False) -> RunStatus:
        """Cancelled when interrupted, failed when an instance failed without continue-on-error."""
        if interrupted:
            return cls.CANCELLED
        if any(step.status.is_failure and not step.continue_on_error for step in steps):
            return cls.FAILED
        return cls.PASSED


class TestOutcome(Enum):
    """How one test of a step's own JUnit files ended. JUnit tells a failed assertion
    (`failure`) from an unexpected exception (`error`); both count as failed."""

    __test__ = False  # not a pytest test class

    PASSED = "passed"
    FAILED = "failed"
    ERROR = "error"
    SKIPPED = "skipped"


@dataclass(frozen=True, slots=True, kw_only=True)
class TestCaseResult:
    """One test case of a step's JUnit files: text as the file gave it, cleaned of what XML and
    terminals cannot show; `file` relative to the workspace where it is inside it."""

    __test__ = False

    classname: str
    name: str
    outcome: TestOutcome
    time: float = 0.0
    message: str = ""  # of its failure, error or skip
    text: str = ""  # the failure's or error's text (a traceback), held to a few KiB
    kind: str = ""  # the failure's `type`
    file: str | None = None
    line: int | None = None

    @property
    def test(self) -> str:
        """`classname.name`, the test's name in every report; its `name` alone without a class
        or when both are the same text (jest-junit writes both as `describe title`)."""
        return (
            f"{self.classname}.{self.name}" if self.classname and self.classname != self.name else self.name
        )

    @property
    def failed(self) -> bool:
        return self.outcome in (TestOutcome.FAILED, TestOutcome.ERROR)


def qualified_test_name(instance_id: str, test: str) -> str:
    """`INSTANCE :: classname.name`: a test's name across a run, and across runs to compare."""
    return f"{instance_id} :: {test}"


# The failing tests a record keeps of each instance (run.json's `tests.failures`, the run
# history): all that a comparison with a recorded run can go by.
RECORDED_FAILURES = 50


@dataclass(frozen=True, slots=True, kw_only=True)
class TestResults:
    """What an instance's `junit:` files hold: counts, the failing tests, and every test case
    (empty when read from a run record, which keeps the counts and the first failures only)."""

    __test__ = False

    total: int = 0
    passed: int = 0
    failed: int = 0  # failures and errors
    skipped: int = 0
    failures: tuple[TestCaseResult, ...] = ()  # in file order
    cases: tuple[TestCaseResult, ...] = ()

    def failing_names(self, instance_id: str) -> tuple[str, ...]:
        """`INSTANCE :: classname.name` of each failing test kept: what two runs compare."""
        return tuple(qualified_test_name(instance_id, failure.test) for failure in self.failures)

    @classmethod
    def of(cls, cases: Sequence[TestCaseResult]) -> TestResults:
        """The results of these test cases, every one kept."""
        counts = dict.fromkeys(TestOutcome, 0)
        for case in cases:
            counts[case.outcome] += 1
        failed = counts[TestOutcome.FAILED] + counts[TestOutcome.ERROR]
        return cls(
            total=len(cases),
            passed=counts[TestOutcome.PASSED],
            failed=failed,
            skipped=counts[TestOutcome.SKIPPED],
            failures=tuple(case for case in cases if case.failed),
            cases=tuple(cases),
        )


BLOCKED_ENV = frozenset({"NODE_OPTIONS"})
"""Names GitHub refuses from GITHUB_ENV (compared ignoring case); the runner says so and goes on."""

MAX_FILE_TEXT = 1024 * 1024
"""What one step may write to one of its files: GitHub's limit on a job's outputs and on a step
summary (1 MiB)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class StepFiles:
    """What a step handed on through its GitHub files: `outputs` (GITHUB_OUTPUT, by name),
    `env` (GITHUB_ENV), `path` (GITHUB_PATH, folders in the order written) and `summary`
    (GITHUB_STEP_SUMMARY's markdown, "" when it wrote none)."""

    outputs: Mapping[str, str] = field(default_factory=dict)
    env: Mapping[str, str] = field(default_factory=dict)
    path: tuple[str, ...] = ()
    summary: str = ""

    def __bool__(self) -> bool:
        return bool(self.outputs or self.env or self.path or self.summary)

    def to_json(self) -> dict[str, Any]:
        return {
            "outputs": dict(self.outputs),
            "env": dict(self.env),
            "path": list(self.path),
            "summary": self.summary,
        }

    @classmethod
    def from_json(cls, data: Any) -> StepFiles | None:
        """What `to_json` wrote, read as untrusted (from a cache): None unless every part has
        the shape and bounds that reading a step's files gives (names not empty, no NUL in what
        a process is given, no refused name, each part within `MAX_FILE_TEXT`)."""
        if not isinstance(data, dict):
            return None
        outputs, env = text_mapping(data.get("outputs")), text_mapping(data.get("env"))
        path, summary = data.get("path"), data.get("summary")
        if outputs is None or env is None or not isinstance(path, list) or not isinstance(summary, str):
            return None
        if not all(isinstance(folder, str) and folder and "\0" not in folder for folder in path):
            return None
        if any("\0" in name + value or name.upper() in BLOCKED_ENV for name, value in env.items()):
            return None
        sizes = [sum(len(name) + len(value) for name, value in part.items()) for part in (outputs, env)]
        if max(*sizes, sum(map(len, path)), len(summary)) > MAX_FILE_TEXT:
            return None
        return cls(outputs=outputs, env=env, path=tuple(path), summary=summary)


def text_mapping(data: Any) -> dict[str, str] | None:
    """`data` when it is an object of non-empty names to strings (as JSON gives one), else None."""
    if not isinstance(data, dict):
        return None
    if not all(isinstance(name, str) and name and isinstance(value, str) for name, value in data.items()):
        return None
    return dict(data)


NO_FILES = StepFiles()


@dataclass(frozen=True, slots=True, kw_only=True)
class StepResult:
    """How one instance ended. Times are timezone-aware UTC; `log` is relative to the working dir."""

    id: str
    step: str
    name: str
    matrix: Mapping[str, Any]
    status: Status
    exit_code: int | None = None
    started: datetime | None = None
    finished: datetime | None = None
    duration: float = 0.0
    attempts: int = 0
    cached: bool = False
    reason: str | None = None
    log: str | None = None
    continue_on_error: bool = False
    stage: str | None = None
    group: str | None = None  # the `groups:` entry, if any
    # A failed step's last log lines, masked: what every report shows of its log, since reports
    # open no file a result names (a result read from a run record is untrusted). "" when it
    # printed nothing; None when its log is not here. A copy, so not compared.
    log_tail: str | None = field(default=None, compare=False)
    tests: TestResults | None = None  # what its `junit:` files hold; None without `junit:`
    files: StepFiles = NO_FILES  # what it wrote to its GITHUB_OUTPUT, GITHUB_ENV, ... files

    def __bool__(self) -> bool:
        return self.status.ok or (self.status.is_failure and self.continue_on_error)


@dataclass(frozen=True, slots=True, kw_only=True)
class RunStats:
    max_concurrency_seen: int = 0
    resource_utilization: Mapping[str, float] = field(default_factory=dict)
    critical_path: tuple[str, ...] = ()
    serial_duration: float = 0.0  # the durations of the instances added up
    speedup: float | None = None  # see `speedup`


# Under this wall time, starting processes and keeping the books weigh as much as the steps.
SPEEDUP_MIN_WALL = 1.0


def speedup(steps: Iterable[StepResult], wall: float) -> float | None:
    """The durations of the instances that ran, added up, over the wall time: at most how many
    times faster the run was than running them one after another. At most, because each took
    longer beside others (they share the CPUs) than it would alone.

    None where the figure says nothing: fewer than two instances ran, the run took under
    `SPEEDUP_MIN_WALL`, or it is below 1 (nothing overlapped enough to outweigh the run's own
    start-up and the gaps between steps).
    """
    durations = [step.duration for step in steps if step.started is not None and step.status not in _NOT_RUN]
    if len(durations) < 2 or wall < SPEEDUP_MIN_WALL:
        return None
    ratio = sum(durations) / wall
    return round(ratio, 3) if ratio >= 1 else None


@dataclass(frozen=True, slots=True, kw_only=True)
class DurationChange:
    """An instance that ran in both runs and took notably longer or shorter (seconds)."""

    id: str
    before: float
    after: float


@dataclass(frozen=True, slots=True, kw_only=True)
class Comparison:
    """What changed between a baseline run and this one, instance by instance (ids in the order
    of the run that has them), and test by test (`INSTANCE :: classname.name` names)."""

    baseline_run_id: str
    baseline_branch: str | None = None
    baseline_commit: str | None = None
    new_failures: tuple[str, ...] = ()
    fixed: tuple[str, ...] = ()
    still_failing: tuple[str, ...] = ()
    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    flaky: tuple[str, ...] = ()
    new_test_failures: tuple[str, ...] = ()
    fixed_tests: tuple[str, ...] = ()
    slower: tuple[DurationChange, ...] = ()
    faster: tuple[DurationChange, ...] = ()

    def lists_something(self) -> bool:
        """Whether there is anything to say beyond "same as before"."""
        lists = (self.new_failures, self.fixed, self.still_failing, self.added, self.removed, self.flaky)
        return any((*lists, self.new_test_failures, self.fixed_tests, self.slower, self.faster))


@dataclass(frozen=True, slots=True, kw_only=True)
class RunResult:
    """A finished run: everything the reporters need, and nothing else.

    `playbook_path` and `invocation` (vars, matrix filters, select) let a run be reproduced.
    `shard` is `I/N` for one shard of a sharded run; `notes` say what a reader of the reports
    must know about how they were made (shards missing from a merge). `branch` and `commit` say
    what was tested (None where unknown); `comparison` what changed since a baseline run. A run
    is truthy when it passed.
    """

    run_id: str
    playbook: str
    playbook_path: str
    status: RunStatus
    started: datetime
    finished: datetime
    steps: tuple[StepResult, ...]
    stats: RunStats = field(default_factory=RunStats)
    vars: Mapping[str, str] = field(default_factory=dict)
    matrix_filters: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    interrupted_by: int | None = None  # signal number when interrupted
    secrets: tuple[str, ...] = ()  # values to mask in every report
    shard: str | None = None
    notes: tuple[str, ...] = ()
    select: str | None = None  # the `--select` expression of the run, if any
    branch: str | None = None  # what the run tested, when known: a reader checks it out to reproduce
    commit: str | None = None
    comparison: Comparison | None = None

    def __bool__(self) -> bool:
        return self.status is RunStatus.PASSED

    @property
    def whole(self) -> bool:
        """Whether the run covered its whole playbook: no `--select`, `--shard` or `--matrix`
        left instances out (an instance missing from it is then not in the playbook)."""
        return self.select is None and self.shard is None and not self.matrix_filters

    @property
    def wall_time(self) -> float:
        return (self.finished - self.started).total_seconds()

    def counts(self) -> dict[Status, int]:
        totals = dict.fromkeys(Status, 0)
        for step in self.steps:
            totals[step.status] += 1
        return totals


class RunObserver(Protocol):
    """Events of a run, in order. The core never prints: observers decide how events look."""

    def run_started(self, *, run_id: str, playbook: str, total: int) -> None: ...

    def step_started(self, *, instance_id: str, attempt: int) -> None: ...

    def step_output(self, *, instance_id: str, chunk: bytes) -> None:
        """Output as it comes (masked); sent only when the observer asked for streaming."""

    def step_finished(self, result: StepResult) -> None: ...

    def waiting(self) -> None:
        """The run is about to wait for its processes: show what the events before wrote."""

    def run_finished(self, result: RunResult) -> None: ...


class Observers:
    """Several observers seen as one: each event goes to each, in order."""

    def __init__(self, *observers: RunObserver) -> None:
        self.observers = observers

    def run_started(self, *, run_id: str, playbook: str, total: int) -> None:
        for observer in self.observers:
            observer.run_started(run_id=run_id, playbook=playbook, total=total)

    def step_started(self, *, instance_id: str, attempt: int) -> None:
        for observer in self.observers:
            observer.step_started(instance_id=instance_id, attempt=attempt)

    def step_output(self, *, instance_id: str, chunk: bytes) -> None:
        for observer in self.observers:
            observer.step_output(instance_id=instance_id, chunk=chunk)

    def step_finished(self, result: StepResult) -> None:
        for observer in self.observers:
            observer.step_finished(result)

    def waiting(self) -> None:
        for observer in self.observers:
            observer.waiting()

    def run_finished(self, result: RunResult) -> None:
        for observer in self.observers:
            observer.run_finished(result)
