"""What the end of a process, or a step that never ran, becomes: a status, the reason in the
user's words, and the instance's `StepResult`."""

from __future__ import annotations

import signal
from typing import TYPE_CHECKING

from ci_orchestrator.results import NO_FILES, Status, StepResult

if TYPE_CHECKING:
    from datetime import datetime
    from pathlib import Path

    from ci_orchestrator.playbook.model import Instance
    from ci_orchestrator.results import StepFiles
    from ci_orchestrator.run.events import Exited


def exit_status(event: Exited, timeout: float | None) -> tuple[Status, str | None]:
    """How a process's end counts, and why when it is not a plain pass."""
    if event.cancelled:
        return Status.CANCELLED, "cancelled: run interrupted"
    if event.timed_out:
        return Status.TIMED_OUT, f"timed out after {timeout or 0:g}s"
    if event.error is not None:
        return Status.FAILED, event.error
    if event.exit_code == 0:
        return Status.PASSED, f"log incomplete: {event.log_error}" if event.log_error else None
    return Status.FAILED, f"exit code {event.exit_code}{_signal_note(event.exit_code)}"


def need_failed(need: str, status: Status) -> str:
    """Why a step is skipped: `needs 'build', which failed` (or was skipped, timed out, ...)."""
    verb = {Status.SKIPPED: "was skipped", Status.CACHED: "was cached"}.get(status, status.value)
    return f"needs '{need}', which {verb}"


def step_result(
    instance: Instance,
    status: Status,
    *,
    log_dir: str,
    started: datetime | None = None,
    finished: datetime | None = None,
    exit_code: int | None = None,
    attempts: int = 0,
    log: Path | None = None,
    reason: str | None = None,
    cached: bool = False,
    files: StepFiles = NO_FILES,
) -> StepResult:
    """The instance's result; what is not given is what a step that never ran has. `log_dir` is
    the run's log folder as reports show it (relative to the workspace)."""
    duration = (finished - started).total_seconds() if started and finished else 0.0
    return StepResult(
        id=instance.id,
        step=instance.step.id,
        name=instance.name,
        matrix=instance.matrix,
        status=status,
        exit_code=exit_code,
        started=started,
        finished=finished,
        duration=duration,
        attempts=attempts,
        cached=cached,
        reason=reason,
        log=f"{log_dir}/{log.name}" if log else None,
        continue_on_error=instance.continue_on_error,
        stage=instance.step.stage,
        group=instance.step.block,
        files=files,
    )


def _signal_note(code: int | None) -> str:
    """` (killed by SIGXFSZ)` for 128+N when N is a signal: says why a step died so suddenly."""
    if code is None or not 128 < code < 128 + signal.NSIG:
        return ""
    try:
        return f" (killed by {signal.Signals(code - 128).name})"
    except ValueError:
        return ""
