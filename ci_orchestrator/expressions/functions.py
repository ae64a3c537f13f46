"""GitHub's expression functions: `case`, `contains`, `startsWith`, `endsWith`, `format`, `join`,
`toJSON` and `fromJSON` (the status functions need a job's status: see `evaluation`).

Arguments are evaluated only when GitHub evaluates them (`case` stops at the first true condition,
`format` evaluates an argument when its placeholder is reached, `contains` looks for an item only
in a string or a non-empty array), so an argument GitHub never reaches cannot fail here either.
Text that a function builds is counted against GitHub's memory bound as it grows.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from ci_orchestrator.errors import ExpressionError
from ci_orchestrator.expressions.memory import Counter
from ci_orchestrator.expressions.numbers import exact, format_number
from ci_orchestrator.expressions.values import PRIMITIVE, Kind, fold, kind, loose_equal, to_string

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    Argument = Callable[[int], Any]  # evaluates the argument at that position


def call(name: str, count: int, arg: Argument) -> Any:
    """The value of function `name` (canonical spelling) given `count` arguments."""
    match name:
        case "case":
            return _case(count, arg)
        case "contains":
            return _contains(arg)
        case "startsWith" | "endsWith":
            left = arg(0)
            if kind(left) not in PRIMITIVE:
                return False
            right = arg(1)
            if kind(right) not in PRIMITIVE:
                return False
            text, part = fold(to_string(left)), fold(to_string(right))
            return text.startswith(part) if name == "startsWith" else text.endswith(part)
        case "format":
            return _format(count, arg)
        case "join":
            return _join(count, arg)
        case "toJSON":
            return to_json(arg(0))
        case "fromJSON":
            return from_json(to_string(arg(0)))
    raise ExpressionError(f"unknown function '{name}'")  # the parser lets no other name through


def _case(count: int, arg: Argument) -> Any:
    """`case(cond1, value1, cond2, value2, ..., default)`: the value of the first true condition."""
    for position in range(0, count - 1, 2):
        condition = arg(position)
        if kind(condition) is not Kind.BOOLEAN:
            raise ExpressionError(
                f"case(): a condition must be true or false, got {kind(condition).value} "
                f"'{to_string(condition)}' (argument {position + 1})"
            )
        if condition:
            return arg(position + 1)
    return arg(count - 1)


def _contains(arg: Argument) -> bool:
    search = arg(0)
    if kind(search) in PRIMITIVE:
        item = arg(1)
        # GitHub lowers both sides here, where the other comparisons fold to upper case.
        return kind(item) in PRIMITIVE and to_string(item).lower() in to_string(search).lower()
    if kind(search) is Kind.ARRAY and len(search) > 0:
        item = arg(1)
        return any(loose_equal(item, element) for element in search)
    return False


def _join(count: int, arg: Argument) -> str:
    items = arg(0)
    if kind(items) is Kind.ARRAY and len(items) > 0:
        counter = Counter()
        parts = [to_string(items[0])]
        counter.add_text(parts[0])
        separator = ","
        if len(items) > 1 and count > 1 and kind(given := arg(1)) in PRIMITIVE:
            separator = to_string(given)
        for item in items[1:]:
            text = to_string(item)
            counter.add_text(separator)
            counter.add_text(text)
            parts.append(text)
        return separator.join(parts)
    return to_string(items) if kind(items) in PRIMITIVE else ""


# format()

_MAX_PLACEHOLDER = 255  # GitHub reads a placeholder's number as a byte


def _format(count: int, arg: Argument) -> str:
    """`format('{0} {{x}}', a)`: numbered placeholders, doubled braces for literal ones. The
    template is read whole before any argument is evaluated, as GitHub does."""
    template = to_string(arg(0))
    pieces: list[str | int] = []  # literal text, or the position of an argument
    position = 0
    while position < len(template):
        left, right = template.find("{", position), template.find("}", position)
        if left >= 0 and (right < 0 or right > left):
            if template.startswith("{", left + 1):
                pieces.append(template[position : left + 1])
                position = left + 2
                continue
            placeholder = _placeholder(template, left) if right > left + 1 else None
            if placeholder is None:
                raise _invalid(template, f"'{{' at position {left + 1} starts no placeholder")
            number, end, specifiers = placeholder
            if number > count - 2:
                raise ExpressionError(
                    f"format(): '{template[left : end + 1]}' refers to argument {number}, "
                    f"but only {count - 1} given: '{_shown(template)}'"
                )
            if specifiers:
                raise _invalid(template, f"format specifiers ('{specifiers}') are not supported")
            pieces.extend((template[position:left], number))
            position = end + 1
        elif right >= 0:
            if not template.startswith("}", right + 1):
                raise _invalid(template, f"unmatched '}}' at position {right + 1}")
            pieces.append(template[position : right + 1])
            position = right + 2
        else:
            pieces.append(template[position:])
            break
    counter = Counter()
    values: dict[int, str] = {}
    out: list[str] = []
    for piece in pieces:
        if isinstance(piece, int) and piece not in values:
            values[piece] = to_string(arg(piece + 1))
        text = values[piece] if isinstance(piece, int) else piece
        if text:
            counter.add_text(text)
            out.append(text)
    return "".join(out)


def _placeholder(template: str, left: int) -> tuple[int, int, str] | None:
    """(argument number, position of the closing brace, format specifiers) of the placeholder
    opened at `left`, or None if it is not one (`{x}`, `{256}`, `{0` ...)."""
    digits_end = left + 1
    while digits_end < len(template) and "0" <= template[digits_end] <= "9":
        digits_end += 1
    # Measured by length first: int() refuses text thousands of digits long.
    too_long = digits_end - left - 1 > len(str(_MAX_PLACEHOLDER))
    if digits_end == left + 1 or too_long or int(template[left + 1 : digits_end]) > _MAX_PLACEHOLDER:
        return None
    number = int(template[left + 1 : digits_end])
    if template.startswith("}", digits_end):
        return number, digits_end, ""
    if not template.startswith(":", digits_end):
        return None
    specifiers: list[str] = []  # `{0:x}`: read (`}}` is a brace in them) only to be refused
    position = digits_end + 1
    while position < len(template):
        if template[position] != "}":
            specifiers.append(template[position])
            position += 1
        elif template.startswith("}}", position):
            specifiers.append("}")
            position += 2
        else:
            return number, position, "".join(specifiers)
    return None


def _invalid(template: str, why: str) -> ExpressionError:
    return ExpressionError(f"format(): invalid format string '{_shown(template)}': {why}")


def _shown(text: str) -> str:
    return text if len(text) <= 60 else text[:57] + "..."


# JSON

_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t"}
_ESCAPES |= {chr(code): f"\\u{code:04x}" for code in range(0x20) if chr(code) not in _ESCAPES}
_ESCAPES |= {char: f"\\u{ord(char):04x}" for char in "\x85\u2028\u2029"}
_NEEDS_ESCAPE = frozenset(_ESCAPES)


def json_string(text: str) -> str:
    """A string as GitHub quotes it in JSON (control characters, quotes, backslashes and the
    line separators U+0085, U+2028, U+2029 escaped)."""
    if _NEEDS_ESCAPE.isdisjoint(text):
        return f'"{text}"'
    return '"' + "".join(_ESCAPES.get(char, char) for char in text) + '"'


class _Level:
    """An array or object being written: its remaining items, and how many are written."""

    __slots__ = ("closing", "items", "written")

    def __init__(self, items: Iterator[Any], closing: str) -> None:
        self.items = items
        self.closing = closing
        self.written = 0


def to_json(value: Any) -> str:
    """A value as GitHub's `toJSON` writes it: indented by two spaces, numbers as GitHub writes
    them (`NaN` and `Infinity` included). Written without recursion, whatever the depth."""
    counter = Counter()
    out: list[str] = []
    levels: list[_Level] = []

    def write(text: str, *, key: bool = False) -> None:
        if levels and (key or levels[-1].closing == "]"):
            level = levels[-1]
            text = f"{',' if level.written else ''}\n{'  ' * len(levels)}{text}"
            level.written += 1
        elif levels:
            text = ": " + text  # the value of a key
        counter.add_text(text)
        out.append(text)

    def start(item: Any) -> None:
        match kind(item):
            case Kind.ARRAY | Kind.OBJECT as which:
                is_object = which is Kind.OBJECT
                if len(item) == 0:
                    write("{}" if is_object else "[]")
                elif is_object:
                    write("{")
                    levels.append(_Level(iter(item.items()), "}"))
                else:
                    write("[")
                    levels.append(_Level(iter(item), "]"))
            case Kind.NULL:
                write("null")
            case Kind.BOOLEAN:
                write("true" if item else "false")
            case Kind.NUMBER:
                write(format_number(item))
            case Kind.STRING:
                write(json_string(item))

    start(value)
    while levels:
        level = levels[-1]
        item: Any = next(level.items, _END)
        if item is _END:
            levels.pop()
            closing = f"\n{'  ' * len(levels)}{level.closing}"
            counter.add_text(closing)
            out.append(closing)
        elif level.closing == "}":
            write(json_string(to_string(item[0])), key=True)
            start(item[1])
        else:
            start(item)
    return "".join(out)


_END = object()


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object as GitHub holds it: keys ignore case, so a later `"A"` replaces the value of
    an earlier `"a"` and keeps its spelling."""
    result: dict[str, Any] = {}
    spelling: dict[str, str] = {}
    for key, value in pairs:
        result[spelling.setdefault(key.lower(), key)] = value
    return result


def _constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def from_json(text: str) -> Any:
    if not text.strip(" \t\n\r"):
        raise ExpressionError("fromJSON(): empty input")
    try:
        return json.loads(
            text,
            parse_float=lambda digits: exact(float(digits)),
            parse_int=lambda digits: exact(float(digits)),  # GitHub's numbers are all doubles
            parse_constant=_constant,
            object_pairs_hook=_object,
        )
    except (ValueError, RecursionError) as error:
        shown = text if len(text) <= 60 else text[:57] + "..."
        raise ExpressionError(f"fromJSON(): not valid JSON: '{shown}' ({error})") from None
