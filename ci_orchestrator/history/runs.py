"""What the run database gives back: runs, their steps and states, read from SQLite rows; and
the text form of its times."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from typing import TYPE_CHECKING, Any

from ci_orchestrator.output.untrusted import NotJson, parse_json
from ci_orchestrator.results import Status

if TYPE_CHECKING:
    import sqlite3
    from collections.abc import Mapping


class RunState(Enum):
    """A recorded run's status: a finished run's `RunStatus`, or what became of an unfinished one."""

    PASSED = "passed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    RUNNING = "running"  # unfinished, and the process that started it is still alive
    INTERRUPTED = "interrupted"  # unfinished, and its process is gone


@dataclass(frozen=True, slots=True, kw_only=True)
class RunSummary:
    """One line of `history`. `duration` is None for a run that never finished."""

    run_id: str
    playbook: str
    playbook_path: str
    status: RunState
    started: datetime
    finished: datetime | None
    duration: float | None
    total: int
    counts: Mapping[Status, int]


@dataclass(frozen=True, slots=True, kw_only=True)
class StepRecord:
    """How one step instance of a recorded run ended."""

    id: str
    step: str
    matrix: Mapping[str, Any]
    status: Status
    exit_code: int | None
    attempts: int
    started: datetime | None
    finished: datetime | None
    duration: float
    cached: bool
    reason: str | None
    log: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class RunDetail:
    """`history show RUN_ID`: the run and its steps in the order they were recorded."""

    summary: RunSummary
    steps: tuple[StepRecord, ...]


def run_summary(row: sqlite3.Row, counts: Mapping[Status, int]) -> RunSummary:
    """One `runs` row as a summary; an unfinished run is running or interrupted, as its process is."""
    begun = parse_time(row["started"])
    ended = parse_time(row["finished"])
    if row["status"] is not None:
        state = RunState(row["status"])
    else:
        alive = still_running(row["host"], row["pid"], since=begun)
        state = RunState.RUNNING if alive else RunState.INTERRUPTED
    return RunSummary(
        run_id=row["run_id"],
        playbook=row["playbook"],
        playbook_path=row["playbook_path"],
        status=state,
        started=begun or datetime.fromtimestamp(0, UTC),
        finished=ended,
        duration=(ended - begun).total_seconds() if ended and begun else None,
        total=row["total"],
        counts=counts,
    )


def step_record(row: sqlite3.Row) -> StepRecord:
    """One `steps` row as a record."""
    return StepRecord(
        id=row["id"],
        step=row["step"],
        matrix=_matrix(row["matrix"]),
        status=Status(row["status"]),
        exit_code=row["exit_code"],
        attempts=row["attempts"],
        started=parse_time(row["started"]),
        finished=parse_time(row["finished"]),
        duration=row["duration"],
        cached=bool(row["cached"]),
        reason=row["reason"],
        log=row["log"],
    )


def _matrix(text: str) -> dict[str, Any]:
    """A step's matrix values, read as `transfer` checks a history carried here; what an older
    version took in and cannot be read shows as none."""
    try:
        value = parse_json(text)
    except NotJson:
        return {}
    return value if isinstance(value, dict) else {}


def parse_time(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


def still_running(host: str, pid: int, *, since: datetime | None = None) -> bool:
    """Whether the process that started a run is alive. Another machine's process cannot be
    asked: a run from there that never finished is taken as interrupted. A pid recycled by a
    process that started after the run did (pids wrap at 32768 on many machines) is not it."""
    if host != os.uname().nodename:  # what socket.gethostname() reads, without loading socket
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    started = _process_started(pid)
    return not (since is not None and started is not None and started > since.timestamp() + 1.0)


def _process_started(pid: int) -> float | None:
    """When a process started, in seconds since the epoch, from /proc (None where unknown)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:  # noqa: PTH123 - a /proc read, no Path needed
            fields = stat.read().rsplit(b")", 1)[1].split()
        with open("/proc/stat", "rb") as system:  # noqa: PTH123
            boot = next(int(line.split()[1]) for line in system if line.startswith(b"btime "))
        return boot + int(fields[19]) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, StopIteration):
        return None
