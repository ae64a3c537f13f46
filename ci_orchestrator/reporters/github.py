"""GitHub Actions integration: workflow commands for the console, and the job summary and step
outputs written at the end of a run. Active only when `GITHUB_ACTIONS=true`.

Commands are returned as lines for the console reporter to write: they must share its stream so
that `::group::` brackets exactly the log it folds.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from ci_orchestrator import ci, notices
from ci_orchestrator.output.masking import mask, mask_values
from ci_orchestrator.output.text import as_text
from ci_orchestrator.reporters.writing import failure_message
from ci_orchestrator.results import qualified_test_name

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from ci_orchestrator.output.workflow_commands import Command
    from ci_orchestrator.results import RunResult, StepResult

# GitHub keeps 10 annotations of each level per step; more are only log lines.
MAX_ANNOTATIONS = 10
LEVELS = ("error", "warning", "notice")
# A step summary over 1 MiB is not uploaded at all.
SUMMARY_LIMIT = 1024 * 1024


class ReportPathsLike(Protocol):
    """Where the run's report files were written."""

    @property
    def junit(self) -> Path | str | None: ...

    @property
    def summary(self) -> Path | str | None: ...

    @property
    def json(self) -> Path | str | None: ...


def active(environ: Mapping[str, str] | None = None) -> bool:
    """True when running as a GitHub Actions step."""
    return ci.under_github(os.environ if environ is None else environ)


def escape_data(text: str) -> str:
    """A workflow command's message, escaped as the actions toolkit does."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    """A workflow command's property value: like a message, and `:` and `,` too."""
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def command(name: str, message: str = "", **properties: str) -> str:
    """One workflow command line, e.g. `::error title=lint::exit code 1`."""
    props = ",".join(f"{key}={escape_property(value)}" for key, value in properties.items())
    head = f"{name} {props}" if props else name
    return f"::{head}::{escape_data(message)}"


class WorkflowCommands:
    """The workflow commands of one run: masks, log groups, guarded logs, capped annotations, and
    the commands steps print that pass to the runner."""

    def __init__(self, *, max_annotations: int = MAX_ANNOTATIONS) -> None:
        # A fresh token per run: a step cannot guess it to switch commands back on inside its log.
        self._token = os.urandom(16).hex()  # what secrets.token_hex does, without hmac and hashlib
        self._max = max_annotations
        self._masked: dict[str, None] = {}  # announced, in order
        self._shown = dict.fromkeys(LEVELS, 0)
        self._held: dict[str, list[StepResult]] = {level: [] for level in LEVELS}
        self._unmade = dict.fromkeys(LEVELS, 0)  # steps' annotations past the cap
        self._tests_unmade = dict.fromkeys(LEVELS, 0)  # failing tests' annotations past the cap
        self._title: str | None = None  # of the group that folds the log being echoed
        self._open: str | None = None  # the group open in it: "ours", "step's" or none

    def add_masks(self, values: Iterable[str]) -> list[str]:
        """`::add-mask::` for each value to hide not announced yet: what `masking.mask_values`
        gives, so GitHub hides what our own masking hides (each line of a multi-line value too)."""
        lines = []
        for part in mask_values(values):
            if part.strip() and part not in self._masked:
                self._masked[part] = None
                # Bytes that are not UTF-8 as the runner reads them, in this line and in a log.
                lines.append(command("add-mask", as_text(part)))
        return lines

    def group(self, title: str) -> list[str]:
        """Before a step's log: the group that folds it."""
        lines = self.endgroup()
        self._title, self._open = title, "ours"
        return [*lines, command("group", title)]

    def endgroup(self) -> list[str]:
        """After a step's log: the end of the group open, the step's own or ours."""
        lines = [command("endgroup")] if self._open else []
        self._title = self._open = None
        return lines

    def before_text(self) -> list[str]:
        """Before a step's text: inside its log's group again when the step's own group ended."""
        if self._title is None or self._open:
            return []
        self._open = "ours"
        return [command("group", f"{self._title} (continued)")]

    def stop_commands(self) -> str:
        """Before echoing a step's own output: no line of it may act as a workflow command."""
        return command("stop-commands", self._token)

    def resume_commands(self) -> str:
        return f"::{self._token}::"

    def passed_on(self, found: Command) -> list[str] | None:
        """The lines that stand for a command a step printed, written anew so that the runner
        reads exactly it: a mask (`add_masks`), an annotation while GitHub keeps them, a debug
        line. None for every other command: the line is then echoed as text, commands stopped.

        A step's `group` inside the group that folds its log ends that group first (GitHub
        does not nest groups), its `endgroup` ends only a group of its own, and the log goes
        on in its group "(continued)" (`before_text`); with no such group (streamed lines,
        several steps' lines in turn), both stay text.

        Held back: `stop-commands` (it would stop the tool's own commands), `set-output`,
        `set-env`, `add-path`, `save-state` (they would set the tool's own step outputs and
        environment for the job's later steps), `echo` and the problem matchers (they would
        change how the rest of the job's log is read, the tool's own lines too).
        """
        if found.name in ("group", "endgroup"):
            return None if self._title is None else self._step_group(found)
        if found.name == "add-mask":
            return self.add_masks([found.data])
        if found.name == "debug":
            return [command("debug", self._hide(found.data))]
        if found.name not in LEVELS:
            return None
        if self._shown[found.name] >= self._max - 1:
            self._unmade[found.name] += 1
            return None
        self._shown[found.name] += 1
        properties = {
            _PLACES[key.lower()]: self._hide(value)
            for key, value in found.properties.items()
            if key.lower() in _PLACES
        }
        return [command(found.name, self._hide(found.data), **properties)]

    def _step_group(self, found: Command) -> list[str]:
        if found.name == "endgroup":
            # One that ends no group of the step's ends nothing: ours is not the step's to end.
            lines = [command("endgroup")] if self._open == "step's" else []
            self._open = None if lines else self._open
            return lines
        lines = [command("endgroup")] if self._open else []
        self._open = "step's"
        return [*lines, command("group", self._hide(found.data))]

    def annotate(self, result: StepResult, *, tail: str = "") -> list[str]:
        """The annotation of a failed instance (a warning when it may fail), or none past the cap.

        The last slot of each level is kept back, shared with the steps' own annotations, so
        that past the cap it can count the rest instead.
        """
        level = "warning" if result.continue_on_error else "error"
        if self._shown[level] < self._max - 1:
            self._shown[level] += 1
            return [self._annotation(level, result, tail)]
        self._held[level].append(result)
        return []

    def annotate_tests(self, result: StepResult) -> list[str]:
        """An annotation at the place of each failing test of the instance whose JUnit file
        gives one (a file and a line), so that it shows in the pull request's diff: while the
        cap leaves room (its last slot kept back, as for `annotate`), then counted."""
        level = "warning" if result.continue_on_error else "error"
        lines = []
        for failure in result.tests.failures if result.tests is not None else ():
            if failure.file is None or failure.line is None:
                continue
            if self._shown[level] >= self._max - 1:
                self._tests_unmade[level] += 1
                continue
            self._shown[level] += 1
            text = "\n".join([failure.message, *failure.text.splitlines()[:_TEST_LINES]]).strip()
            title = qualified_test_name(result.id, failure.test)
            place = {"file": failure.file, "line": str(failure.line)}
            lines.append(command(level, self._hide(text or "failed"), **place, title=self._hide(title)))
        return lines

    def annotate_rest(self, *, tails: Mapping[str, str] | None = None) -> list[str]:
        """At run end: the held-back annotation, or one that counts every failure, and every
        annotation of the steps and their tests, past the cap."""
        lines = []
        for level in LEVELS:
            held, unmade, tests = self._held[level], self._unmade[level], self._tests_unmade[level]
            if len(held) == 1 and not unmade and not tests:
                tail = (tails or {}).get(held[0].id, "")
                lines.append(self._annotation(level, held[0], tail))
            elif held or unmade or tests:
                lines.append(self._rest(level, held, unmade, tests))
            self._shown[level] += 1 if held or unmade or tests else 0
            held.clear()
            self._unmade[level] = self._tests_unmade[level] = 0
        return lines

    def _rest(self, level: str, held: list[StepResult], unmade: int, tests: int = 0) -> str:
        said = []
        if held:
            said.append(f"Not annotated one by one: {', '.join(result.id for result in held)}")
        if tests:
            said.append(f"{tests} more failing test{'s' * (tests != 1)}: see the job summary")
        if unmade:
            said.append(
                f"{unmade} more {level} annotation{'s' * (unmade != 1)} the steps printed"
                f" (GitHub keeps {self._max} a step): see the log"
            )
        if held:
            title = f"{len(held)} more steps failed"
        elif tests:
            title = f"{tests} more failing test{'s' * (tests != 1)}"
        else:
            title = f"{unmade} more {level}s"
        return command(level, self._hide("\n".join(said)), title=self._hide(title))

    def _annotation(self, level: str, result: StepResult, tail: str) -> str:
        why = failure_message(result)
        message = f"{why}\n{tail}" if tail else why
        return command(level, self._hide(message), title=self._hide(f"{result.id} {result.status.value}"))

    def _hide(self, text: str) -> str:
        """Our own text that names instances (a matrix value may be a secret): the values announced
        are masked before the command escapes them, when they can still be found."""
        return mask(text, tuple(self._masked))


# Of a failing test's text, in its annotation (its message first).
_TEST_LINES = 10
# An annotation's properties, as the runner spells them (it reads them in any case).
_PLACES = {name.lower(): name for name in ("file", "line", "endLine", "col", "endColumn", "title")}


def publish(
    result: RunResult,
    *,
    summary_text: str,
    paths: ReportPathsLike,
    environ: Mapping[str, str] | None = None,
) -> None:
    """Append the job summary to `$GITHUB_STEP_SUMMARY` and write the step outputs to
    `$GITHUB_OUTPUT`. Does nothing off GitHub; a variable that is not set is passed over.

    A file that cannot be written is a warning: the other is written all
    the same, and the run's result stays what it was.
    """
    env = os.environ if environ is None else environ
    if not active(env):
        return
    if summary_file := env.get("GITHUB_STEP_SUMMARY"):
        try:
            append_summary(Path(summary_file), result, summary_text)
        except OSError as error:
            notices.warn(
                f"cannot write the job summary to $GITHUB_STEP_SUMMARY ({summary_file}): {_reason(error)}"
            )
    if output_file := env.get("GITHUB_OUTPUT"):
        # Masked before JSON escapes them: a secret holding a quote or non-ASCII is found there.
        failed = [mask(step.id, result.secrets) for step in result.steps if step.status.is_failure]
        outputs = {
            "result": result.status.value,
            "failed-steps": json.dumps(failed),
            # A report left out gives an empty output.
            "junit-path": str(paths.junit or ""),
            "summary-path": str(paths.summary or ""),
            "json-path": str(paths.json or ""),
        }
        text = "".join(output_entry(name, mask(value, result.secrets)) for name, value in outputs.items())
        try:
            with Path(output_file).open("a", encoding="utf-8") as file:
                file.write(text)
        except OSError as error:
            notices.warn(f"cannot write the step outputs to $GITHUB_OUTPUT ({output_file}): {_reason(error)}")


def _reason(error: OSError) -> str:
    return error.strerror or str(error)


def append_summary(path: Path, result: RunResult, text: str) -> None:
    """Append the summary `text` of `result`; where what the file holds leaves too little room
    under GitHub's 1 MiB, the summary made again for that room (cut between blocks, with a note).
    """
    used, ending = _summary_end(path)
    # Our heading starts a line of its own, whatever the text before it ends with.
    separator = "\n" if used and ending != b"\n" else ""
    room = SUMMARY_LIMIT - used - len(separator)
    text = mask(text, result.secrets)
    if len(text.encode("utf-8")) > room:
        from ci_orchestrator.reporters.markdown import render_summary

        text = mask(render_summary(result, max_bytes=max(room, 0), held=used), result.secrets)
    if text:
        with path.open("ab") as file:
            file.write((separator + text).encode("utf-8"))


def _summary_end(path: Path) -> tuple[int, bytes]:
    """The size of the summary file and its last byte (none when empty or missing)."""
    try:
        if not path.is_file() or not (size := path.stat().st_size):  # a FIFO is not read
            return 0, b""
        with path.open("rb") as file:
            file.seek(size - 1)
            return size, file.read(1)
    except OSError:
        return 0, b""


def output_entry(name: str, value: str) -> str:
    """`name<<DELIMITER` / value / `DELIMITER`: safe for any value, multi-line included."""
    delimiter = f"ghadelimiter_{os.urandom(16).hex()}"
    while delimiter in value:  # pragma: no cover - 128 random bits
        delimiter = f"ghadelimiter_{os.urandom(16).hex()}"
    return f"{name}<<{delimiter}\n{value}\n{delimiter}\n"
