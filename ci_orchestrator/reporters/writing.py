"""Reports of a finished run: JUnit XML, the markdown job summary and the run record, written together.

Every writer sees only a finished `RunResult`. The writers are imported when used, so importing
this package stays cheap (junit_xml is loaded only to write a JUnit file) and the writers can share
the helpers defined here without an import cycle.
"""

from __future__ import annotations

import functools
import math
import os
import stat
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ci_orchestrator.errors import EXIT_FAILED, Location, OrchestratorError, Problem
from ci_orchestrator.results import Status

if TYPE_CHECKING:
    from collections.abc import Callable

    from ci_orchestrator.results import RunResult, StepResult

REPORTS_DIR = Path(".ci-orchestrator/reports")


@dataclass(frozen=True, slots=True, kw_only=True)
class ReportPaths:
    """Where the reports go; None leaves a report out. Defaults are the command line's."""

    junit: Path | None = field(default_factory=lambda: REPORTS_DIR / "junit.xml")
    summary: Path | None = field(default_factory=lambda: REPORTS_DIR / "summary.md")
    json: Path | None = field(default_factory=lambda: REPORTS_DIR / "run.json")


class ReportError(OrchestratorError):
    """Some report files could not be written (exit 1). The others were written.

    `summary` holds the rendered summary text all the same, for `$GITHUB_STEP_SUMMARY`.
    """

    exit_code = EXIT_FAILED
    summary: str = ""


def write_all(result: RunResult, paths: ReportPaths) -> str:
    """Write the JUnit file, the summary and the run record; return the summary text.

    A report that cannot be written does not stop the others: every failure is collected and
    raised at the end as one `ReportError` (one problem per file), which still carries the summary.
    """
    from ci_orchestrator.reporters.junit import write_junit
    from ci_orchestrator.reporters.markdown import render_summary
    from ci_orchestrator.reporters.run_record import write_run_record

    summary = render_summary(result)
    problems: list[Problem] = []

    def attempt(path: Path | None, write: Callable[[Path], None]) -> None:
        if path is None:
            return
        try:
            write(path)
        except OSError as error:
            reason = error.strerror or str(error)
            problems.append(
                Problem(location=Location(file=str(path)), path="", message=f"cannot write report: {reason}")
            )

    attempt(paths.junit, lambda path: write_junit(result, path))
    attempt(paths.summary, lambda path: write_atomic(path, summary))
    attempt(paths.json, lambda path: write_run_record(result, path))
    if problems:
        first = problems[0]
        error = ReportError(first.message, location=first.location)
        error.problems = tuple(problems)
        error.summary = summary
        raise error
    return summary


def write_atomic(path: Path | str, text: str) -> None:
    """Write UTF-8 `text` to `path` through a temporary file and a rename, creating parent folders.

    A reader (or a crash) never sees half a report, and a failed write leaves the old file whole.
    A symbolic link stays: the file it leads to is the one replaced. What is not a regular file
    (`/dev/stdout`, a FIFO, a device, `>(...)`) is written into, never replaced.
    """
    target = Path(path)
    try:
        mode: int | None = target.stat().st_mode  # through a link
    except OSError:
        mode = None
    if mode is not None and not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        with target.open("w", encoding="utf-8", newline="\n") as stream:
            stream.write(text)
        return
    if target.is_symlink():
        target = Path(os.path.realpath(target))
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        # mkstemp makes the file private (0600); a report is shared like any file the user writes
        # (an artifact upload, a web server, another account on a shared runner).
        os.fchmod(handle, 0o666 & ~_umask())
        with os.fdopen(handle, "w", encoding="utf-8", newline="\n") as file:
            file.write(text)
        Path(temporary).replace(target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


@functools.cache
def _umask() -> int:
    # The umask can only be read by setting it; done once, and set meanwhile to the usual value.
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def failure_message(step: StepResult) -> str:
    """One line on how a failed, timed-out or cancelled instance ended (JUnit `message`, summary).

    `exit code 3`, `timed out after 30s (exit code 124)`, or the recorded reason.
    """
    code = f"exit code {step.exit_code}" if step.exit_code is not None else ""
    if step.status is Status.TIMED_OUT:
        # The limit itself is not recorded; the time the step ran is the nearest fact.
        limit = f"{round(step.duration)}s" if step.duration < 60 else format_seconds(step.duration)
        # A bare "timed out" says less than the time it ran.
        bare = not step.reason or step.reason.strip().lower() == "timed out"
        text = f"timed out after {limit}" if bare else str(step.reason)
    elif step.status is Status.CANCELLED:
        text = step.reason or "cancelled"
    else:
        text = code or step.reason or "failed"
    if code and "exit code" not in text:
        text = f"{text} ({code})"
    return " ".join(text.split())


def tail_note(step: StepResult) -> str:
    """What a report says of a failed instance's log when it has no line of it to show."""
    if step.log_tail == "":
        return "It printed nothing."
    if step.log:
        # A record's `log` is a path on the machine that ran the step: named, never opened.
        return f"Its log tail is not in the run record: the log was {step.log} where it ran."
    return "It left no log."


def format_seconds(seconds: float) -> str:
    """A duration for people: `0.4s`, `12.3s`, `2m 05s`, `1h 02m 03s`."""
    if not math.isfinite(seconds) or seconds < 0:
        seconds = 0.0
    if seconds < 60:
        return f"{seconds:.1f}s"
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes:02d}m {secs:02d}s"
    return f"{minutes}m {secs:02d}s"
