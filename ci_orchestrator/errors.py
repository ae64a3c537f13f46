"""The error tree: every error knows its exit code and, where it has one, its place in a file."""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2


def signal_exit_code(signum: int) -> int:
    """The exit code of a run stopped by a signal: 128 + its number (130 SIGINT, 143 SIGTERM)."""
    return 128 + signum


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """` (did you mean 'x'?)` when a choice is close to `word`, else an empty string."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


@dataclass(frozen=True, slots=True, kw_only=True)
class Location:
    """A place in a file: 1-based line and column (column 0 when unknown)."""

    file: str
    line: int = 0
    column: int = 0

    def __str__(self) -> str:
        if not self.line:
            return self.file
        if not self.column:
            return f"{self.file}:{self.line}"
        return f"{self.file}:{self.line}:{self.column}"


@dataclass(frozen=True, slots=True, kw_only=True)
class Problem:
    """One thing wrong with an input: where, which key path, and what."""

    location: Location | None
    path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.location}: " if self.location else ""
        what = f"{self.path}: " if self.path else ""
        return f"{where}{what}{self.message}"


class OrchestratorError(Exception):
    """Base of every error the CLI turns into one line and an exit code."""

    exit_code = EXIT_USAGE

    def __init__(self, message: str, *, location: Location | None = None, path: str = "") -> None:
        self.problems: tuple[Problem, ...] = (Problem(location=location, path=path, message=message),)
        super().__init__(str(self.problems[0]))

    @classmethod
    def from_problems(cls, problems: list[Problem]) -> OrchestratorError:
        """One error that carries several problems, all reported."""
        error = cls(problems[0].message, location=problems[0].location, path=problems[0].path)
        error.problems = tuple(problems)
        return error

    def lines(self) -> list[str]:
        return [str(problem) for problem in self.problems]

    @classmethod
    def joined(cls, errors: Sequence[OrchestratorError], *, main: str) -> OrchestratorError:
        """One error of the first one's kind holding every problem of `errors`, each once, in the
        order of `in_place_order` (`main` is the file the command was given)."""
        problems = in_place_order([problem for error in errors for problem in error.problems], main=main)
        return type(errors[0]).from_problems(problems)


def in_place_order(problems: Iterable[Problem], *, main: str) -> list[Problem]:
    """Problems without repeats, by place: those of no file (the command line) first, then the
    file `main`, then any other (a numbered script's header), each by line and column."""

    def place(problem: Problem) -> tuple[int, str, int, int]:
        where = problem.location
        if where is None:
            return (0, "", 0, 0)
        return (1 if where.file == main else 2, where.file, where.line, where.column)

    return sorted(dict.fromkeys(problems), key=place)


class UsageError(OrchestratorError):
    """Bad command-line input (exit 2)."""


class PlaybookError(OrchestratorError):
    """An invalid playbook, script header or settings file (exit 2)."""

    @classmethod
    def not_utf8(cls, data: bytes, error: UnicodeDecodeError, *, file: str) -> PlaybookError:
        """The text of `file` cannot be decoded: located at the first byte that cannot be read."""
        line = data.count(b"\n", 0, error.start) + 1
        column = error.start - (data.rfind(b"\n", 0, error.start) + 1) + 1
        message = f"not UTF-8 text: byte 0x{data[error.start]:02x} cannot be read"
        return cls(message, location=Location(file=file, line=line, column=column))


class PlanError(OrchestratorError):
    """A graph that cannot run: cycles, unknown needs, pools too small (exit 2)."""


class ExpressionError(OrchestratorError):
    """A `${{ }}` expression that cannot be parsed or evaluated (exit 2)."""
