"""GitHub Actions' `${{ }}` expressions evaluated over plain data: templates, conditions.

The syntax lives in `syntax`, GitHub's value rules in `values` (and its numbers in `numbers`), its
functions in `functions`, its memory bound in `memory`; this module is the entry point the rest
of the package uses.

Nothing is ever handed to Python's `eval`, and no attribute of a Python object is ever read:
property access is a key lookup in a mapping or an index in a list, so `a.__class__` is null.
Contexts hold only JSON-like values (mappings, lists, strings, numbers, booleans, None).
"""

from __future__ import annotations

import difflib
import functools
import math
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ci_orchestrator.errors import ExpressionError
from ci_orchestrator.expressions import functions
from ci_orchestrator.expressions.memory import OBJECT_SIZE, POINTER_SIZE, Counter, Held, size
from ci_orchestrator.expressions.syntax import (
    STATUS_FUNCTIONS,
    Call,
    Compare,
    Constant,
    ContextName,
    Expression,
    Index,
    Logical,
    Not,
    Operator,
    Star,
    error_at,
    parse,
)
from ci_orchestrator.expressions.values import (
    PRIMITIVE,
    Kind,
    as_text,
    kind,
    lookup,
    loose_equal,
    ordered,
    to_number,
    to_string,
    truthy,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Collection, Mapping, Sequence

    from ci_orchestrator.expressions.syntax import Node

    FileHasher = Callable[[Sequence[str]], str]  # hashFiles' patterns -> its digest

__all__ = [
    "CONTEXTS",
    "Expression",
    "JobStatus",
    "as_text",
    "calls",
    "check",
    "evaluate",
    "evaluate_condition",
    "evaluate_template",
    "has_expression",
    "interpolate",
    "keys_named",
    "keys_read",
    "loose_equal",
    "parse",
    "to_string",
    "truthy",
    "uses_status_function",
]

CONTEXTS = ("matrix", "vars", "env", "runner")
_MAX_INDEX = 2**31 - 1  # GitHub reads an array index as a 32-bit integer


@dataclass(frozen=True, slots=True, kw_only=True)
class JobStatus:
    """What the instances an instance waits for did: the input of the status functions.

    `success` defaults to "nothing failed"; whatever it says, `success()` is false once the run
    is being cancelled, as on GitHub.
    """

    failure: bool = False
    cancelled: bool = False
    success: bool | None = None

    @property
    def succeeded(self) -> bool:
        return (not self.failure if self.success is None else self.success) and not self.cancelled


class _Filtered(list[Any]):
    """The array made by `*`: a property of it is that property of each of its items."""


def _position(key: Any) -> int | None:
    """An index as GitHub reads one: a number (or text, true, null...) rounded down; none if it
    is negative, NaN or past 32 bits."""
    number = to_number(key)
    if math.isnan(number) or number < 0 or number > _MAX_INDEX:
        return None
    return int(number)


def _star(target: Any) -> _Filtered:
    match kind(target):
        case Kind.OBJECT:
            return _Filtered(target.values())
        case Kind.ARRAY:
            return _Filtered(target)
    return _Filtered()


def _index(target: Any, key: Any, *, star: bool) -> tuple[Any, int | None]:
    """`target[key]` (or `target[*]`), and what the result costs if it is a new array."""
    if isinstance(target, _Filtered):
        # Each item's property or items, in order; items without one are left out.
        found = _Filtered()
        name = to_string(key) if not star and kind(key) in PRIMITIVE else None
        position = None if star else _position(key)
        for item in target:
            match kind(item):
                case Kind.OBJECT if star:
                    found.extend(item.values())
                case Kind.OBJECT if name is not None:
                    has, value = lookup(item, name)
                    if has:
                        found.append(value)
                case Kind.ARRAY if star:
                    found.extend(item)
                case Kind.ARRAY if position is not None and position < len(item):
                    found.append(item[position])
        return found, POINTER_SIZE * len(found)
    if star:
        found = _star(target)
        return found, (OBJECT_SIZE + POINTER_SIZE * len(found)) if kind(target) not in PRIMITIVE else None
    match kind(target):
        case Kind.OBJECT if kind(key) in PRIMITIVE:
            return lookup(target, to_string(key))[1], None
        case Kind.ARRAY:
            position = _position(key)
            return (target[position] if position is not None and position < len(target) else None), None
    return None, None


class _Evaluator:
    """Evaluates a tree as GitHub does, counting what it holds against GitHub's memory bound:
    each result at its depth in the tree (see `memory`)."""

    def __init__(
        self, contexts: Mapping[str, Any], status: JobStatus | None, files: FileHasher | None
    ) -> None:
        self.contexts = {name.lower(): value for name, value in contexts.items()}
        self.status = status
        self.files = files
        self.held = Held()

    def value(self, node: Node, depth: int = 0) -> Any:
        if type(node) is Constant:  # the commonest node (a literal, a property name): kept quick
            self.held.add(depth, size(node.value), release_deeper=True)
            return node.value
        result, cost, from_data = self.result(node, depth)
        if result is None or isinstance(result, str | int | float):
            if from_data and result is not None:
                # A value read out of a context may still refer to what holds it: nothing is let go.
                self.held.add(depth, OBJECT_SIZE + size(result), release_deeper=False)
            else:
                self.held.add(depth, size(result), release_deeper=True)
        else:
            self.held.add(depth, OBJECT_SIZE if cost is None else cost, release_deeper=False)
        return result

    def result(self, node: Node, depth: int) -> tuple[Any, int | None, bool]:
        """(value, its cost if not the usual, whether it was read out of a context)."""
        below = depth + 1
        match node:
            case Constant(value=value):
                return value, None, False
            case ContextName(name=name):
                if (folded := name.lower()) not in self.contexts:
                    raise ExpressionError(_unknown_context(name, self.contexts))
                return self.contexts[folded], None, True
            case Index(target=target, key=key):
                container = self.value(target, below)
                if kind(container) in PRIMITIVE:
                    return None, None, False  # GitHub does not evaluate the index then
                found, cost = _index(container, self.value(key, below), star=False)
                return found, cost, cost is None
            case Star(target=target):
                container = self.value(target, below)
                if kind(container) not in PRIMITIVE:
                    self.held.add(below, size("*"), release_deeper=True)  # GitHub evaluates `*` too
                found, cost = _index(container, None, star=True)
                if cost is not None:
                    Counter().add(cost)
                return found, cost, False
            case Not(operand=operand):
                return not truthy(self.value(operand, below)), None, False
            case Compare(operator=operator, left=left, right=right):
                a, b = self.value(left, below), self.value(right, below)
                if operator is Operator.EQ:
                    return loose_equal(a, b), None, False
                if operator is Operator.NE:
                    return not loose_equal(a, b), None, False
                return ordered(operator, a, b), None, False
            case Logical(all=all_, operands=operands):
                # `&&` gives its first falsy operand, `||` its first truthy one, else the last.
                result: Any = None
                for operand in operands:
                    result = self.value(operand, below)
                    if truthy(result) is not all_:
                        break
                return result, None, False
            case Call(name=name, args=args):
                if name in STATUS_FUNCTIONS:
                    return self.status_function(name), None, False
                if name == "hashFiles":
                    return self.hash_files([self.value(arg, below) for arg in args]), None, False
                found = functions.call(name, len(args), lambda position: self.value(args[position], below))
                return found, None, name == "fromJSON"
        raise ExpressionError(f"cannot evaluate {node!r}")

    def hash_files(self, patterns: list[Any]) -> str:
        if self.files is None:
            raise ExpressionError("hashFiles() can only be used where a step starts")
        return self.files([to_string(pattern) for pattern in patterns])

    def status_function(self, name: str) -> bool:
        if self.status is None:
            raise ExpressionError(f"{name}() can only be used in an if: condition")
        return {
            "success": self.status.succeeded,
            "failure": self.status.failure,
            "cancelled": self.status.cancelled,
            "always": True,
        }[name]


def _unknown_context(name: str, known: Collection[str]) -> str:
    close = difflib.get_close_matches(name.lower(), known, n=1)
    hint = f"did you mean '{close[0]}'? " if close else ""
    return f"unknown context '{name}' ({hint}available: {', '.join(known) or 'none'})"


def evaluate(
    expression: Expression | str,
    contexts: Mapping[str, Any],
    *,
    status: JobStatus | None = None,
    files: FileHasher | None = None,
) -> Any:
    """The value of one expression (text without `${{ }}`, or parsed). Status functions need
    `status`, `hashFiles` needs `files`."""
    parsed = parse(expression) if isinstance(expression, str) else expression
    try:
        return _Evaluator(contexts, status, files).value(parsed.root)
    except ExpressionError as error:
        raise ExpressionError(f"{error.problems[0].message} (in '{_shown(parsed.text)}')") from None


def _shown(text: str) -> str:
    text = text.strip()
    return text if len(text) <= 80 else text[:77] + "..."


# Templates: text with `${{ }}` inside.

# Everything up to the closing `}}`, skipping over quoted strings (which may hold `}}`).
_INSIDE = re.compile(r"(?:[^'}]|'(?:[^']|'')*'|\}(?!\}))*")


@functools.lru_cache(maxsize=1024)
def _segments(text: str) -> tuple[str | Expression, ...]:
    parts: list[str | Expression] = []
    position = 0
    while (start := text.find("${{", position)) != -1:
        if start > position:
            parts.append(text[position:start])
        inside = _INSIDE.match(text, start + 3)
        end = inside.end() if inside else start + 3
        if not text.startswith("}}", end):
            raise ExpressionError(f"'${{{{' at position {start + 1} has no closing '}}}}'")
        parts.append(parse(text[start + 3 : end]))
        position = end + 2
    if position < len(text):
        parts.append(text[position:])
    return tuple(parts)


def has_expression(text: str) -> bool:
    return "${{" in text


def interpolate(
    text: str,
    contexts: Mapping[str, Any],
    *,
    status: JobStatus | None = None,
    files: FileHasher | None = None,
) -> str:
    """The text with every `${{ }}` replaced by its value (see `to_string`)."""
    return "".join(
        part if isinstance(part, str) else to_string(evaluate(part, contexts, status=status, files=files))
        for part in _segments(text)
    )


def evaluate_template(text: str, contexts: Mapping[str, Any], *, files: FileHasher | None = None) -> Any:
    """A whole-value `${{ }}` gives its value with its type (a number, an object...); any other
    text is interpolated into a string."""
    parts = _segments(text.strip())
    if len(parts) == 1 and isinstance(parts[0], Expression):
        return evaluate(parts[0], contexts, files=files)
    return interpolate(text, contexts, files=files)


def calls(text: str, name: str) -> bool:
    """Whether the `${{ }}` of `text` call function `name` (canonical spelling)."""
    return any(
        isinstance(node, Call) and node.name == name
        for part in _segments(text)
        if isinstance(part, Expression)
        for node in part.nodes()
    )


def keys_read(text: str) -> dict[str, frozenset[str] | None]:
    """What the `${{ }}` of `text` read of each context they name (by lower-case name): the keys
    read by name (`vars.KEY`, `vars['KEY']`, case-folded as lookups fold them), or None where the
    context is read otherwise (whole, with a computed key, with `*`), so that any key may be."""
    found: dict[str, set[str] | None] = {}
    for part in _segments(text):
        if not isinstance(part, Expression):
            continue
        nodes = list(part.nodes())
        by_name: set[int] = set()  # the context names read with a constant key, by identity
        for node in nodes:
            if (
                isinstance(node, Index)
                and isinstance(node.target, ContextName)
                and isinstance(node.key, Constant)
                and isinstance(node.key.value, str)
            ):
                keys = found.setdefault(node.target.name.lower(), set())
                if keys is not None:
                    keys.add(node.key.value.casefold())
                by_name.add(id(node.target))
        for node in nodes:
            if isinstance(node, ContextName) and id(node) not in by_name:
                found[node.name.lower()] = None
    return {name: None if keys is None else frozenset(keys) for name, keys in found.items()}


def keys_named(text: str, context: str, *, condition: bool = False) -> list[str]:
    """The keys of `context` that the `${{ }}` of `text` (or the `if:` text `text`) read by name,
    as written, in order: `os` of `matrix.os`, `matrix['os']` and `matrix.os.name`. A read that
    names no key (`matrix`, `matrix[format(...)]`, `matrix.*`) gives none. ExpressionError when
    an expression cannot be parsed."""
    parsed = [_condition(text)] if condition else [p for p in _segments(text) if isinstance(p, Expression)]
    return [
        node.key.value
        for expression in parsed
        for node in expression.nodes()
        if isinstance(node, Index)
        and isinstance(node.target, ContextName)
        and node.target.name.lower() == context
        and isinstance(node.key, Constant)
        and isinstance(node.key.value, str)
    ]


def _condition(text: str) -> Expression:
    text = text.strip()
    if not text:
        return parse("success()")  # an empty `if:` is GitHub's default condition
    if not has_expression(text):
        return parse(text)
    parts = _segments(text)
    if len(parts) != 1 or not isinstance(parts[0], Expression):
        # GitHub would take this as a non-empty string, always true: refuse it instead.
        raise ExpressionError(
            "an if: condition must be one expression: write '${{ a && b }}', not text around '${{ }}'"
        )
    return parts[0]


def evaluate_condition(
    text: str, contexts: Mapping[str, Any], status: JobStatus, *, files: FileHasher | None = None
) -> bool:
    """An `if:` with or without `${{ }}`. Without a status function it means GitHub's implicit
    `success() && (...)`."""
    expression = _condition(text)
    if not expression.uses_status and not status.succeeded:
        return False
    return truthy(evaluate(expression, contexts, status=status, files=files))


def uses_status_function(condition: str) -> bool:
    """Whether an `if:` calls `success()`, `failure()`, `always()` or `cancelled()` (and so does
    not mean `success() && (...)`)."""
    return _condition(condition).uses_status


def check(text: str, *, contexts: Collection[str] = CONTEXTS, condition: bool = False) -> None:
    """Raise `ExpressionError` for a syntax error, an unknown function or context, or a status
    function outside a condition, in every `${{ }}` of `text` (or in the `if:` text `text`)."""
    expressions = (
        [_condition(text)]
        if condition
        else [part for part in _segments(text) if isinstance(part, Expression)]
    )
    known = [name.lower() for name in contexts]
    for expression in expressions:
        for node in expression.nodes():
            if isinstance(node, ContextName) and node.name.lower() not in known:
                raise error_at(_unknown_context(node.name, known), expression.text, node.position)
            if isinstance(node, Call) and node.name in STATUS_FUNCTIONS and not condition:
                raise error_at(
                    f"{node.name}() can only be used in an if: condition", expression.text, node.position
                )
