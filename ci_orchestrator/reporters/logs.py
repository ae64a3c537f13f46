"""Step log text made fit for reports: the tail of a log file, ANSI stripped, secrets masked,
and only characters XML 1.0 allows.

Logs hold whatever bytes a step printed, so every function here accepts anything and never fails
on content: invalid UTF-8 is decoded with replacement characters, a missing file is empty.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

from ci_orchestrator.masking import mask

if TYPE_CHECKING:
    from collections.abc import Iterable

    from ci_orchestrator.results import StepResult

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


def read_tail(path: Path | str | None, *, lines: int = 50, max_bytes: int = 64 * 1024) -> str:
    """The last `lines` lines of a log file, reading at most its last `max_bytes` bytes.

    A missing or unreadable file (or no path) gives "". When the read starts inside the file, the
    first, partial line is dropped so the tail begins at a line start.
    """
    if path is None or lines <= 0 or max_bytes <= 0:
        return ""
    try:
        with Path(path).open("rb") as file:
            size = file.seek(0, 2)
            start = max(0, size - max_bytes)
            file.seek(start)
            data = file.read(max_bytes)
    except OSError:
        return ""
    if start > 0:
        data = _from_line_start(data)
    text = data.decode("utf-8", errors="replace")
    kept = text.splitlines()[-lines:]
    return "\n".join(kept)


def _from_line_start(data: bytes) -> bytes:
    """A chunk cut from the middle of a file, from its first whole line on."""
    newline = data.find(b"\n")
    if 0 <= newline < len(data) - 1:
        return data[newline + 1 :]
    # One huge line: keep its end, but not half a UTF-8 sequence at the cut.
    return data.lstrip(bytes(range(0x80, 0xC0)))


def strip_ansi(text: str) -> str:
    """`text` without terminal escape sequences (colours, cursor moves, titles, hyperlinks)."""
    return _ANSI.sub("", text)


def xml_safe(text: str) -> str:
    """`text` without the code points XML 1.0 forbids (controls, lone surrogates, U+FFFE/U+FFFF)."""
    return _NOT_XML.sub("", text)


def clean(text: str, secrets: Iterable[str] = ()) -> str:
    """Log text ready for any report: ANSI stripped, secrets masked, XML-safe.

    ANSI goes first so a secret split by colour codes is still found.
    """
    return xml_safe(mask(strip_ansi(text), secrets))


def clean_tail(
    path: Path | str | None,
    *,
    secrets: Iterable[str] = (),
    lines: int = 50,
    max_bytes: int = 64 * 1024,
) -> str:
    """The tail of a log file (see `read_tail`), cleaned for a report (see `clean`)."""
    return clean(read_tail(path, lines=lines, max_bytes=max_bytes), secrets)


def step_tail(
    step: StepResult, *, secrets: Iterable[str] = (), lines: int = 50, max_bytes: int = 64 * 1024
) -> str:
    """The cleaned tail of a step's log file, or, where the file is not here, the tail its run
    record carried (see `StepResult.log_tail`)."""
    return clean_tail(step.log, secrets=secrets, lines=lines, max_bytes=max_bytes) or clean(
        step.log_tail or "", secrets
    )
