"""Text any program printed made fit to show: terminal escape sequences stripped, and only the
characters XML 1.0 allows. The rule for step logs and for the JUnit files steps write alike."""

from __future__ import annotations

import os
import re

# CSI (colours, cursor moves), OSC (titles, hyperlinks; ended by BEL or ST), other two-byte
# escapes, and the 8-bit CSI introducer some tools emit.
_ANSI = re.compile(
    r"""
    \x1b\[[0-?]*[ -/]*[@-~]             # CSI ... final byte
    | \x1b\][^\x07\x1b]*(?:\x07|\x1b\\)  # OSC ... BEL or ST
    | \x1b[PX^_][^\x1b]*\x1b\\           # DCS, SOS, PM, APC ... ST
    | \x1b[@-Z\\-_]                      # two-byte escapes
    | \x9b[0-?]*[ -/]*[@-~]              # 8-bit CSI
    | \x1b                               # a lone ESC left over from a cut sequence
    """,
    re.VERBOSE,
)

# Everything outside XML 1.0's Char production: C0 controls but TAB/LF/CR, lone surrogates,
# U+FFFE and U+FFFF. Parsers reject these even as character references or inside CDATA.
# Listed as they are rather than as the complement of what XML allows: the complement's huge
# ranges take ~5 ms to compile, at every start.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_SURROGATE = re.compile("[\ud800-\udfff]")


def as_text(value: str) -> str:
    """`value` with what is not text made U+FFFD: the bytes that are not UTF-8 that Python keeps
    as lone surrogates (in the environment, arguments, file names), which no file, console or
    database takes, read as a UTF-8 decoder reads them (a step's log is read so too)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        try:
            return os.fsencode(value).decode("utf-8", "replace")  # the bytes it stands for
        except UnicodeEncodeError:  # a lone surrogate as such (a JSON escape): half a character
            return _SURROGATE.sub("\ufffd", value)
    return value


def as_bytes(value: str) -> bytes:
    """The bytes `value` stands for: its UTF-8, and each byte that is not UTF-8 as it was
    (Python's `surrogateescape`); a lone surrogate as such is U+FFFD's."""
    try:
        return os.fsencode(value)
    except UnicodeEncodeError:
        return as_text(value).encode("utf-8")


def strip_ansi(text: str) -> str:
    """`text` without terminal escape sequences (colours, cursor moves, titles, hyperlinks)."""
    return _ANSI.sub("", text)


def xml_safe(text: str) -> str:
    """`text` without the code points XML 1.0 forbids (controls, lone surrogates, U+FFFE/U+FFFF)."""
    return _NOT_XML.sub("", text)


def allowed_in_xml(code: int) -> bool:
    """Whether XML 1.0 allows this code point, written as it is or as a character reference."""
    if code < 0x20:
        return code in (0x09, 0x0A, 0x0D)
    return not (0xD800 <= code <= 0xDFFF or code in (0xFFFE, 0xFFFF) or code > 0x10FFFF)
