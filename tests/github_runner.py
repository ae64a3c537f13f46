"""GitHub's runner as it reads the output of a job step, modelled for tests from actions/runner
(ActionCommand.TryParseV2 and TryParse, ActionCommandManager, OutputManager): which lines act as
workflow commands, what they do, and what the log shows; and the files it gives a step
(`$GITHUB_STEP_SUMMARY`, `$GITHUB_OUTPUT`), made for a test and read back as it reads them.

- A line ends at LF, CR or CRLF (.NET's ReadLine).
- `::name props::data` after leading blanks; failing that, `##[name props]data` anywhere in the
  line (its first `##[`). `name` must be a registered command (any case), else the line is text.
- `::stop-commands::TOKEN` registers TOKEN as a command: until `::TOKEN::` (or `##[TOKEN]`),
  every other command is text.
- `::add-mask::VALUE` hides VALUE (and each line of it) in every line shown from then on.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path

REGISTERED = frozenset(
    {
        "stop-commands", "set-env", "set-output", "save-state", "add-mask", "add-path",
        "add-matcher", "remove-matcher", "debug", "warning", "error", "notice", "group",
        "endgroup", "echo",
    }
)  # fmt: skip
LEVELS = ("error", "warning", "notice")


@dataclass(frozen=True)
class Command:
    name: str  # lower case
    properties: dict[str, str]
    data: str


def _unescape(text: str, pairs: tuple[tuple[str, str], ...]) -> str:
    for escaped, plain in pairs:
        text = text.replace(escaped, plain)
    return text


_DATA = (("%0D", "\r"), ("%0A", "\n"), ("%25", "%"))
_PROPERTY = (("%0D", "\r"), ("%0A", "\n"), ("%3A", ":"), ("%2C", ","), ("%25", "%"))
_LEGACY = (("%3B", ";"), ("%0D", "\r"), ("%0A", "\n"), ("%5D", "]"), ("%25", "%"))


def parse(line: str, registered: frozenset[str] | set[str] = REGISTERED) -> Command | None:
    """The command the runner reads in one line, or None."""
    names = {name.lower() for name in registered}
    stripped = line.lstrip()
    if stripped.startswith("::") and (end := stripped.find("::", 2)) >= 0:
        info = stripped[2:end]
        name, _, props = info.partition(" ")
        if name.lower() in names:
            properties = {}
            for pair in props.strip().split(","):
                key, _, value = pair.partition("=")
                if key and value:
                    properties[key] = _unescape(value, _PROPERTY)
            return Command(name.lower(), properties, _unescape(stripped[end + 2 :], _DATA))
    start = line.find("##[")
    if start < 0 or (close := line.find("]", start)) < 0:
        return None
    info = line[start + 3 : close]
    name, _, props = info.partition(" ")
    if name.lower() not in names:
        return None
    properties = {}
    for pair in props.split(";"):
        key, _, value = pair.partition("=")
        if key and value:
            properties[key] = _unescape(value, _LEGACY)
    return Command(name.lower(), properties, _unescape(line[close + 1 :], _LEGACY))


@dataclass
class Runner:
    """Feed it a step's output; it keeps the commands obeyed and the lines shown."""

    commands: list[Command] = field(default_factory=list)
    shown: list[str] = field(default_factory=list)
    masks: list[str] = field(default_factory=list)
    nested_groups: int = 0  # a `group` while one was open: GitHub does not nest them
    stray_endgroups: int = 0
    _token: str | None = None
    _open: bool = False

    def read(self, text: str) -> Runner:
        for line in re.split(r"\r\n|\r|\n", text):
            self.line(line)
        return self

    @property
    def stopped(self) -> bool:
        return self._token is not None

    def line(self, line: str) -> None:
        registered = REGISTERED | {self._token} if self._token else REGISTERED
        command = parse(line, registered)
        if self._token is not None:
            if command is not None and command.name == self._token.lower():
                self._token = None
            else:
                self._show(line)
            return
        if command is None:
            self._show(line)
            return
        if command.name == "stop-commands":
            self._token = command.data
            return
        self.commands.append(command)
        if command.name == "add-mask":
            self.masks.append(command.data)
            self.masks.extend(part.strip() for part in re.split(r"[\r\n]", command.data) if part.strip())
        elif command.name == "group":
            self.nested_groups += self._open
            self._open = True
        elif command.name == "endgroup":
            self.stray_endgroups += not self._open
            self._open = False

    def _show(self, line: str) -> None:
        for value in sorted(self.masks, key=len, reverse=True):
            line = line.replace(value, "***")
        self.shown.append(line)

    def annotations(self, level: str) -> list[Command]:
        return [command for command in self.commands if command.name == level]

    def named(self, *names: str) -> list[Command]:
        return [command for command in self.commands if command.name in names]

    def check_leaks(self, secret: str) -> list[str]:
        """Shown lines that hold `secret` in the clear."""
        return [line for line in self.shown if secret in line]


def read_outputs(text: str) -> dict[str, str]:
    """`$GITHUB_OUTPUT` as the runner reads it: `name=value` lines and `name<<DELIMITER` blocks."""
    outputs: dict[str, str] = {}
    lines = iter(text.split("\n"))
    for line in lines:
        if not line:
            continue
        if "<<" in line and ("=" not in line or line.index("<<") < line.index("=")):
            name, delimiter = line.split("<<", 1)
            value: list[str] = []
            for body in lines:
                if body == delimiter:
                    break
                value.append(body)
            else:
                raise AssertionError(f"output {name!r}: delimiter {delimiter!r} never closed")
            outputs[name] = "\n".join(value)
        else:
            name, value_text = line.split("=", 1)
            outputs[name] = value_text
    return outputs


@dataclass(frozen=True, slots=True, kw_only=True)
class StepFiles:
    """The files the runner gives a job step: its job summary and its outputs."""

    summary: Path
    output: Path

    @classmethod
    def made_in(cls, folder: Path, *, summary: str = "") -> StepFiles:
        """The files, in `folder`: the summary holding `summary` (what earlier steps wrote)."""
        files = cls(summary=folder / "step_summary.md", output=folder / "output")
        files.summary.write_text(summary, encoding="utf-8")
        files.output.write_text("", encoding="utf-8")
        return files

    def environment(self) -> dict[str, str]:
        """The variables of a step under GitHub Actions that name these files."""
        return {
            "GITHUB_ACTIONS": "true",
            "CI": "true",
            "GITHUB_STEP_SUMMARY": str(self.summary),
            "GITHUB_OUTPUT": str(self.output),
        }

    def outputs(self) -> dict[str, str]:
        return read_outputs(self.output.read_text(encoding="utf-8"))
