"""The console's text: lines of a step's streamed output, the lines the console writes of its
own (a step's end, groups, counts, the run's result), and a step's text cut into the lines
GitHub's runner reads."""

from __future__ import annotations

import codecs
import re
import signal
from typing import TYPE_CHECKING

from ci_orchestrator.reporters.writing import failure_message, format_seconds
from ci_orchestrator.results import RunStatus, Status

if TYPE_CHECKING:
    from collections.abc import Iterable

    from ci_orchestrator.results import RunResult, StepResult

LONGEST_LINE = 64 * 1024  # characters of a line without end shown before the rest comes


class LineBuffer:
    """Streamed bytes of one instance, cut into whole lines; a partial line waits."""

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._pending = ""

    def feed(self, chunk: bytes, secrets: tuple[str, ...]) -> list[str]:
        """The lines `chunk` completes (without their ends). A huge line without end is given
        in pieces, holding back an end that could begin one of `secrets`."""
        lines = (self._pending + self._decoder.decode(chunk)).split("\n")
        self._pending = lines.pop()
        if len(self._pending) > LONGEST_LINE:
            cut = len(self._pending) - secret_start(self._pending, secrets)
            lines.append(self._pending[:cut])
            self._pending = self._pending[cut:]
        return lines

    def rest(self) -> str:
        text, self._pending = self._pending + self._decoder.decode(b"", final=True), ""
        return text


def secret_start(text: str, secrets: tuple[str, ...]) -> int:
    """The length of the longest end of `text` that could be the start of a secret."""
    longest = max((len(value) for value in secrets), default=0)
    for size in range(min(longest - 1, len(text)), 0, -1):
        if any(value.startswith(text[-size:]) for value in secrets):
            return size
    return 0


_LINE_END = re.compile(r"(\r\n|\r|\n)")


def runner_lines(text: str) -> list[tuple[str, str]]:
    """`text` as the lines GitHub's runner reads, each with the end that followed it (a line
    ends at LF, CR or CRLF; the last may have none)."""
    parts = _LINE_END.split(text)
    parts.append("")
    return [(parts[index], parts[index + 1]) for index in range(0, len(parts) - 1, 2)]


def streamed(instance_id: str, line: str) -> str:
    """A streamed line with its instance's prefix, repeated after each bare CR: a terminal
    redraws the line from there, and GitHub's runner starts a new line there."""
    prefix = f"[{one_line(instance_id)}] "
    return prefix + line.replace("\r", "\r" + prefix) if "\r" in line else prefix + line


def one_line(text: str) -> str:
    """Our own text on one line: a CR or LF in it (a matrix value in an instance id, say) is
    shown as `\\r` or `\\n`, never ends the line where a workflow command could start."""
    if "\r" in text or "\n" in text:
        return text.replace("\r", "\\r").replace("\n", "\\n")
    return text


def finish_text(result: StepResult) -> str:
    text = f"{result.status.value:<9} {result.id}"
    if result.status is Status.SKIPPED:
        return f"{text} ({result.reason})" if result.reason else text
    if result.status.is_failure:
        text = f"{text} after {format_seconds(result.duration)}: {failure_message(result)}"
        text += " (continue-on-error)" if result.continue_on_error else ""
        return text + _attempts(result) + _tests(result)
    return f"{text} in {format_seconds(result.duration)}{_attempts(result)}{_tests(result)}"


def _attempts(result: StepResult) -> str:
    """` (attempt 2)` for an instance that `retry` ran again: a pass after a failure is seen
    the first time, not only in the next run's comparison."""
    return f" (attempt {result.attempts})" if result.attempts > 1 and not result.cached else ""


def _tests(result: StepResult) -> str:
    """` (1,204 tests: 3 failed, 11 skipped)` for an instance with test results."""
    tests = result.tests
    if tests is None:
        return ""
    counts = [
        f"{count:,} {what}" for count, what in ((tests.failed, "failed"), (tests.skipped, "skipped")) if count
    ]
    return f" ({tests.total:,} test{'s' * (tests.total != 1)}" + (
        f": {', '.join(counts)})" if counts else ")"
    )


def failing_tests_line(result: StepResult, *, names: int = 5) -> str | None:
    """`failing tests: tests.test_a.test_x, tests.test_b.test_y and 3 more`; None with none."""
    tests = result.tests
    if tests is None or not tests.failures:
        return None
    shown = ", ".join(failure.test for failure in tests.failures[:names])
    more = tests.failed - min(names, len(tests.failures))
    return f"failing tests: {shown}" + (f" and {more:,} more" if more > 0 else "")


def group_lines(steps: Iterable[StepResult]) -> list[str]:
    """One line per `groups:` entry: `group checks: 5 completed, 4 successful, 1 failed (lint)`."""
    groups: dict[str, list[StepResult]] = {}
    for step in steps:
        if step.group is not None:
            groups.setdefault(step.group, []).append(step)
    lines = []
    for name, members in groups.items():
        completed = [step for step in members if step.status is not Status.SKIPPED]
        ok = sum(step.status.ok for step in members)
        failed = [step.id for step in members if step.status.is_failure]
        line = f"group {name}: {len(completed)} completed, {ok} successful, {len(failed)} failed"
        line += f" ({', '.join(failed)})" if failed else ""
        skipped = len(members) - len(completed)
        lines.append(line + (f", {skipped} skipped" if skipped else ""))
    return lines


def count_line(result: RunResult) -> str:
    """`7 steps: 3 passed, 1 failed, 1 skipped, 2 cached`."""
    counts = [f"{count} {status.value}" for status, count in result.counts().items() if count]
    total = len(result.steps)
    return f"{total} step{'s' * (total != 1)}" + (f": {', '.join(counts)}" if counts else "")


def result_line(result: RunResult) -> str:
    """`ci failed in 12.3s (at most 2.40x faster than one after another: the steps' durations
    add up to 29.5s)`; the speed-up only where it means something (see `results.speedup`)."""
    if result.interrupted_by is not None:
        try:
            how = f"interrupted by {signal.Signals(result.interrupted_by).name}"
        except ValueError:
            how = f"interrupted by signal {result.interrupted_by}"
    else:
        how = {RunStatus.PASSED: "passed", RunStatus.FAILED: "failed"}.get(result.status, "cancelled")
    line = f"{result.playbook} {how} in {format_seconds(result.wall_time)}"
    stats = result.stats
    if stats.speedup is not None:
        line += (
            f" (at most {stats.speedup:.2f}x faster than one after another:"
            f" the steps' durations add up to {format_seconds(stats.serial_duration)})"
        )
    return line
