"""GitHub Actions' `${{ }}` expressions evaluated over plain data: functions, templates, conditions.

The syntax lives in `expression_syntax`, GitHub's value rules in `expression_values`; this module
is the entry point the rest of the package uses.

Nothing is ever handed to Python's `eval`, and no attribute of a Python object is ever read:
property access is a key lookup in a mapping or an index in a list, so `a.__class__` is null.
Contexts hold only JSON-like values (mappings, lists, strings, numbers, booleans, None).
"""

from __future__ import annotations

import difflib
import functools
import json
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ci_orchestrator.errors import ExpressionError
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
    Kind,
    kind,
    loose_equal,
    ordered,
    to_json,
    to_number,
    to_string,
    truthy,
)

if TYPE_CHECKING:
    from collections.abc import Collection, Mapping

    from ci_orchestrator.expressions.syntax import Node

__all__ = [
    "CONTEXTS",
    "Expression",
    "JobStatus",
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


def _index(target: Any, key: Any) -> Any:
    if isinstance(target, _Filtered):
        found = (_index(item, key) for item in target)
        return _Filtered(value for value in found if value is not None)
    match kind(target):
        case Kind.OBJECT:
            name = to_string(key)
            if name in target:
                return target[name]
            # Context keys are case-insensitive on GitHub.
            folded = name.casefold()
            return next((value for item, value in target.items() if str(item).casefold() == folded), None)
        case Kind.ARRAY if kind(key) in (Kind.NUMBER, Kind.STRING):
            position = to_number(key)
            if position.is_integer() and 0 <= position < len(target):
                return target[int(position)]
    return None


def _star(target: Any) -> _Filtered:
    if isinstance(target, _Filtered):
        flat = _Filtered()
        for item in target:
            flat.extend(_star(item))
        return flat
    match kind(target):
        case Kind.OBJECT:
            return _Filtered(target.values())
        case Kind.ARRAY:
            return _Filtered(target)
    return _Filtered()


_PLACEHOLDER = re.compile(r"\{\{|\}\}|\{(\d+)\}|[{}]")


def _format(template: str, args: list[Any]) -> str:
    """`format('{0} {{x}}', a)`: numbered placeholders, doubled braces for literal ones."""
    out: list[str] = []
    position = 0
    for match in _PLACEHOLDER.finditer(template):
        out.append(template[position : match.start()])
        position = match.end()
        token = match.group()
        if token in ("{{", "}}"):
            out.append(token[0])
        elif match.group(1) is None:
            raise ExpressionError(
                f"format(): unmatched '{token}' at position {match.start() + 1} of '{template}'"
            )
        elif len(match.group(1)) > 9 or int(match.group(1)) >= len(args):  # int() refuses thousands of digits
            raise ExpressionError(
                f"format(): '{token}' refers to argument {match.group(1)}, but only {len(args)} given"
            )
        else:
            out.append(to_string(args[int(match.group(1))]))
    out.append(template[position:])
    return "".join(out)


def _from_json(text: str) -> Any:
    try:
        # A number as a double reads it: Python's int() refuses thousands of digits.
        return json.loads(text, parse_int=lambda digits: int(digits) if len(digits) <= 300 else float(digits))
    except (ValueError, RecursionError) as error:
        shown = text if len(text) <= 60 else text[:57] + "..."
        raise ExpressionError(f"fromJSON(): not valid JSON: '{shown}' ({error})") from None


def _call(name: str, args: list[Any]) -> Any:
    match name:
        case "contains":
            search, item = args
            if kind(search) is Kind.ARRAY:
                return any(loose_equal(element, item) for element in search)
            return to_string(item).upper() in to_string(search).upper()
        case "startsWith":
            return to_string(args[0]).upper().startswith(to_string(args[1]).upper())
        case "endsWith":
            return to_string(args[0]).upper().endswith(to_string(args[1]).upper())
        case "format":
            return _format(to_string(args[0]), args[1:])
        case "join":
            separator = to_string(args[1]) if len(args) > 1 else ","
            if kind(args[0]) is Kind.ARRAY:
                return separator.join(to_string(item) for item in args[0])
            return to_string(args[0])
        case "toJSON":
            return to_json(args[0], indent=2)
        case "fromJSON":
            return _from_json(to_string(args[0]))
    raise ExpressionError(f"unknown function '{name}'")  # the parser lets no other name through


class _Evaluator:
    def __init__(self, contexts: Mapping[str, Any], status: JobStatus | None) -> None:
        self.contexts = {name.lower(): value for name, value in contexts.items()}
        self.status = status

    def value(self, node: Node) -> Any:
        match node:
            case Constant(value=value):
                return value
            case ContextName(name=name):
                if name.lower() not in self.contexts:
                    raise ExpressionError(_unknown_context(name, self.contexts))
                return self.contexts[name.lower()]
            case Index(target=target, key=key):
                return _index(self.value(target), self.value(key))
            case Star(target=target):
                return _star(self.value(target))
            case Not(operand=operand):
                return not truthy(self.value(operand))
            case Compare(operator=operator, left=left, right=right):
                a, b = self.value(left), self.value(right)
                if operator is Operator.EQ:
                    return loose_equal(a, b)
                if operator is Operator.NE:
                    return not loose_equal(a, b)
                return ordered(operator, a, b)
            case Logical(all=all_, operands=operands):
                # `&&` gives its first falsy operand, `||` its first truthy one, else the last.
                result: Any = None
                for operand in operands:
                    result = self.value(operand)
                    if truthy(result) is not all_:
                        return result
                return result
            case Call(name=name, args=args):
                return self.call(name, args)
        raise ExpressionError(f"cannot evaluate {node!r}")

    def call(self, name: str, args: tuple[Node, ...]) -> Any:
        if name in STATUS_FUNCTIONS:
            if self.status is None:
                raise ExpressionError(f"{name}() can only be used in an if: condition")
            return {
                "success": self.status.succeeded,
                "failure": self.status.failure,
                "cancelled": self.status.cancelled,
                "always": True,
            }[name]
        return _call(name, [self.value(arg) for arg in args])


def _unknown_context(name: str, known: Collection[str]) -> str:
    close = difflib.get_close_matches(name.lower(), known, n=1)
    hint = f"did you mean '{close[0]}'? " if close else ""
    return f"unknown context '{name}' ({hint}available: {', '.join(known) or 'none'})"


def evaluate(
    expression: Expression | str, contexts: Mapping[str, Any], *, status: JobStatus | None = None
) -> Any:
    """The value of one expression (text without `${{ }}`, or parsed). Status functions need `status`."""
    parsed = parse(expression) if isinstance(expression, str) else expression
    try:
        return _Evaluator(contexts, status).value(parsed.root)
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


def interpolate(text: str, contexts: Mapping[str, Any], *, status: JobStatus | None = None) -> str:
    """The text with every `${{ }}` replaced by its value (see `to_string`)."""
    return "".join(
        part if isinstance(part, str) else to_string(evaluate(part, contexts, status=status))
        for part in _segments(text)
    )


def evaluate_template(text: str, contexts: Mapping[str, Any]) -> Any:
    """A whole-value `${{ }}` gives its value with its type (a number, an object...); any other
    text is interpolated into a string."""
    parts = _segments(text.strip())
    if len(parts) == 1 and isinstance(parts[0], Expression):
        return evaluate(parts[0], contexts)
    return interpolate(text, contexts)


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
    if not has_expression(text):
        return parse(text)
    parts = _segments(text)
    if len(parts) != 1 or not isinstance(parts[0], Expression):
        # GitHub would take this as a non-empty string, always true: refuse it instead.
        raise ExpressionError(
            "an if: condition must be one expression: write '${{ a && b }}', not text around '${{ }}'"
        )
    return parts[0]


def evaluate_condition(text: str, contexts: Mapping[str, Any], status: JobStatus) -> bool:
    """An `if:` with or without `${{ }}`. Without a status function it means GitHub's implicit
    `success() && (...)`."""
    expression = _condition(text)
    if not expression.uses_status and not status.succeeded:
        return False
    return truthy(evaluate(expression, contexts, status=status))


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
