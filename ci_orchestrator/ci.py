"""Which CI a command runs under: GitHub Actions, another CI, or none, decided by one rule.

- Under GitHub Actions when `GITHUB_ACTIONS` is `true`, as GitHub sets it.
- Under a CI when under GitHub Actions, or when `CI` is set to anything but an empty or false-like
  value (`0`, `false`, `no`, `off`; any case, blanks around ignored): `CI=true`, `CI=1` and
  `CI=yes` all say CI, as the services that set it spell it.

What depends on it: no run server under CI (each job starts on a fresh machine), no live view on
the console, the settings' `ci` profile; GitHub's workflow commands, job summary and step
outputs under GitHub Actions only.

The values of the CI's variables are read as text here too (`text_variable`): the environment
holds any bytes, and what is not UTF-8 would reach a report, the console or the run history as
lone surrogates, which none of them can write.

Loaded by every command's start-up (the run server is not wanted under CI): imports `os` alone,
so the closed set of providers is a `Literal` type rather than an `enum.Enum`.
"""

from __future__ import annotations

import os

TYPE_CHECKING = False  # as `typing`'s, without importing it (4 ms) on every command's start-up
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Literal, TypeAlias

    Provider: TypeAlias = Literal["github", "generic"]
    """`github`: GitHub Actions; `generic`: any other CI, known by `CI` alone."""

_NOT_CI = ("", "0", "false", "no", "off")


def detect(environ: Mapping[str, str] = os.environ) -> Provider | None:
    """The CI `environ` comes from; None when it is not a CI's."""
    if environ.get("GITHUB_ACTIONS") == "true":
        return "github"
    if environ.get("CI", "").strip().lower() not in _NOT_CI:
        return "generic"
    return None


def under_ci(environ: Mapping[str, str] = os.environ) -> bool:
    """Whether `environ` is a CI job's, GitHub's or another's."""
    return detect(environ) is not None


def under_github(environ: Mapping[str, str] = os.environ) -> bool:
    """Whether `environ` is a GitHub Actions step's."""
    return detect(environ) == "github"


def text_variable(name: str, environ: Mapping[str, str] = os.environ) -> str:
    """The value of the variable `name` as text ("" when it is not set): bytes that are not
    UTF-8 become U+FFFD, as in a step's log. For a value that is text (a branch, a commit, a
    token); a file name is used as the system gives it."""
    value = environ.get(name, "")
    if value.isascii():
        return value
    from ci_orchestrator.output.text import as_text  # seldom: most values are ASCII

    return as_text(value)
