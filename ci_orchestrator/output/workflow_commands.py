"""GitHub's workflow commands as its runner reads them in a line of output (actions/runner's
`ActionCommand` and `ActionCommandManager`): the tool's own text made to act as none (`inert`),
and the command a step printed read as the runner would (`parse`).

The runner's rule, on stdout and stderr alike, for each line (a line ends at LF, CR or CRLF):
`::name key=value,...::data` after leading blanks; failing that, `##[name key=value;...]data`
at the first `##[` anywhere in the line. `name` is one of its commands, in any case (or, while
commands are stopped, the token that resumes them).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ci_orchestrator import ci

COMMANDS = frozenset(
    {
        "stop-commands", "set-env", "set-output", "save-state", "add-mask", "add-path",
        "add-matcher", "remove-matcher", "debug", "warning", "error", "notice", "group",
        "endgroup", "echo",
    }
)  # fmt: skip
"""The commands the runner knows today; `inert` does not depend on this list."""

# `::` opening a line after the blanks the runner trims (.NET's white space; Python's `\s` holds
# all of it, and a few code points older .NET versions also counted).
_OPENING = re.compile(r"(?:^|(?<=[\r\n]))([\s\u180e\u200b\ufeff]*)::")


def inert(text: str) -> str:
    """`text` in which the runner reads no command, whatever it holds: a backslash after every
    `##[` (the runner's own escape for its markers in a step's output) and before every `::`
    that opens a line. Whatever name follows, since a name unknown today may be a command later.
    """
    if "##[" in text:
        text = text.replace("##[", "##[\\")
    if "::" in text:
        text = _OPENING.sub(r"\1\\::", text)
    return text


def printable(text: str) -> str:
    """A line the tool prints of its own, on stdout or stderr: under GitHub Actions `inert`,
    since GitHub's runner reads both for commands; elsewhere as it is."""
    return inert(text) if ci.under_github() else text


@dataclass(frozen=True, slots=True, kw_only=True)
class Command:
    """A command as the runner reads it: name in lower case, properties and data unescaped."""

    name: str
    properties: dict[str, str] = field(default_factory=dict)
    data: str = ""


def parse(line: str) -> Command | None:
    """The command the runner would read in `line` (one line, no line end), or None."""
    found = parse_placed(line)
    return None if found is None else found[0]


def parse_placed(line: str) -> tuple[Command, int] | None:
    """As `parse`, with where in `line` the command's data begins (as written, escaped)."""
    stripped = line.lstrip()
    if stripped.startswith("::") and (end := stripped.find("::", 2)) >= 0:
        name, _, props = stripped[2:end].partition(" ")
        if name.lower() in COMMANDS:
            properties = _properties(props.strip().split(","), _PROPERTY)
            data = _unescape(stripped[end + 2 :], _DATA)
            return Command(name=name.lower(), properties=properties, data=data), len(line) - len(
                stripped
            ) + end + 2
    start = line.find("##[")
    if start < 0 or (close := line.find("]", start)) < 0:
        return None
    name, _, props = line[start + 3 : close].partition(" ")
    if name.lower() not in COMMANDS:
        return None
    properties = _properties(props.split(";"), _LEGACY)
    command = Command(name=name.lower(), properties=properties, data=_unescape(line[close + 1 :], _LEGACY))
    return command, close + 1


# The runner's escapes, each undone in this order (`%25` last, so `%250A` stays `%0A`).
_DATA = (("%0D", "\r"), ("%0A", "\n"), ("%25", "%"))
_PROPERTY = (("%0D", "\r"), ("%0A", "\n"), ("%3A", ":"), ("%2C", ","), ("%25", "%"))
_LEGACY = (("%3B", ";"), ("%0D", "\r"), ("%0A", "\n"), ("%5D", "]"), ("%25", "%"))


def _properties(pairs: list[str], escapes: tuple[tuple[str, str], ...]) -> dict[str, str]:
    properties = {}
    for pair in pairs:
        key, _, value = pair.partition("=")
        if key and value:
            properties[key] = _unescape(value, escapes)
    return properties


def _unescape(text: str, escapes: tuple[tuple[str, str], ...]) -> str:
    if "%" not in text:
        return text
    for escaped, plain in escapes:
        text = text.replace(escaped, plain)
    return text
