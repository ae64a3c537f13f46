"""The console view of a run: step output grouped, streamed or shown only on failure, a live
progress view on a terminal, and a closing summary.

Quiet (the mode outside GitHub Actions) gives a line for each step that ends and the log of a
failed one, its last `FAILURE_LINES` lines where no group folds it: what a reader needs of a
failing test run is its end (the failures, the short summary), not the dots before them. Every
log is whole in its file, which the last lines name.

Everything goes to one stream (stdout by default): progress lines, step logs and GitHub workflow
commands stay in the order they happened, and the runner reads workflow commands from stdout.
Secret values are masked in every line written, and the values steps announce with
`::add-mask::` from then on.

Under GitHub Actions a step's text is echoed with workflow commands stopped, but the commands
that work there as they would in a step of its own (masks, annotations) are written as the
console's own; none of the console's own lines can act as a command (`workflow_commands.inert`).
"""

from __future__ import annotations

import itertools
import os
import sys
import threading
import time
from typing import TYPE_CHECKING

from ci_orchestrator import ci
from ci_orchestrator.output.masking import mask, mask_values
from ci_orchestrator.output.mode import OutputMode
from ci_orchestrator.output.text import strip_ansi
from ci_orchestrator.output.workflow_commands import inert, parse
from ci_orchestrator.reporters import github
from ci_orchestrator.reporters.console_text import (
    LineBuffer,
    count_line,
    failing_tests_line,
    finish_text,
    group_lines,
    one_line,
    result_line,
    runner_lines,
    secret_start,
    streamed,
)
from ci_orchestrator.reporters.console_writer import ConsoleWriter, may_block, write_out
from ci_orchestrator.reporters.live import LiveView, Progress
from ci_orchestrator.reporters.logs import PIECE, log_end, read_tail, text_pieces
from ci_orchestrator.results import Status

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping
    from typing import TextIO

    from ci_orchestrator.output.workflow_commands import Command
    from ci_orchestrator.results import RunResult, StepResult

_ANNOTATION_LINES = 10
FAILURE_LINES = 500  # of a failed step's log, shown in quiet mode outside GitHub Actions
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
    (but in quiet mode) and finish is one line. Under GitHub Actions logs are folded in
    `::group::` and failures annotated. `secrets` are masked from the first event;
    `RunResult.secrets` from the summary on: in what steps print and in our own lines that name
    an instance (a matrix value may be one).
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
            live = self._stream.isatty() and not (in_ci or dumb)
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
        self._buffers: dict[str, LineBuffer] = {}
        self._announced: list[str] = []  # values steps announced with `::add-mask::`, in order
        self._tails: dict[str, str] = {}
        self._pending: list[str] = []  # written, not yet passed to the stream (see _flush)
        self._held = False  # under GitHub: workflow commands stopped while steps' text is echoed
        self._pending_size = 0
        # The scheduler may report from several threads; lines of one event stay together.
        self._lock = threading.RLock()

    @property
    def announced_masks(self) -> tuple[str, ...]:
        """The values the steps announced with `::add-mask::`: secrets for the reports too."""
        with self._lock:
            return tuple(self._announced)

    # -- RunObserver ---------------------------------------------------------------------------

    def run_started(self, *, run_id: str, playbook: str, total: int) -> None:
        with self._lock:
            self._progress.total = total
            if self._github:
                self._commands(self._github.add_masks(self._secrets))
            if self._live:
                self._view = LiveView(self._stream, self._progress)
            else:
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
            buffer = self._buffers.setdefault(instance_id, LineBuffer())
            shown = mask(instance_id, self._secrets)
            for line in buffer.feed(chunk, self._secrets):
                self._echo(line + "\n", prefix=shown)
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
                self._echo(rest + "\n", prefix=shown)
            ran = result.status not in (Status.SKIPPED, Status.CACHED)
            shows_log = self._mode is OutputMode.GROUPED or (
                self._mode is OutputMode.QUIET and result.status.is_failure
            )
            if shows_log and ran:
                self._finish_with_log(result)
            else:
                cached = result.status is Status.CACHED
                if (ran and self._mode is OutputMode.QUIET) or cached:
                    self._unshown(result.log, masks_only=cached)
                self._finish_line(result)
            if self._github and result.status.is_failure:
                self._annotate(result, self._github)
            if self._github and result.tests is not None:
                self._commands(self._github.annotate_tests(result))

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
        text = mask(finish_text(result), self._secrets if secrets is None else secrets)
        self._line(prefix + text, style=_STYLES[result.status])

    def _unshown(self, log: str | None, *, masks_only: bool = False) -> None:
        """A log not shown, but what it asked of GitHub is done: its masks hide its secrets (a
        cached step's too: what it made, restored, may be printed again)."""
        for piece in text_pieces(log, self._holds):
            self._echo(piece, show=False, masks_only=masks_only)

    def _finish_with_log(self, result: StepResult) -> None:
        pieces = text_pieces(result.log, self._holds)
        left_out = 0
        if self._mode is OutputMode.QUIET and self._github is None:  # no group folds it: its end
            end, left_out = log_end(result.log, lines=FAILURE_LINES)
            if left_out:
                self._unshown(result.log)
                pieces = iter((end,))
        first = next(pieces, "")
        if not first:
            self._finish_line(result)
            return
        if self._github is None:
            self._finish_line(result)
            if left_out:
                where = f"{left_out:,} earlier line{'s' * (left_out != 1)} in {result.log}"
                self._line(mask(f"{'':<9} ... the last {FAILURE_LINES} lines ({where}):", self._secrets))
        else:
            self._commands(self._github.group(mask(finish_text(result), self._secrets)))
        last = first
        for piece in itertools.chain((first,), pieces):
            self._echo(piece)
            last = piece
        if not last.endswith("\n"):
            self._log("")
        if self._github is None:
            self._line(f"{'':<9} end of {mask(result.id, self._secrets)}")
        else:
            self._commands(self._github.endgroup())

    def _echo(
        self, text: str, *, prefix: str | None = None, show: bool = True, masks_only: bool = False
    ) -> None:
        """Text a step printed: whole lines but maybe the last (with `prefix`, streamed lines).

        A line that GitHub's runner would read as a command is the step's own command: one that
        announces a mask teaches the console to hide its value from then on; under GitHub, one
        that passes (`WorkflowCommands.passed_on`) is written as the console's own command
        instead of the line. Every other line is text, masked, with commands stopped.
        """
        if "::" not in text and "##[" not in text:  # most text: no line to look at
            if show:
                self._show(text, prefix)
            return
        kept: list[str] = []  # text to show, up to the next command
        for line, end in runner_lines(text):
            found = parse(line) if "::" in line or "##[" in line else None
            if found is not None and masks_only and found.name != "add-mask":
                found = None
            if found is not None and kept:
                self._show("".join(kept), prefix)  # before the command changes masks or groups
                kept.clear()
            written = None if found is None else self._step_command(found)
            if written is not None:
                self._commands(written)
            elif show:
                kept += (line, end)
        if kept:
            self._show("".join(kept), prefix)

    def _step_command(self, found: Command) -> list[str] | None:
        if found.name == "add-mask" and found.data.strip() and found.data not in self._announced:
            self._announced.append(found.data)
            self._secrets = mask_values((*self._secrets, found.data))
        return None if self._github is None else self._github.passed_on(found)

    def _show(self, text: str, prefix: str | None) -> None:
        if not text:
            return
        if self._github:
            self._commands(self._github.before_text())
        self._hold_commands()
        text = mask(text, self._secrets)
        if prefix is None:
            self._log(text, end="")
            return
        for line in text.rstrip("\r\n").split("\n"):
            self._log(streamed(prefix, line.removesuffix("\r")))

    def _holds(self, text: str) -> int:
        return secret_start(text, self._secrets)

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
            if tests := failing_tests_line(step):
                self._line(mask(f"      {tests}", secrets))
            tail = mask(read_tail(step.log, lines=self._tail_lines), secrets)
            if tail:
                self._guarded([f"      {line}" for line in tail.splitlines()])
        self._line("")
        for line in group_lines(result.steps):
            self._line(mask(line, secrets))
        self._line(count_line(result))
        logs = [step.log for step in result.steps if step.log]
        if self._mode is OutputMode.QUIET and logs:  # where the logs not shown are
            self._line(mask(f"step logs: {logs[0].rpartition('/')[0]}/", secrets))
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
            self._put(self._github.stop_commands())
            self._held = True

    def _release_commands(self) -> None:
        if self._github and self._held:
            self._put(self._github.resume_commands())
            self._held = False

    def _commands(self, lines: list[str]) -> None:
        if lines:
            self._release_commands()
        for line in lines:
            self._put(line)

    def _line(self, text: str, *, style: str | None = None) -> None:
        """One line of our own text (never markup, never re-wrapped, never a workflow command:
        it may hold any value, a matrix value in an instance id, say)."""
        text = one_line(text)
        self._put(inert(text) if self._github else text, style=style)

    def _put(self, text: str, *, style: str | None = None) -> None:
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
        # Kept until the next flush (a step's whole log is passed on in pieces of PIECE).
        self._pending.append(text)
        self._pending_size += len(text)
        if self._pending_size >= PIECE:
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
