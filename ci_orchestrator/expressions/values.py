"""GitHub's rules for expression values: kinds, truthiness, coercion to numbers and text, and the
loose comparisons of `==` and `<`."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from enum import Enum
from typing import Any

from ci_orchestrator.errors import ExpressionError
from ci_orchestrator.expressions.syntax import Operator, number_literal


class Kind(Enum):
    NULL = "null"
    BOOLEAN = "boolean"
    NUMBER = "number"
    STRING = "string"
    ARRAY = "array"
    OBJECT = "object"


def kind(value: Any) -> Kind:
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


_NUMERIC = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|[+-]?0[xX][0-9a-fA-F]+|[+-]?Infinity|NaN")


def to_number(value: Any) -> float:
    """null is 0, booleans 1 and 0, strings parsed as numbers ('' is 0, junk NaN), collections NaN."""
    match kind(value):
        case Kind.NULL:
            return 0.0
        case Kind.BOOLEAN | Kind.NUMBER:
            try:
                return float(value)
            except OverflowError:  # an int past a double's range (a long YAML number): as GitHub's double
                return math.inf if value > 0 else -math.inf
        case Kind.STRING:
            text = value.strip()
            if not text:
                return 0.0
            if _NUMERIC.fullmatch(text):
                return float(number_literal(text.lstrip("+")))
    return math.nan


def format_number(value: float) -> str:
    if isinstance(value, int):
        return str(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return dict(value)
    raise TypeError(type(value).__name__)


def to_json(value: Any, *, indent: int | None = None) -> str:
    try:
        return json.dumps(value, indent=indent, default=_plain, ensure_ascii=False)
    except (TypeError, ValueError, RecursionError) as error:
        raise ExpressionError(f"cannot convert to JSON: {error}") from None


def to_string(value: Any) -> str:
    """A value as it appears in text: strings as-is, null as '', numbers and booleans as written,
    arrays and objects as JSON."""
    match kind(value):
        case Kind.NULL:
            return ""
        case Kind.BOOLEAN:
            return "true" if value else "false"
        case Kind.NUMBER:
            return format_number(value)
        case Kind.STRING:
            return str(value)
    return to_json(value)


def loose_equal(left: Any, right: Any) -> bool:
    """GitHub's `==`: strings ignore case, other mixed types are compared as numbers,
    arrays and objects only equal themselves."""
    left_kind, right_kind = kind(left), kind(right)
    if left_kind is right_kind:
        match left_kind:
            case Kind.NULL:
                return True
            case Kind.STRING:
                return bool(left.upper() == right.upper())
            case Kind.BOOLEAN | Kind.NUMBER:
                return bool(float(left) == float(right))
        return left is right
    if {left_kind, right_kind} & {Kind.ARRAY, Kind.OBJECT}:
        return False
    return to_number(left) == to_number(right)


def ordered(operator: Operator, left: Any, right: Any) -> bool:
    if kind(left) is Kind.STRING and kind(right) is Kind.STRING:
        a: Any = left.upper()
        b: Any = right.upper()
    else:
        a, b = to_number(left), to_number(right)  # NaN makes every ordering false, as on GitHub
    match operator:
        case Operator.LT:
            return bool(a < b)
        case Operator.LE:
            return bool(a <= b)
        case Operator.GT:
            return bool(a > b)
    return bool(a >= b)
