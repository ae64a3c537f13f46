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
from ci_orchestrator.masking import mask, mask_values
from ci_orchestrator.reporters.writing import failure_message

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from ci_orchestrator.results import RunResult, StepResult

# GitHub keeps 10 error and 10 warning annotations per step; more are only log lines.
MAX_ANNOTATIONS = 10
# A step summary over 1 MiB is not uploaded at all.
SUMMARY_LIMIT = 1024 * 1024
_CUT_NOTE = "\n\n> **Note:** the summary was cut here: GitHub shows at most 1 MiB per step.\n"


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
    """The workflow commands of one run: masks, log groups, guarded logs, capped annotations."""

    def __init__(self, *, max_annotations: int = MAX_ANNOTATIONS) -> None:
        # A fresh token per run: a step cannot guess it to switch commands back on inside its log.
        self._token = os.urandom(16).hex()  # what secrets.token_hex does, without hmac and hashlib
        self._max = max_annotations
        self._masked: dict[str, None] = {}  # announced, in order
        self._shown: dict[str, int] = {"error": 0, "warning": 0}
        self._held: dict[str, list[StepResult]] = {"error": [], "warning": []}

    def add_masks(self, values: Iterable[str]) -> list[str]:
        """`::add-mask::` for each value to hide not announced yet: what `masking.mask_values`
        gives, so GitHub hides what our own masking hides (each line of a multi-line value too)."""
        lines = []
        for part in mask_values(values):
            if part.strip() and part not in self._masked:
                self._masked[part] = None
                lines.append(command("add-mask", part))
        return lines

    def group(self, title: str) -> str:
        return command("group", title)

    def endgroup(self) -> str:
        return command("endgroup")

    def stop_commands(self) -> str:
        """Before echoing a step's own output: no line of it may act as a workflow command."""
        return command("stop-commands", self._token)

    def resume_commands(self) -> str:
        return f"::{self._token}::"

    def annotate(self, result: StepResult, *, tail: str = "") -> list[str]:
        """The annotation of a failed instance (a warning when it may fail), or none past the cap.

        The last allowed slot is kept back so that, past the cap, it can count the rest instead.
        """
        level = "warning" if result.continue_on_error else "error"
        if self._shown[level] < self._max - 1:
            self._shown[level] += 1
            return [self._annotation(level, result, tail)]
        self._held[level].append(result)
        return []

    def annotate_rest(self, *, tails: Mapping[str, str] | None = None) -> list[str]:
        """At run end: the held-back annotation, or one that counts every failure past the cap."""
        lines = []
        for level, held in self._held.items():
            if len(held) == 1:
                tail = (tails or {}).get(held[0].id, "")
                lines.append(self._annotation(level, held[0], tail))
            elif held:
                ids = ", ".join(result.id for result in held)
                title = f"{len(held)} more steps failed"
                lines.append(command(level, self._hide(f"Not annotated one by one: {ids}"), title=title))
            self._shown[level] += min(len(held), 1)
            held.clear()
        return lines

    def _annotation(self, level: str, result: StepResult, tail: str) -> str:
        why = failure_message(result)
        message = f"{why}\n{tail}" if tail else why
        return command(level, self._hide(message), title=self._hide(f"{result.id} {result.status.value}"))

    def _hide(self, text: str) -> str:
        """Our own text that names instances (a matrix value may be a secret): the values announced
        are masked before the command escapes them, when they can still be found."""
        return mask(text, tuple(self._masked))


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
            append_summary(Path(summary_file), mask(summary_text, result.secrets))
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


def append_summary(path: Path, text: str) -> None:
    """Append `text`, cut with a note so the whole file stays within GitHub's 1 MiB."""
    try:
        used = path.stat().st_size
    except OSError:
        used = 0
    data = text.encode("utf-8")
    room = SUMMARY_LIMIT - used
    if len(data) > room:
        note = _CUT_NOTE.encode("utf-8")
        # Cut on a character boundary: `ignore` drops a sequence split by the cut.
        data = data[: max(0, room - len(note))].decode("utf-8", errors="ignore").encode("utf-8")
        data = data + note if room >= len(note) else b""
    with path.open("ab") as file:
        file.write(data)


def output_entry(name: str, value: str) -> str:
    """`name<<DELIMITER` / value / `DELIMITER`: safe for any value, multi-line included."""
    delimiter = f"ghadelimiter_{os.urandom(16).hex()}"
    while delimiter in value:  # pragma: no cover - 128 random bits
        delimiter = f"ghadelimiter_{os.urandom(16).hex()}"
    return f"{name}<<{delimiter}\n{value}\n{delimiter}\n"
