"""GitHub's rules for expression values: kinds, truthiness, coercion to numbers and text, the loose
comparisons of `==` and `<`, and values written as JSON."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from enum import Enum
from typing import TYPE_CHECKING, Any

from ci_orchestrator.expressions.numbers import as_float, format_number, parse_number

if TYPE_CHECKING:
    from collections.abc import Callable

    from ci_orchestrator.expressions.syntax import Operator


class Kind(Enum):
    NULL = "null"
    BOOLEAN = "boolean"
    NUMBER = "number"
    STRING = "string"
    ARRAY = "array"
    OBJECT = "object"


PRIMITIVE = frozenset({Kind.NULL, Kind.BOOLEAN, Kind.NUMBER, Kind.STRING})


_KINDS = {dict: Kind.OBJECT, list: Kind.ARRAY, str: Kind.STRING, bool: Kind.BOOLEAN, int: Kind.NUMBER}
_KINDS |= {float: Kind.NUMBER, type(None): Kind.NULL}


def kind(value: Any) -> Kind:
    found = _KINDS.get(type(value))  # the usual types, without the slower checks below
    if found is not None:
        return found
    if value is None:
        return Kind.NULL
    if isinstance(value, bool):
        return Kind.BOOLEAN
    if isinstance(value, int | float):
        return Kind.NUMBER
    if isinstance(value, str):
        return Kind.STRING
    if isinstance(value, Mapping):
        return Kind.OBJECT
    return Kind.ARRAY


def truthy(value: Any) -> bool:
    """GitHub's truthiness: null, false, 0, NaN and '' are false; everything else is true."""
    match kind(value):
        case Kind.NULL:
            return False
        case Kind.BOOLEAN:
            return bool(value)
        case Kind.NUMBER:
            return not (value == 0 or math.isnan(value))
        case Kind.STRING:
            return bool(value)
    return True


def to_number(value: Any) -> float:
    """null is 0, booleans 1 and 0, strings read as GitHub reads them ('' is 0, ' 0x1F ' is 31,
    junk NaN), arrays and objects NaN."""
    match kind(value):
        case Kind.NULL:
            return 0.0
        case Kind.BOOLEAN | Kind.NUMBER:
            return as_float(value)
        case Kind.STRING:
            return parse_number(value)
    return math.nan


def to_string(value: Any) -> str:
    """A value as it appears in text (`format`, `join`, `${{ }}` in text): strings as-is, null as
    '', booleans as `true`/`false`, numbers as GitHub writes them, an array `Array` and an object
    `Object`."""
    match kind(value):
        case Kind.NULL:
            return ""
        case Kind.BOOLEAN:
            return "true" if value else "false"
        case Kind.NUMBER:
            return format_number(value)
        case Kind.STRING:
            return str(value)
        case Kind.ARRAY:
            return "Array"
    return "Object"


def as_text(value: Any) -> str:
    """A value as the tool writes it where GitHub has no rule (a `MATRIX_*` variable, a
    `--matrix` filter): as `to_string`, but an array or object as its JSON."""
    if kind(value) in PRIMITIVE:
        return to_string(value)
    return json.dumps(value, default=_plain, ensure_ascii=False)


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return dict(value)
    return list(value)


def lookup(target: Mapping[str, Any], name: str) -> tuple[bool, Any]:
    """(found, value) of a key, ignoring case as GitHub's objects do: the first key that matches."""
    if name in target:
        return True, target[name]
    folded = name.lower()
    for key, value in target.items():
        if str(key).lower() == folded:
            return True, value
    return False, None


def fold(text: str) -> str:
    """Text for case-insensitive comparison, as GitHub folds it: upper case, except that the
    dotless `ı` stays itself (so `'ı' == 'I'` is false; `'i' == 'İ'` is false too)."""
    if "ı" not in text:
        return text.upper()
    return "ı".join(part.upper() for part in text.split("ı"))


def _ordinal(left: str, right: str) -> tuple[str, str] | tuple[bytes, bytes]:
    """Keys that order two strings by UTF-16 code units, as GitHub compares them (code points
    order them the same way unless one holds a character past U+D7FF)."""
    if max(left, default="") < "\ud800" and max(right, default="") < "\ud800":
        return left, right
    return left.encode("utf-16-be", "surrogatepass"), right.encode("utf-16-be", "surrogatepass")


def _coerced(left: Any, right: Any) -> tuple[Kind, Any, Any] | None:
    """Both sides of a comparison brought to one kind, or None when they cannot be: booleans and
    null become numbers, then a string compared with a number becomes a number; an array or
    object is never coerced."""
    left_kind, right_kind = kind(left), kind(right)
    if left_kind is right_kind:
        return left_kind, left, right
    if left_kind in (Kind.NULL, Kind.BOOLEAN):
        return _coerced(to_number(left), right)
    if right_kind in (Kind.NULL, Kind.BOOLEAN):
        return _coerced(left, to_number(right))
    if {left_kind, right_kind} == {Kind.NUMBER, Kind.STRING}:
        return Kind.NUMBER, to_number(left), to_number(right)
    return None


def loose_equal(left: Any, right: Any) -> bool:
    """GitHub's `==`: strings ignore case, mixed kinds are compared as numbers, NaN equals nothing,
    an array or object equals only itself."""
    coerced = _coerced(left, right)
    if coerced is None:
        return False
    which, a, b = coerced
    match which:
        case Kind.NULL:
            return True
        case Kind.NUMBER:
            return as_float(a) == as_float(b)
        case Kind.STRING:
            return fold(a) == fold(b)
        case Kind.BOOLEAN:
            return bool(a == b)
    return a is b


def _greater(left: Any, right: Any, *, than: Callable[[Any, Any], bool]) -> bool:
    coerced = _coerced(left, right)
    if coerced is None:
        return False
    which, a, b = coerced
    match which:
        case Kind.NUMBER:
            return than(as_float(a), as_float(b))  # false whenever NaN is involved
        case Kind.STRING:
            return than(*_ordinal(fold(a), fold(b)))
        case Kind.BOOLEAN:
            return than(bool(a), bool(b))
    return False


def ordered(operator: Operator, left: Any, right: Any) -> bool:
    """`<`, `<=`, `>`, `>=`; the `or equal` ones are `==` or the strict one, as on GitHub (so an
    object is `>=` itself)."""
    symbol = operator.value
    if symbol.startswith(">"):
        strict = _greater(left, right, than=lambda a, b: a > b)
    else:
        strict = _greater(left, right, than=lambda a, b: a < b)
    return strict or (symbol.endswith("=") and loose_equal(left, right))
