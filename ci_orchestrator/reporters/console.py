"""The console view of a run: step output grouped, streamed or shown only on failure, a live
progress view on a terminal, and a closing summary.

Everything goes to one stream (stdout by default): progress lines, step logs and GitHub workflow
commands stay in the order they happened, and the runner reads workflow commands from stdout.
Secret values are masked in every line written.
"""

from __future__ import annotations

import codecs
import itertools
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

from ci_orchestrator import ci
from ci_orchestrator.masking import mask, mask_values
from ci_orchestrator.output_mode import OutputMode
from ci_orchestrator.reporters import github
from ci_orchestrator.reporters.console_writer import ConsoleWriter, may_block, write_out
from ci_orchestrator.reporters.live import LiveView, Progress
from ci_orchestrator.reporters.logs import read_tail, strip_ansi
from ci_orchestrator.reporters.writing import failure_message, format_seconds
from ci_orchestrator.results import RunStatus, Status

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Mapping
    from typing import TextIO

    from ci_orchestrator.results import RunResult, StepResult

_CHUNK = 64 * 1024  # logs are echoed in pieces of about this many characters
_ANNOTATION_LINES = 10
_STYLES = {
    Status.PASSED: "green",
    Status.CACHED: "cyan",
    Status.SKIPPED: "yellow",
    Status.FAILED: "bold red",
    Status.TIMED_OUT: "bold red",
    Status.CANCELLED: "bold red",
}


class ConsoleReporter:
    """A `RunObserver` that shows a run on a text stream.

    On a terminal (and not under CI) a live view shows the running steps; elsewhere each start
    and finish is one line. Under GitHub Actions logs are folded in `::group::` and failures
    annotated. `secrets` are masked from the first event; `RunResult.secrets` from the summary on:
    in what steps print and in our own lines that name an instance (a matrix value may be one).
    """

    def __init__(
        self,
        stream: TextIO | None = None,
        *,
        mode: OutputMode = OutputMode.GROUPED,
        secrets: Iterable[str] = (),
        environ: Mapping[str, str] | None = None,
        tail_lines: int = 20,
        live: bool | None = None,
    ) -> None:
        env = os.environ if environ is None else environ
        self._stream = sys.stdout if stream is None else stream
        self._mode = mode
        self._secrets = mask_values(secrets)
        self._tail_lines = tail_lines
        self._github = github.WorkflowCommands() if github.active(env) else None
        if live is None:
            in_ci = ci.under_ci(env)
            dumb = env.get("TERM") == "dumb"  # cannot redraw: plain lines say more
            live = self._stream.isatty() and not (in_ci or dumb) and mode is not OutputMode.QUIET
        self._live = live
        # Off a terminal, a console that may read slowly (a pipe) is written on a thread of its
        # own: a stalled reader must not hold up the step loop and its timeouts.
        self._writer = (
            None
            if live or not may_block(self._stream)
            else ConsoleWriter(self._stream, on_lost=self._console_lost)
        )
        self._view: LiveView | None = None
        self._progress = Progress()
        self._buffers: dict[str, _LineBuffer] = {}
        self._tails: dict[str, str] = {}
        self._pending: list[str] = []  # written, not yet passed to the stream (see _flush)
        self._held = False  # under GitHub: workflow commands stopped while steps' text is echoed
        self._pending_size = 0
        # The scheduler may report from several threads; lines of one event stay together.
        self._lock = threading.RLock()

    # -- RunObserver ---------------------------------------------------------------------------

    def run_started(self, *, run_id: str, playbook: str, total: int) -> None:
        with self._lock:
            self._progress.total = total
            if self._github:
                self._commands(self._github.add_masks(self._secrets))
            if self._live:
                self._view = LiveView(self._stream, self._progress)
            elif self._mode is not OutputMode.QUIET:
                self._line(f"{playbook}: {total} step{'s' * (total != 1)} (run {run_id})")
            self._flush()

    def step_started(self, *, instance_id: str, attempt: int) -> None:
        with self._lock:
            shown = mask(instance_id, self._secrets)
            self._progress.running[shown] = time.monotonic()
            if self._view is not None:
                self._view.refresh()
            elif self._mode is not OutputMode.QUIET:
                again = f" (attempt {attempt})" if attempt > 1 else ""
                self._line(f"{'start':<9} {shown}{again}")

    def step_output(self, *, instance_id: str, chunk: bytes) -> None:
        if self._mode is not OutputMode.STREAM:
            return
        with self._lock:
            buffer = self._buffers.setdefault(instance_id, _LineBuffer(self._secrets))
            lines = buffer.feed(chunk)
            if lines:
                self._hold_commands()
            shown = mask(instance_id, self._secrets)
            for line in lines:
                self._log(_streamed(shown, line))
            self._flush()

    def step_finished(self, result: StepResult) -> None:
        with self._lock:
            shown = mask(result.id, self._secrets)
            self._progress.running.pop(shown, None)
            self._progress.done += 1
            if result.status.is_failure:
                self._progress.failed.append(shown)
            if self._view is not None:
                self._view.refresh()
            if (buffer := self._buffers.pop(result.id, None)) and (rest := buffer.rest()):
                self._hold_commands()
                self._log(_streamed(shown, rest))
            shows_log = self._mode is OutputMode.GROUPED or (
                self._mode is OutputMode.QUIET and result.status.is_failure
            )
            if shows_log and result.status not in (Status.SKIPPED, Status.CACHED):
                self._finish_with_log(result)
            elif self._mode is not OutputMode.QUIET:
                self._finish_line(result)
            if self._github and result.status.is_failure:
                self._annotate(result, self._github)

    def waiting(self) -> None:
        """The run waits for its processes: what the events before wrote reaches the console
        now, in one write rather than one a line."""
        with self._lock:
            self._flush()

    def run_finished(self, result: RunResult) -> None:
        with self._lock:
            self.close()
            secrets = mask_values((*self._secrets, *result.secrets))
            if self._github:
                self._commands(self._github.add_masks(secrets))
            self._summary(result, secrets)
            if self._github:
                self._commands(self._github.annotate_rest(tails=self._tails))
            self._flush()

    def close(self) -> None:
        """Stop the live view (also when a run ends without `run_finished`); its console stays.
        Off a terminal, what was written reaches the console (and is written out, when a
        thread writes it)."""
        self._release_commands()
        if self._view is not None:
            self._view.stop()
        else:
            self._flush()
            if self._writer is not None:
                self._writer.sync()

    # -- pieces --------------------------------------------------------------------------------

    def _finish_line(
        self, result: StepResult, *, prefix: str = "", secrets: tuple[str, ...] | None = None
    ) -> None:
        text = mask(_finish_text(result), self._secrets if secrets is None else secrets)
        self._line(prefix + text, style=_STYLES[result.status])

    def _finish_with_log(self, result: StepResult) -> None:
        chunks = _masked_chunks(result.log, self._secrets)
        first = next(chunks, "")
        if not first:
            self._finish_line(result)
            return
        if self._github is None:
            self._finish_line(result)
            self._log_chunks(first, chunks)
            self._line(f"{'':<9} end of {mask(result.id, self._secrets)}")
            return
        self._commands([self._github.group(mask(_finish_text(result), self._secrets))])
        self._hold_commands()
        self._log_chunks(first, chunks)
        self._release_commands()
        self._line(self._github.endgroup())

    def _log_chunks(self, first: str, rest: Iterator[str]) -> None:
        ends_with_newline = True
        for chunk in itertools.chain((first,), rest):
            self._log(chunk, end="")
            ends_with_newline = chunk.endswith("\n")
        if not ends_with_newline:
            self._log("")

    def _annotate(self, result: StepResult, commands: github.WorkflowCommands) -> None:
        tail = mask(strip_ansi(read_tail(result.log, lines=_ANNOTATION_LINES)), self._secrets)
        self._tails[result.id] = tail
        self._commands(commands.annotate(result, tail=tail))

    def _summary(self, result: RunResult, secrets: tuple[str, ...]) -> None:
        failures = [step for step in result.steps if step.status.is_failure]
        if failures:
            self._line("")
            self._line("Failed steps:", style="bold")
        for step in failures:
            self._finish_line(step, prefix="  ", secrets=secrets)
            tail = mask(read_tail(step.log, lines=self._tail_lines), secrets)
            if tail:
                self._guarded([f"      {line}" for line in tail.splitlines()])
        if self._mode is not OutputMode.QUIET:
            self._line("")
            for line in group_lines(result.steps):
                self._line(mask(line, secrets))
            self._line(count_line(result))
        self._line(mask(result_line(result), secrets), style="bold green" if result else "bold red")

    def _guarded(self, lines: list[str]) -> None:
        """Echo a step's own text; under GitHub no line of it may act as a workflow command."""
        self._hold_commands()
        for line in lines:
            self._log(line)
        self._release_commands()

    def _hold_commands(self) -> None:
        """Under GitHub, before a step's own text: stop workflow commands until released.

        A prefix alone does not disarm a line: the runner also obeys the older `##[command]`
        form anywhere in a line, and ends lines at a bare CR too. Streamed lines keep commands
        stopped from one to the next; our own commands release them first.
        """
        if self._github and not self._held:
            self._line(self._github.stop_commands())
            self._held = True

    def _release_commands(self) -> None:
        if self._github and self._held:
            self._line(self._github.resume_commands())
            self._held = False

    def _commands(self, lines: list[str]) -> None:
        if lines:
            self._release_commands()
        for line in lines:
            self._line(line)

    def _line(self, text: str, *, style: str | None = None) -> None:
        """One line of our own text (never markup, never re-wrapped)."""
        text = _one_line(text)
        if self._view is not None:
            self._view.print_line(text, style=style)
        else:
            self._write(text + "\n")

    def _log(self, text: str, *, end: str = "\n") -> None:
        """Text a step printed: on a terminal its colours are kept."""
        if self._view is not None:
            self._view.print_ansi(text, end=end)
        else:
            self._write(text + end)

    def _write(self, text: str) -> None:
        # Kept until the next flush (a step's whole log is passed on in pieces of _CHUNK).
        self._pending.append(text)
        self._pending_size += len(text)
        if self._pending_size >= _CHUNK:
            self._drain()

    def _drain(self) -> None:
        """What was written goes to the console (through the writer's thread, when there is one)."""
        if not self._pending:
            return
        text = "".join(self._pending)
        self._pending.clear()
        self._pending_size = 0
        if self._writer is not None:
            self._writer.put(text)
            return
        try:
            write_out(self._stream, text)
        except OSError:
            self._console_lost()

    def _flush(self) -> None:
        if self._view is None:
            self._drain()

    def _console_lost(self) -> None:
        """The console is gone (a closed pipe, a full disk under a redirect): the run and its
        reports matter more, so the rest of the console text goes to /dev/null, where the
        interpreter's own flush at exit cannot fail again."""
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, self._stream.fileno())
            os.close(devnull)
        except (OSError, AttributeError, ValueError):
            pass  # a stream without a file descriptor: its next write fails the same way


class _LineBuffer:
    """Streamed bytes of one instance, cut into masked whole lines; a partial line waits."""

    def __init__(self, secrets: tuple[str, ...]) -> None:
        self._secrets = secrets
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._pending = ""

    def feed(self, chunk: bytes) -> list[str]:
        lines = (self._pending + self._decoder.decode(chunk)).split("\n")
        self._pending = lines.pop()
        if len(self._pending) > _CHUNK:  # a huge line without end is shown in pieces
            cut = len(self._pending) - _secret_start(self._pending, self._secrets)
            lines.append(self._pending[:cut])
            self._pending = self._pending[cut:]
        return [mask(line.rstrip("\r"), self._secrets) for line in lines]

    def rest(self) -> str:
        text, self._pending = self._pending + self._decoder.decode(b"", final=True), ""
        return mask(text.rstrip("\r"), self._secrets)


def _masked_chunks(log: str | None, secrets: tuple[str, ...]) -> Iterator[str]:
    """A log file's text in pieces of whole lines, secrets masked, never read whole.

    A missing file gives nothing. A piece ends at a line end when it can; a line longer than a
    piece is cut, holding back any end that could begin a secret.
    """
    if not log:
        return
    try:
        path = Path(log)
        if not path.stat().st_size:  # most steps print nothing: no text decoder for them
            return
        file = path.open(encoding="utf-8", errors="replace", newline="")
    except OSError:
        return
    with file:
        carry = ""
        while piece := file.read(_CHUNK):
            text = carry + piece
            cut = text.rfind("\n") + 1 or len(text) - _secret_start(text, secrets)
            carry = text[cut:]
            yield mask(text[:cut], secrets)
        if carry:
            yield mask(carry, secrets)


def _secret_start(text: str, secrets: tuple[str, ...]) -> int:
    """The length of the longest end of `text` that could be the start of a secret."""
    longest = max((len(value) for value in secrets), default=0)
    for size in range(min(longest - 1, len(text)), 0, -1):
        if any(value.startswith(text[-size:]) for value in secrets):
            return size
    return 0


def _streamed(instance_id: str, line: str) -> str:
    """A streamed line with its instance's prefix, repeated after each bare CR: a terminal
    redraws the line from there, and GitHub's runner starts a new line there."""
    prefix = f"[{_one_line(instance_id)}] "
    return prefix + line.replace("\r", "\r" + prefix) if "\r" in line else prefix + line


def _one_line(text: str) -> str:
    """Our own text on one line: a CR or LF in it (a matrix value in an instance id, say) is
    shown as `\\r` or `\\n`, never ends the line where a workflow command could start."""
    if "\r" in text or "\n" in text:
        return text.replace("\r", "\\r").replace("\n", "\\n")
    return text


def _finish_text(result: StepResult) -> str:
    text = f"{result.status.value:<9} {result.id}"
    if result.status is Status.SKIPPED:
        return f"{text} ({result.reason})" if result.reason else text
    if result.status.is_failure:
        text = f"{text} after {format_seconds(result.duration)}: {failure_message(result)}"
        return text + (" (continue-on-error)" if result.continue_on_error else "")
    return f"{text} in {format_seconds(result.duration)}"


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
    """`ci failed in 12.3s (steps one after another: 29.5s, 2.40x speed-up)`."""
    if result.interrupted_by is not None:
        try:
            how = f"interrupted by {signal.Signals(result.interrupted_by).name}"
        except ValueError:
            how = f"interrupted by signal {result.interrupted_by}"
    else:
        how = {RunStatus.PASSED: "passed", RunStatus.FAILED: "failed"}.get(result.status, "cancelled")
    line = f"{result.playbook} {how} in {format_seconds(result.wall_time)}"
    stats = result.stats
    if stats.serial_duration > 0:
        line += (
            f" (steps one after another: {format_seconds(stats.serial_duration)},"
            f" {stats.speedup:.2f}x speed-up)"
        )
    return line
