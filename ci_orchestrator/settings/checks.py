"""How each settings value is checked and converted: a check returns the value, or raises
ValueError or TypeError with a message fit for the user, which the settings reader locates."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

from ci_orchestrator.errors import did_you_mean
from ci_orchestrator.playbook.terms import NUMBER_RANGE, range_problem
from ci_orchestrator.units import parse_size

if TYPE_CHECKING:
    from collections.abc import Callable
    from enum import Enum

AUTO = "auto"
_PATTERN = re.compile(r"(?:tag:|stage:)\S+|[A-Za-z0-9_.*?\[\]-]+")


def boolean(value: object) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"expected true or false, got {value!r}")
    return value


def concurrency(value: object) -> int | str:
    if isinstance(value, str) and value.strip().lower() == AUTO:
        return AUTO
    # ASCII digits (`isdigit` takes a superscript `²` that int() refuses), and not thousands of
    # them (which int() refuses too): any number of processes past that is as good as no limit.
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        value = int(value) if len(value.strip().lstrip("0")) <= 18 else 10**18
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        shown = repr(value) if len(repr(value)) <= 40 else f"{repr(value)[:37]}..."
        raise ValueError(f"expected a number of processes (1 or more) or 'auto', got {shown}")
    return value


def size(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise TypeError(f"expected a size such as 500MB or 2GiB, got {value!r}")
    return parse_size(value)


def folder(value: object) -> Path:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"expected a folder path, got {value!r}")
    return Path(value)


def choice(kind: type[Enum]) -> Callable[[object], Enum]:
    """A check that accepts the values of one enum, without case."""

    def convert(value: object) -> Enum:
        names = [member.value for member in kind]
        if isinstance(value, str) and value.strip().lower() in names:
            return kind(value.strip().lower())
        raise ValueError(
            f"expected one of {', '.join(names)}, got {value!r}{did_you_mean(str(value), names)}"
        )

    return convert


def count(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"expected a whole number, 0 or more, got {value!r}")
    return value


def tags(value: object) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(tag, str) and tag.strip() for tag in value):
        raise ValueError(f"expected a list of tag names, got {value!r}")
    return tuple(tag.strip() for tag in value)


def pattern_problem(pattern: str) -> str | None:
    """What is wrong with a `[defaults]` step pattern, or None when it is one."""
    problem = range_problem(pattern)
    if problem is not None:
        return problem
    if NUMBER_RANGE.fullmatch(pattern) or _PATTERN.fullmatch(pattern):
        return None
    return (
        f"invalid step pattern {pattern!r}: use a number range (0400-0499), a wildcard (test-*), "
        "tag:NAME, stage:NAME or a step id"
    )
