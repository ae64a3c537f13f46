"""What a run produced: statuses, step and run results, run statistics, and the observer protocol
through which the scheduler tells the outside what happens."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import Enum
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping


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

    def __bool__(self) -> bool:
        return self.status.ok or (self.status.is_failure and self.continue_on_error)


@dataclass(frozen=True, slots=True, kw_only=True)
class RunStats:
    max_concurrency_seen: int = 0
    resource_utilization: Mapping[str, float] = field(default_factory=dict)
    critical_path: tuple[str, ...] = ()
    serial_duration: float = 0.0
    speedup: float = 1.0


@dataclass(frozen=True, slots=True, kw_only=True)
class DurationChange:
    """An instance that ran in both runs and took notably longer or shorter (seconds)."""

    id: str
    before: float
    after: float


@dataclass(frozen=True, slots=True, kw_only=True)
class Comparison:
    """What changed between a baseline run and this one, instance by instance (ids in the order
    of the run that has them)."""

    baseline_run_id: str
    baseline_branch: str | None = None
    baseline_commit: str | None = None
    new_failures: tuple[str, ...] = ()
    fixed: tuple[str, ...] = ()
    still_failing: tuple[str, ...] = ()
    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    flaky: tuple[str, ...] = ()
    slower: tuple[DurationChange, ...] = ()
    faster: tuple[DurationChange, ...] = ()

    def lists_something(self) -> bool:
        """Whether there is anything to say beyond "same as before"."""
        return any(
            (self.new_failures, self.fixed, self.still_failing, self.added, self.removed, self.flaky)
        ) or bool(self.slower or self.faster)


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
    branch: str | None = None
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
