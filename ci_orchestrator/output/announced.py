"""A step's log as GitHub's runner keeps it when the step announces a value with `::add-mask::`
(or `##[add-mask]`): from the line of the announcement on, that line included, the value is
`***`. What the step printed before it is left as it was, as on GitHub.

`AnnouncedMasks` does it to a stream given chunk by chunk (a log written through the tool's
pipe); `mask_file` to a log the step wrote straight to its file, once the step is over. Both
give the same bytes, and the values announced (for the console, the reports and the cache,
which announce them again or hide them in their turn).

Lines end where the runner ends them (LF, CR, CRLF), and a line is read as the runner reads it
(`workflow_commands.parse_placed`); a line longer than `LONGEST_LINE` is taken in pieces, as the
console takes it. Nearly every log announces nothing: each piece is looked at once for
`-mask` in any case, at about the speed of reading it, and passed on as it is.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from ci_orchestrator.output.masking import MASK, Masker, maskable
from ci_orchestrator.output.workflow_commands import parse_placed

if TYPE_CHECKING:
    from typing import BinaryIO

LONGEST_LINE = 64 * 1024  # bytes of a line held back to be read whole; a longer one is cut
_CHUNK = 1 << 20
# Every announcement holds it (`add-mask`, any case); nothing else is looked at more closely.
_CANDIDATE = re.compile(rb"-[mM][aA][sS][kK]")
_MASK_BYTES = MASK.encode()


class AnnouncedMasks:
    """Masks, in a stream of a step's output, each value the stream announces, from the line of
    its announcement on. The last line, until it ends, is held back (at most `LONGEST_LINE`)."""

    __slots__ = ("_held", "_masker", "_values")

    def __init__(self) -> None:
        self._held = b""  # the line not ended yet
        self._values: list[str] = []
        self._masker: Masker | None = None

    @property
    def values(self) -> tuple[str, ...]:
        """The values announced so far, in order (bytes that are not UTF-8 as surrogate escapes)."""
        return tuple(self._values)

    def feed(self, chunk: bytes) -> bytes:
        data = self._held + chunk if self._held else chunk
        end = max(data.rfind(b"\n"), data.rfind(b"\r")) + 1
        if len(data) - end > LONGEST_LINE:
            end = len(data)
        self._held = data[end:]
        return self._lines(data[:end])

    def flush(self) -> bytes:
        data, self._held = self._held, b""
        text = self._lines(data)
        return text + self._masker.flush() if self._masker is not None else text

    def _lines(self, data: bytes) -> bytes:
        """Whole lines (the last may be cut): each announcement learnt, each value masked."""
        if not data:
            return b""
        if _CANDIDATE.search(data) is None:
            return self._masked(data)
        parts = []
        position = 0  # where what is not passed on yet begins
        looked = 0  # where the lines looked at end: a line is read once, whatever it holds
        for found in _CANDIDATE.finditer(data):
            if found.start() < looked:
                continue
            start = max(data.rfind(b"\n", 0, found.start()), data.rfind(b"\r", 0, found.start())) + 1
            ends = [
                index
                for index in (data.find(b"\n", found.end()), data.find(b"\r", found.end()))
                if index >= 0
            ]
            end = looked = min(ends, default=len(data))
            announced = _announcement(data[start:end])
            if announced is None:
                continue
            value, data_at = announced
            parts.append(self._masked(data[position:start]))
            if self._masker is not None:
                parts.append(self._masker.flush())  # what came before is masked as it was known then
            self._values.append(value)
            self._masker = Masker(self._values)
            parts.append(self._masked(data[start : start + data_at] + _MASK_BYTES))
            position = end
        parts.append(self._masked(data[position:]))
        return b"".join(parts)

    def _masked(self, data: bytes) -> bytes:
        return data if self._masker is None or not data else self._masker.feed(data)


def _announcement(line: bytes) -> tuple[str, int] | None:
    """The value a line announces (long enough to be masked) and where in it its text begins."""
    text = line.decode("utf-8", "surrogateescape")  # every byte kept: found again as written
    found = parse_placed(text)
    if found is None or found[0].name != "add-mask" or not maskable(found[0].data):
        return None
    command, data_at = found
    return command.data, len(text[:data_at].encode("utf-8", "surrogateescape"))


def mask_file(path: Path) -> tuple[str, ...]:
    """Rewrites the log file at `path` as `AnnouncedMasks` masks its bytes, when it announces
    anything; the values announced. The file is replaced whole (a rename): a process still
    writing to it writes on to the file it had. A file that cannot be read is left as it is; one
    whose masked copy cannot be written (a full disk) too, its values still told."""
    try:
        log = path.open("rb")
    except OSError:
        return ()
    with log:
        stream = AnnouncedMasks()
        try:
            if not _announces(log):
                return ()
            log.seek(0)
            handle, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
            copy = Path(name)
        except OSError:
            _read_through(log, stream, None)
            return stream.values
        try:
            with os.fdopen(handle, "wb") as masked:
                _read_through(log, stream, masked)
            copy.chmod(path.stat().st_mode & 0o777)
            copy.replace(path)
        except OSError:
            copy.unlink(missing_ok=True)
            _read_through(log, stream, None)  # the values, from where the copy stopped
        except BaseException:
            copy.unlink(missing_ok=True)
            raise
    return stream.values


def _read_through(log: BinaryIO, stream: AnnouncedMasks, target: BinaryIO | None) -> None:
    with contextlib.suppress(OSError):  # what could not be read announces nothing
        while chunk := log.read(_CHUNK):
            masked = stream.feed(chunk)
            if target is not None:
                target.write(masked)
        rest = stream.flush()
        if target is not None:
            target.write(rest)


def _announces(log: BinaryIO) -> bool:
    """Whether the file holds `-mask` anywhere (in any case): most logs do not, and are left alone."""
    tail = b""
    while chunk := log.read(_CHUNK):
        if _CANDIDATE.search(tail + chunk[:4]) or _CANDIDATE.search(chunk):
            return True
        tail = chunk[-4:]
    return False
