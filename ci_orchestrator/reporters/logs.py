"""Step log text made fit for reports: the tail of a log file, ANSI stripped, secrets masked,
and only characters XML 1.0 allows; a log read in pieces.

Logs hold whatever bytes a step printed, so every function here accepts anything and never fails
on content: invalid UTF-8 is decoded with replacement characters, a missing file is empty.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ci_orchestrator.output.masking import mask
from ci_orchestrator.output.text import strip_ansi, xml_safe

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator

    from ci_orchestrator.results import RunResult, StepResult

TAIL_LINES = 50  # of a failed step's log, in every report
TAIL_BYTES = 64 * 1024  # at most, from the end of the log
PIECE = 64 * 1024  # characters of a log read at a time


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


def log_end(path: Path | str | None, *, lines: int, max_bytes: int = 1024 * 1024) -> tuple[str, int]:
    """The last `lines` lines of a log file (ended by LF, read from at most its last `max_bytes`
    bytes), and how many lines come before them: (whole text, 0) for a log that short. A missing
    or unreadable file gives ("", 0)."""
    if path is None:
        return "", 0
    try:
        with Path(path).open("rb") as file:
            size = file.seek(0, 2)
            start = max(0, size - max_bytes)
            file.seek(start)
            data = file.read(max_bytes)
            cut = len(data) - data.endswith(b"\n")
            for _ in range(lines):
                cut = data.rfind(b"\n", 0, cut)
                if cut < 0:
                    break
            if cut < 0 and start > 0:  # a long line at the read's start: from its first end on
                cut = data.find(b"\n")
            cut = 0 if cut < 0 and start == 0 else cut + 1
            file.seek(0)
            before, left = 0, start + cut
            while left > 0 and (chunk := file.read(min(PIECE * 16, left))):
                before += chunk.count(b"\n")
                left -= len(chunk)
    except OSError:
        return "", 0
    return data[cut:].decode("utf-8", errors="replace"), before


def _from_line_start(data: bytes) -> bytes:
    """A chunk cut from the middle of a file, from its first whole line on."""
    newline = data.find(b"\n")
    if 0 <= newline < len(data) - 1:
        return data[newline + 1 :]
    # One huge line: keep its end, but not half a UTF-8 sequence at the cut.
    return data.lstrip(bytes(range(0x80, 0xC0)))


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


def step_tail(step: StepResult, *, secrets: Iterable[str] = ()) -> str:
    """A failed step's log tail as its result carries it (`with_tails`), cleaned for a report.
    Never read from the file the result names: a result read from a run record is untrusted."""
    return clean(step.log_tail or "", secrets)


def with_tails(result: RunResult) -> RunResult:
    """`result` with each failed step's log tail read from its log file, masked: what the
    reports show of the log (they open no file a result names). A tail is "" when the step
    printed nothing; None when there is no log file to read."""
    from dataclasses import replace

    def read(step: StepResult) -> StepResult:
        if step.status.is_failure and step.log_tail is None and step.log and Path(step.log).is_file():
            tail = clean_tail(step.log, secrets=result.secrets, lines=TAIL_LINES, max_bytes=TAIL_BYTES)
            return replace(step, log_tail=tail)
        return step

    return replace(result, steps=tuple(read(step) for step in result.steps))


def last_lines(text: str, *, lines: int = TAIL_LINES, max_bytes: int = TAIL_BYTES) -> str:
    """The end of a tail given elsewhere (a run record's), held to what a tail read here holds."""
    data = text.encode("utf-8")
    if len(data) > max_bytes:
        text = _from_line_start(data[-max_bytes:]).decode("utf-8", errors="ignore")
    return "\n".join(text.splitlines()[-lines:])


def text_pieces(path: Path | str | None, holds: Callable[[str], int]) -> Iterator[str]:
    """A log file's text in pieces of whole lines, never read whole; a missing file gives nothing.

    A piece ends at a line end when it can; a line longer than a piece is cut, holding back the
    end of it that `holds` says could begin a secret (its length).
    """
    if not path:
        return
    try:
        file_path = Path(path)
        if not file_path.stat().st_size:  # most steps print nothing: no text decoder for them
            return
        file = file_path.open(encoding="utf-8", errors="replace", newline="")
    except OSError:
        return
    with file:
        carry = ""
        while piece := file.read(PIECE):
            text = carry + piece
            cut = text.rfind("\n") + 1 or len(text) - holds(text)
            carry = text[cut:]
            yield text[:cut]
        if carry:
            yield carry
