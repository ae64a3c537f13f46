"""GitHub's numbers: text read as a number and a number written as text, as its runner does both.

Every number is a double. Text is read the way the runner's `ParseNumber` reads it (a decimal with
an optional sign, point and exponent; `0x` and `0o` integers of 32 bits; `Infinity`; surrounding
white space ignored; nothing at all is 0; anything else is NaN), and a number is written with at
most 15 significant digits, in .NET's "G15" form (`0.84551240822557`, `1E-05`, `1E+15`).
"""

from __future__ import annotations

import math
import re
from decimal import ROUND_HALF_UP, Context, Decimal

# .NET's char.IsWhiteSpace: what the runner trims from text read as a number, and what separates
# tokens in an expression.
WHITESPACE = (
    "\t\n\v\f\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a"
    "\u2028\u2029\u202f\u205f\u3000"
)
_DECIMAL = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_INFINITY = re.compile(r"([+-]?)infinity", re.IGNORECASE)  # .NET reads these symbols in any case
_NAN = re.compile(r"[+-]?nan", re.IGNORECASE)
_HEX = re.compile(r"0x[0-9a-fA-F]+")  # the prefix is lower case only: `0X1F` is not a number
_OCTAL = re.compile(r"0o[0-7]+")
_INT32 = 2**32
_EXACT = 2**53  # integers up to this are kept as Python ints: they are exact doubles
_G15 = Context(prec=15, rounding=ROUND_HALF_UP)


def _int32(digits: str, base: int) -> float:
    """`0x`/`0o` digits as the runner reads them: a 32-bit two's-complement integer, so
    `0xFFFFFFFF` is -1 and anything wider is not a number."""
    value = int(digits, base)
    if value >= _INT32:
        return math.nan
    return float(value - _INT32 if value >= _INT32 // 2 else value)


def parse_number(text: str) -> float:
    """Text read as a number: ' 12 ' is 12, '' is 0, '0x1F' is 31, '0o10' is 8, 'abc' is NaN."""
    text = text.strip(WHITESPACE)
    if not text:
        return 0.0
    if _DECIMAL.fullmatch(text):
        return float(text)  # too large a value is infinite, as .NET reads it
    if infinity := _INFINITY.fullmatch(text):
        return -math.inf if infinity.group(1) == "-" else math.inf
    if _HEX.fullmatch(text):
        return _int32(text[2:], 16)
    if _OCTAL.fullmatch(text):
        return _int32(text[2:], 8)
    return math.nan  # `NaN` itself included


def literal_number(text: str) -> int | float | None:
    """The value of a number literal, or None if GitHub refuses it: what is not a number
    (`0xFZ`, `-0xFF`, `1e`, `NaN` with a sign) or a decimal too large for a double (`1e309`)."""
    value = parse_number(text)
    if math.isnan(value) or (math.isinf(value) and not _INFINITY.fullmatch(text)):
        return None
    return exact(value)


def exact(value: float) -> int | float:
    """A number as the evaluator holds it: an int when it is a whole number a double holds
    exactly (so `${{ 30 }}` gives 30, not 30.0), else the float; -0 is 0."""
    if value.is_integer() and abs(value) <= _EXACT:
        return int(value)
    return value


def as_float(value: float) -> float:
    """A Python number as a double; an int too large for one is infinite, as a double would be."""
    try:
        return float(value)
    except OverflowError:
        return math.inf if value > 0 else -math.inf


def format_number(value: float) -> str:
    """A number as GitHub writes it: 15 significant digits (rounded half away from zero), the
    exponent form `1E+15` / `1E-05` outside 1e-5 <= |x| < 1e15, and -0 written as 0."""
    number = as_float(value)
    if math.isnan(number):
        return "NaN"
    if math.isinf(number):
        return "Infinity" if number > 0 else "-Infinity"
    if number.is_integer() and abs(number) < 1e15:
        return str(int(number))  # a whole number of at most 15 digits is written as it is (-0 as 0)
    sign, digits, exponent = _G15.plus(Decimal(number)).normalize(_G15).as_tuple()
    text = "".join(map(str, digits))
    assert isinstance(exponent, int)  # a finite number
    scientific = len(text) - 1 + exponent  # the power of ten of the first digit
    if -5 < scientific < 15:
        if exponent >= 0:
            text += "0" * exponent
        elif scientific >= 0:
            text = f"{text[: scientific + 1]}.{text[scientific + 1 :]}"
        else:
            text = "0." + "0" * (-scientific - 1) + text
    else:
        mantissa = text[0] + ("." + text[1:] if len(text) > 1 else "")
        text = f"{mantissa}E{'+' if scientific >= 0 else '-'}{abs(scientific):02d}"
    return "-" + text if sign else text
