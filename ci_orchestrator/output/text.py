"""Text any program printed made fit to show: terminal escape sequences stripped, and only the
characters XML 1.0 allows. The rule for step logs and for the JUnit files steps write alike."""

from __future__ import annotations

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
