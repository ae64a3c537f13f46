"""GitHub's environment files, read as GitHub's runner reads them: `GITHUB_OUTPUT` and
`GITHUB_ENV` (`NAME=VALUE` lines and `NAME<<DELIMITER` blocks), `GITHUB_PATH` (one folder a
line), and what a path list becomes in `PATH`.

What a step writes there is untrusted: a file is read up to a size limit, never run or
evaluated; bytes that are not UTF-8 become U+FFFD, as the runner's reader makes them; a line
that is neither form, a block without its closing delimiter, or an empty name is an error that
names the file and the line (on GitHub it fails the step too).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ci_orchestrator.results import BLOCKED_ENV, MAX_FILE_TEXT

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence
    from pathlib import Path

# Past MAX_FILE_BYTES a file is not read: an error for GITHUB_OUTPUT, GITHUB_ENV and GITHUB_PATH
# (GitHub would take them in, and then refuse a job's outputs past 1 MiB).
MAX_FILE_BYTES = MAX_FILE_TEXT


class FileCommandError(ValueError):
    """A file a step wrote cannot be taken in: `file` (its variable's name), `line` (1-based, or
    None for the whole file) and what is wrong."""

    def __init__(self, file: str, line: int | None, message: str) -> None:
        where = f"{file} line {line}" if line is not None else file
        super().__init__(f"{where}: {message}")
        self.file = file
        self.line = line


@dataclass(frozen=True, slots=True)
class _Line:
    number: int
    text: str
    ended: bool  # followed by a newline


def read_text(path: Path, *, file: str, limit: int = MAX_FILE_BYTES) -> str:
    """The text of a step's file: empty when the step removed it; FileCommandError past `limit`
    or when it cannot be read (a folder in its place)."""
    try:
        with open(path, "rb") as handle:  # noqa: PTH123 - one open, then a bounded read
            data = handle.read(limit + 1)
    except FileNotFoundError:
        return ""
    except OSError as error:
        raise FileCommandError(file, None, f"cannot be read: {error.strerror or error}") from None
    if len(data) > limit:
        raise FileCommandError(file, None, f"holds more than the {limit // 1024} KiB a step may write")
    # As the runner reads it: a UTF-8 byte-order mark dropped, bytes that are not UTF-8 replaced.
    return data.decode("utf-8-sig", errors="replace")


def _lines(text: str) -> list[_Line]:
    """The lines of `text`, split at LF only (a CR stays in its line, as on GitHub's Linux and
    macOS runners)."""
    parts = text.split("\n")
    lines = [_Line(number, part, True) for number, part in enumerate(parts[:-1], start=1)]
    if parts[-1]:
        lines.append(_Line(len(parts), parts[-1], False))
    return lines


def parse_pairs(text: str, *, file: str) -> dict[str, str]:
    """The `NAME=VALUE` and `NAME<<DELIMITER` entries of a GITHUB_OUTPUT or GITHUB_ENV text, in
    order, a later entry of a name replacing an earlier one. Empty lines are passed over.

    Whichever of `=` and `<<` comes first in a line decides its form. A block's value is the
    lines up to the first line that is exactly the delimiter, without the newline before it.
    """
    pairs: dict[str, str] = {}
    lines = _lines(text)
    index = 0
    while index < len(lines):
        line = lines[index]
        index += 1
        if not line.text:
            continue
        equals, heredoc = line.text.find("="), line.text.find("<<")
        if equals >= 0 and (heredoc < 0 or equals < heredoc):
            name, value = line.text[:equals], line.text[equals + 1 :]
            if not name:
                raise FileCommandError(file, line.number, f"'{_shown(line.text)}' has no name before '='")
        elif heredoc >= 0:
            name, delimiter = line.text[:heredoc], line.text[heredoc + 2 :]
            if not name or not delimiter:
                raise FileCommandError(
                    file, line.number, f"'{_shown(line.text)}': a block needs a name and a delimiter"
                )
            body: list[str] = []
            while True:
                if index >= len(lines):
                    shown = _shown(delimiter)
                    raise FileCommandError(file, line.number, f"{name}<<{shown}: no closing line '{shown}'")
                inner = lines[index]
                index += 1
                if inner.text == delimiter:
                    break
                if not inner.ended:
                    raise FileCommandError(
                        file, inner.number, f"{name}<<{_shown(delimiter)}: the file ends inside the block"
                    )
                body.append(inner.text)
            value = "\n".join(body)
        else:
            raise FileCommandError(
                file, line.number, f"'{_shown(line.text)}' is neither NAME=VALUE nor NAME<<DELIMITER"
            )
        pairs.pop(name, None)  # a name set again moves to the end: its order is its last write
        pairs[name] = value
    return pairs


def parse_env(text: str, *, file: str = "GITHUB_ENV") -> tuple[dict[str, str], list[str]]:
    """The variables a GITHUB_ENV text sets, and the names it may not set (`BLOCKED_ENV`), which
    are left out as GitHub leaves them out. A name or value no process can be given (a NUL) is
    an error."""
    pairs = parse_pairs(text, file=file)
    refused = [name for name in pairs if name.upper() in BLOCKED_ENV]
    for name, value in pairs.items():
        if "\0" in name or "\0" in value:
            message = f"{_shown(name)} holds a NUL character, which no process can be given"
            raise FileCommandError(file, None, message)
    return {name: value for name, value in pairs.items() if name not in refused}, refused


def parse_path(text: str, *, file: str = "GITHUB_PATH") -> tuple[str, ...]:
    """The folders of a GITHUB_PATH text, in the order written (empty lines passed over)."""
    found: list[str] = []
    for line in _lines(text):
        if "\0" in line.text:
            raise FileCommandError(file, line.number, "holds a NUL character, which no process can be given")
        if line.text:
            found.append(line.text)
    return tuple(found)


def added_paths(additions: Iterable[Sequence[str]]) -> tuple[str, ...]:
    """The folders that go before `PATH`, first first, from the path lists of several steps in
    the order they ran: as the runner keeps them, a folder added again moves to the front."""
    kept: list[str] = []
    for folders in additions:
        for folder in folders:
            if folder in kept:
                kept.remove(folder)
            kept.append(folder)
    return tuple(reversed(kept))


def with_path(env: Mapping[str, str], folders: Sequence[str]) -> str:
    """The `PATH` of `env` with `folders` before it."""
    current = env.get("PATH", "")
    return os.pathsep.join([*folders, current] if current else folders)


def _shown(text: str, limit: int = 60) -> str:
    """A piece of a file quoted in a message: short, its control characters made visible."""
    text = text if len(text) <= limit else text[: limit - 3] + "..."
    return text.encode("unicode_escape").decode("ascii") if not text.isprintable() else text
