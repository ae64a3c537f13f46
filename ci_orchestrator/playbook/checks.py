"""Typed reading of located values: each reader returns the value, or records a `Problem` that
points at the offending key or value and returns None, so that a whole file is checked at once.

Also the small value grammars shared by playbooks, script headers and the command line:
step ids, cron schedules and "did you mean" suggestions (durations are read by `units`).
"""

from __future__ import annotations

import math
import re
from typing import TYPE_CHECKING, Any

from ci_orchestrator import units
from ci_orchestrator.errors import Location, Problem
from ci_orchestrator.errors import did_you_mean as did_you_mean  # noqa: PLC0414  the loader's import
from ci_orchestrator.playbook.nodes import Mapping, Scalar, Sequence

if TYPE_CHECKING:
    from collections.abc import Collection

    from ci_orchestrator.playbook.model import VariableRead
    from ci_orchestrator.playbook.nodes import Node

SHELLS = ("bash", "sh", "python", "pwsh")
ID_PATTERN = re.compile(r"[A-Za-z0-9_.\-]+")
ENV_NAME_PATTERN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_EXPRESSION_PATTERN = re.compile(r"^\s*\$\{\{.*\}\}\s*$", re.DOTALL)


def is_expression(text: str) -> bool:
    """A whole value written as one `${{ }}` expression."""
    return bool(_EXPRESSION_PATTERN.match(text))


def slug(text: str) -> str:
    """An id made from a name: `Run the tests!` -> `run-the-tests`."""
    return re.sub(r"[^a-z0-9_.]+", "-", text.lower()).strip("-.")


_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_DAYS = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")
# name, lowest, highest number accepted (7 is Sunday too, as cron accepts), names of values
_CRON_FIELDS: tuple[tuple[str, int, int, dict[str, int]], ...] = (
    ("minute", 0, 59, {}),
    ("hour", 0, 23, {}),
    ("day of month", 1, 31, {}),
    ("month", 1, 12, {name: index + 1 for index, name in enumerate(_MONTHS)}),
    ("day of week", 0, 7, {name: index for index, name in enumerate(_DAYS)}),
)


def cron_problem(expression: str) -> str | None:
    """Why `expression` is not a 5-field cron schedule (as GitHub's `schedule.cron`), or None."""
    fields = expression.split()
    if len(fields) != 5:
        return (
            f"{expression!r} is not a cron schedule: it needs 5 fields "
            f"(minute hour day-of-month month day-of-week), found {len(fields)}"
        )
    for text, (what, low, high, names) in zip(fields, _CRON_FIELDS, strict=True):
        for part in text.split(","):
            problem = _cron_part_problem(part, low, high, names)
            if problem:
                return f"{expression!r} is not a cron schedule: {what} {problem}"
    return None


def _cron_number(text: str) -> int | None:
    """A cron field's number: ASCII digits only (`isdigit` takes a superscript `²` that `int`
    refuses); one too long to read (Python refuses thousands of digits) is past every range."""
    if not text.isascii() or not text.isdigit():
        return None
    return int(text) if len(text.lstrip("0")) <= 9 else 10**9


def _cron_part_problem(part: str, low: int, high: int, names: dict[str, int]) -> str | None:
    base, slash, step = part.partition("/")
    if slash and not _cron_number(step):
        return f"{part!r} has a bad step {step!r}"
    if base == "*":
        return None
    start, dash, end = base.partition("-")
    numbers = []
    for bound in (start, end) if dash else (start,):
        number = _cron_number(bound)
        number = names.get(bound.upper()) if number is None else number
        if number is None:
            return f"{part!r} is not a number, a range or '*'"
        if not low <= number <= high:
            return f"{bound} is out of range {low}-{high}"
        numbers.append(number)
    if len(numbers) == 2 and numbers[0] > numbers[1]:
        return f"{part!r} is a range that ends before it starts"
    return None


def render_scalar(node: Scalar) -> str:
    """A scalar as text, numbers and booleans written as YAML writes them (`true`, `1.5`)."""
    if not node.plain:
        return node.text
    try:
        value = node.value
    except ValueError:
        return node.text
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return _render_float(value)
    return str(value)


def _render_float(value: float) -> str:
    if math.isnan(value):
        return ".nan"
    if math.isinf(value):
        return ".inf" if value > 0 else "-.inf"
    text = repr(value).lower()
    if "." not in text and "e" in text:
        text = text.replace("e", ".0e", 1)
    return text


_KIND = {Scalar: "a scalar", Sequence: "a list", Mapping: "a mapping"}


def kind_of(node: Node) -> str:
    if isinstance(node, Scalar) and node.plain and node.text in ("", "~", "null", "Null", "NULL"):
        return "null"
    return _KIND[type(node)]


class Checker:
    """Reads values of one file and collects every problem found in it, and the `vars.NAME` its
    expressions read (checked once a command knows the variables given on its command line)."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.problems: list[Problem] = []
        self.variable_reads: list[VariableRead] = []

    def at(self, node: Node) -> Location:
        return Location(file=self.file, line=node.line, column=node.column)

    def problem(self, node: Node | Location | None, path: str, message: str) -> None:
        location = node if isinstance(node, Location) or node is None else self.at(node)
        self.problems.append(Problem(location=location, path=path, message=message))

    def mapping(
        self, node: Node, path: str, *, known: Collection[str]
    ) -> dict[str, tuple[Scalar, Node]] | None:
        """The entries of a mapping by key; unknown keys are reported (and left out)."""
        if not isinstance(node, Mapping):
            self.problem(node, path, f"must be a mapping, not {kind_of(node)}")
            return None
        entries: dict[str, tuple[Scalar, Node]] = {}
        for key, value in node.entries:
            if not isinstance(key, Scalar):
                self.problem(key, path, f"a key must be a string, not {kind_of(key)}")
            elif key.text not in known:
                self.problem(key, path, f"unknown key {key.text!r}{did_you_mean(key.text, known)}")
            else:
                entries.setdefault(key.text, (key, value))
        return entries

    def scalar_value(self, node: Node, path: str, expected: str) -> Any:
        """The Python value of a scalar, or None (with a problem) for a collection or a bad number."""
        if not isinstance(node, Scalar):
            self.problem(node, path, f"must be {expected}, not {kind_of(node)}")
            return None
        try:
            return node.value
        except ValueError:
            self.problem(node, path, f"must be {expected}: {node.text[:40]!r}... is too long a number")
            return None

    def text(self, node: Node, path: str) -> str | None:
        """Any non-null scalar, as written."""
        if not isinstance(node, Scalar) or kind_of(node) == "null":
            self.problem(node, path, f"must be a string, not {kind_of(node)}")
            return None
        return node.text

    def boolean(self, node: Node, path: str) -> bool | None:
        value = self.scalar_value(node, path, "true or false")
        if not isinstance(value, bool):
            if value is not None or kind_of(node) == "null":
                self.problem(node, path, f"must be true or false, not {_shown(node)}")
            return None
        return value

    def integer(self, node: Node, path: str, *, minimum: int | None = None) -> int | None:
        value = self.scalar_value(node, path, "a whole number")
        if isinstance(value, bool) or not isinstance(value, int):
            if value is not None or kind_of(node) == "null":
                self.problem(node, path, f"must be a whole number, not {_shown(node)}")
            return None
        if minimum is not None and value < minimum:
            self.problem(node, path, f"must be at least {minimum}, not {value}")
            return None
        return value

    def choice(self, node: Node, path: str, choices: Collection[str]) -> str | None:
        text = self.text(node, path)
        if text is None:
            return None
        if text not in choices:
            listed = ", ".join(choices)
            self.problem(node, path, f"must be one of {listed}, not {text!r}{did_you_mean(text, choices)}")
            return None
        return text

    def duration(self, node: Node, path: str, *, expression: bool = False) -> float | str | None:
        """Seconds; with `expression`, a `${{ }}` string is kept as it is for later evaluation."""
        if expression and isinstance(node, Scalar) and is_expression(node.text):
            return node.text
        value = self.scalar_value(node, path, "a duration")
        if value is None:
            if kind_of(node) == "null":
                self.problem(node, path, "must be a duration, not null")
            return None
        try:
            return units.parse_duration(value)
        except (TypeError, ValueError) as error:
            self.problem(node, path, str(error))
            return None

    def strings(self, node: Node, path: str, *, single: bool = True) -> tuple[str, ...] | None:
        """A list of strings (scalars as written); with `single`, one string is a list of one."""
        if isinstance(node, Scalar) and single and kind_of(node) != "null":
            return (node.text,)
        if not isinstance(node, Sequence):
            self.problem(node, path, f"must be a list of strings, not {kind_of(node)}")
            return None
        values: list[str] = []
        for index, item in enumerate(node.items):
            text = self.text(item, f"{path}[{index}]")
            if text is not None:
                values.append(text)
        return tuple(values) if len(values) == len(node.items) else None

    def env(self, node: Node, path: str) -> dict[str, str] | None:
        """Environment variables: names without `=`, scalar values rendered as strings."""
        if not isinstance(node, Mapping):
            self.problem(node, path, f"must be a mapping of names to values, not {kind_of(node)}")
            return None
        env: dict[str, str] = {}
        for key, value in node.entries:
            if not isinstance(key, Scalar) or not key.text or "=" in key.text or "\0" in key.text:
                self.problem(key, path, f"{_shown(key)} is not a variable name")
            elif not isinstance(value, Scalar):
                self.problem(value, f"{path}.{key.text}", f"must be a string, not {kind_of(value)}")
            elif "\0" in value.text:
                message = "holds a NUL character, which no process can be given"
                self.problem(value, f"{path}.{key.text}", message)
            else:
                env[key.text] = render_scalar(value)
        return env

    def step_id(self, node: Node, path: str) -> str | None:
        text = self.text(node, path)
        if text is None:
            return None
        if not ID_PATTERN.fullmatch(text):
            message = f"{text!r} is not a valid id: use ASCII letters, digits, '-', '_' and '.'"
            self.problem(node, path, message)
            return None
        return text

    def schedule(self, node: Node, path: str) -> tuple[str, ...] | None:
        crons = self.strings(node, path)
        if crons is None:
            return None
        items = node.items if isinstance(node, Sequence) else (node,)
        valid = True
        for index, (cron, item) in enumerate(zip(crons, items, strict=True)):
            problem = cron_problem(cron)
            if problem:
                self.problem(item, f"{path}[{index}]" if isinstance(node, Sequence) else path, problem)
                valid = False
        return crons if valid else None

    def resources(self, node: Node, path: str) -> dict[str, int] | None:
        """Pools and slots: a list of names (one slot each) or a mapping of names to counts >= 1."""
        if isinstance(node, Sequence):
            names = self.strings(node, path, single=False)
            return dict.fromkeys(names, 1) if names is not None else None
        if isinstance(node, Scalar) and kind_of(node) != "null":
            return {node.text: 1}
        if not isinstance(node, Mapping):
            self.problem(
                node,
                path,
                f"must be a list of pool names or a mapping of pools to counts, not {kind_of(node)}",
            )
            return None
        pools: dict[str, int] = {}
        for key, value in node.entries:
            name = self.text(key, path)
            count = self.integer(value, f"{path}.{name}", minimum=1) if name is not None else None
            if name is not None and count is not None:
                pools[name] = count
        return pools


def _shown(node: Node) -> str:
    if isinstance(node, Scalar):
        return repr(node.text) if not node.plain or kind_of(node) != "null" else "null"
    return kind_of(node)
