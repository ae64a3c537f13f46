"""What comes from outside the process, read within bounds: a file read whole up to a size (a
FIFO or a device in its place is refused, never waited on), and JSON text read into values that
every writer takes. The one reader of the JSON other processes and jobs write: run records, the
step cache's index, the run history's JSON columns, GitHub's event file.

Python's `json` reads what JSON has no place for, and what no report can hold; each is refused:
`NaN` and `Infinity`, a number past what a float holds (read as infinity), a number too long to
read, arrays and objects nested more than `MAX_NESTING` deep (what reads, compares or writes
such a value again recurses as deep: the interpreter's own limit, which depends on where it is
called from, is no bound), and a lone surrogate escape (`"\\udc80"`):
half a character, which no UTF-8 file, console or database takes (writing it raises). The step
cache's own JSON carries bytes that are not UTF-8 (a log, a file name) as the escapes
U+DC80..U+DCFF, as Python's `surrogateescape` does: `escaped_bytes` takes those, and no other.
"""

from __future__ import annotations

import codecs
import json
import os
import re
import stat
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable

MAX_NESTING = 100
"""The deepest arrays and objects are read within each other: a run record nests 6 deep, GitHub's
event file some 10."""
MAX_FILE_BYTES = 64 * 1024 * 1024
"""The most read of one file given from outside: a run record, a JUnit file a step wrote, an
event file. Its text and what it becomes in memory stay within a few hundred MB."""


class Unreadable(Exception):  # noqa: N818 - a reason a file is not read, said by the caller
    """Why a file is not read: `message` says it; `missing` when there is no such file,
    `too_large` when it holds more than was to be read."""

    def __init__(self, message: str, *, missing: bool = False, too_large: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.missing = missing
        self.too_large = too_large


class NotJson(ValueError):  # noqa: N818 - a reason, said by the caller in its own words
    """Why a text is not read as JSON; `line` and `column` (1-based, 0 when unknown) where."""

    def __init__(self, message: str, *, line: int = 0, column: int = 0) -> None:
        super().__init__(message)
        self.message = message
        self.line = line
        self.column = column


def read_file(
    path: str | os.PathLike[str],
    *,
    max_bytes: int = MAX_FILE_BYTES,
    refuse: Callable[[os.stat_result], str | None] | None = None,
) -> bytes:
    """The bytes of the regular file at `path`, of at most `max_bytes`; `Unreadable` says why
    not. `refuse(info)` may give a reason of its own to leave the file unread."""
    # Not blocking: a FIFO where the file should be would otherwise wait for a writer for ever.
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except (FileNotFoundError, NotADirectoryError):
        raise Unreadable("no such file", missing=True) from None
    except OSError as error:
        raise Unreadable(f"cannot be read ({error.strerror or error})") from None
    except ValueError:  # a NUL in the name: no such file can exist
        raise Unreadable("no such file", missing=True) from None
    info = os.fstat(descriptor)
    if not stat.S_ISREG(info.st_mode):
        os.close(descriptor)
        raise Unreadable("is a folder" if stat.S_ISDIR(info.st_mode) else "not a regular file")
    with os.fdopen(descriptor, "rb") as file:
        if info.st_size > max_bytes:
            raise Unreadable(f"{info.st_size:,} bytes, more than the {_size(max_bytes)} read", too_large=True)
        if refuse is not None and (reason := refuse(info)) is not None:
            raise Unreadable(reason)
        try:
            data = file.read(max_bytes + 1)
        except OSError as error:
            raise Unreadable(f"cannot be read ({error.strerror or error})") from None
    if len(data) > max_bytes:  # grew while read
        raise Unreadable(f"more than the {_size(max_bytes)} read", too_large=True)
    return data


def read_json_file(path: str | os.PathLike[str], *, max_bytes: int = MAX_FILE_BYTES) -> Any:
    """The JSON value in the file at `path` (UTF-8, a byte order mark allowed): `Unreadable`
    when the file cannot be read, `NotJson` when its text is not JSON as `parse_json` reads it."""
    data = read_file(path, max_bytes=max_bytes).removeprefix(codecs.BOM_UTF8)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        column = error.start - (data.rfind(b"\n", 0, error.start) + 1) + 1
        message = f"not UTF-8 text: byte 0x{data[error.start]:02x} cannot be read"
        raise NotJson(message, line=line, column=column) from None
    return parse_json(text)


def parse_json(text: str, *, escaped_bytes: bool = False) -> Any:
    """The value `text` holds as strict JSON; `NotJson` says why not (see the module). With
    `escaped_bytes`, the escapes U+DC80..U+DCFF stand for bytes and are kept."""
    lone = _lone_surrogate(text, escaped_bytes=escaped_bytes)
    if lone is not None:
        line, column = _place(text, lone)
        shown = text[lone : lone + 6]
        raise NotJson(f"'{shown}' is not valid Unicode text (half of a character)", line=line, column=column)
    too_deep = NotJson(f"invalid JSON (arrays and objects nested more than {MAX_NESTING} deep)")
    try:
        value = json.loads(text, parse_constant=_no_constant, parse_float=_finite)
    except json.JSONDecodeError as error:
        raise NotJson(f"invalid JSON ({error.msg})", line=error.lineno, column=error.colno) from None
    except _NotANumber as error:
        raise NotJson(f"{error.args[0]} is not a JSON number") from None
    except RecursionError:
        raise too_deep from None
    except ValueError:  # a number of thousands of digits, which Python refuses to read
        raise NotJson("invalid JSON (a number too long to read)") from None
    # Fewer brackets than the bound cannot nest past it: most texts need no walk.
    if text.count("[") + text.count("{") > MAX_NESTING and _deeper_than(value, MAX_NESTING):
        raise too_deep
    return value


def _deeper_than(value: Any, depth: int) -> bool:
    """Whether arrays and objects nest more than `depth` deep in `value`: one level at a time,
    without recursion."""
    level = [value] if isinstance(value, dict | list) else []
    for _ in range(depth):
        below: list[Any] = []
        for item in level:
            below += [
                child
                for child in (item.values() if isinstance(item, dict) else item)
                if isinstance(child, dict | list)
            ]
        if not below:
            return False
        level = below
    return True


class _NotANumber(Exception):  # noqa: N818 - internal: turned into NotJson
    pass


def _no_constant(constant: str) -> None:
    raise _NotANumber(constant)


def _finite(text: str) -> float:
    number = float(text)
    if number in (float("inf"), float("-inf")):
        shown = text if len(text) <= 20 else f"{text[:17]}..."
        raise _NotANumber(f"{shown} (past what a number holds)")
    return number


_ANY_SURROGATE = re.compile(r"\\u[dD][89a-fA-F]")  # most JSON holds none: one quick look first
_ESCAPE = re.compile(r"\\(?:u([0-9a-fA-F]{4})|.)", re.DOTALL)


def _lone_surrogate(text: str, *, escaped_bytes: bool) -> int | None:
    """Where the first `\\uD800`..`\\uDFFF` escape that is not half of a pair is, or None.

    Backslashes are read as escapes, each with what follows: `\\\\ud800` is text. A backslash
    outside a string is not JSON, which the parser says.
    """
    if _ANY_SURROGATE.search(text) is None:
        return None
    high: tuple[int, int] | None = None  # a first half waiting for its second: (start, end)
    for escape in _ESCAPE.finditer(text):
        code = int(escape[1], 16) if escape[1] else -1
        if high is not None:
            if 0xDC00 <= code <= 0xDFFF and escape.start() == high[1]:
                high = None
                continue
            return high[0]
        if 0xD800 <= code <= 0xDBFF:
            high = (escape.start(), escape.end())
        elif 0xDC00 <= code <= 0xDFFF and not (escaped_bytes and 0xDC80 <= code <= 0xDCFF):
            return escape.start()
    return None if high is None else high[0]


def _place(text: str, offset: int) -> tuple[int, int]:
    line = text.count("\n", 0, offset) + 1
    return line, offset - (text.rfind("\n", 0, offset) + 1) + 1


def _size(count: int) -> str:
    return f"{count >> 20} MiB" if count >= 1 << 20 and not count % (1 << 20) else f"{count:,} bytes"
