"""Durations, sizes and shards as users write them (`90s`, `1h30m`, `500MB`, `2GiB`, `2/3`): in
seconds, bytes, and a shard's number and count."""

from __future__ import annotations

import math
import re

_NUMBER = r"\d+(?:\.\d+)?"
_DURATION = re.compile(rf"(?:({_NUMBER})h)?\s*(?:({_NUMBER})m)?\s*(?:({_NUMBER})s)?", re.IGNORECASE)
_DURATION_FORMS = "use seconds or a form like 90s, 2m, 1h30m"
_SIZE = re.compile(rf"({_NUMBER})\s*([kmgt]?)(i?)(b?)", re.IGNORECASE)

MAX_DURATION = 7 * 24 * 3600
"""The longest duration taken, 7 days (`168h`): longer than any CI job runs, and far inside what
the system's waits and clocks hold (a wait of 25 days or more overflows them)."""
MAX_SIZE = 1024**5
"""The largest size taken, 1024 TiB: beyond any disk, and inside what the cache's database holds."""
MAX_SHARDS = 256
"""The most shards a run is split into: as many jobs as GitHub makes of one matrix (and the
`export` and `plan` commands split into), and a bound on the parts a split holds in memory and on
what a merge of shard records counts."""
MAX_COUNT = 2**31 - 1
"""The largest whole number an option takes (`--limit`, `--pr`, `--shards`): past any count of
runs or pull requests, and inside what SQLite and the system's calls hold."""
_SHARD = re.compile(r"\s*([0-9]+)\s*/\s*([0-9]+)\s*")


def parse_duration(value: object) -> float:
    """Seconds from a number or a text like `90`, `1.5`, `90s`, `2m`, `1h30m`.

    Every duration users write is a timeout, so it must be above 0 (a timeout of 0 would stop
    its step at once) and at most `MAX_DURATION`. Raises ValueError for anything else,
    TypeError for a value of another type (a bool, a list), both with a message fit for the
    user. The playbook, script headers, settings and `--timeout` all read durations here; each
    caller says where the value was written.
    """
    shown = _shown(value)
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise TypeError(f"invalid duration {shown}: {_DURATION_FORMS}")
    try:
        seconds = float(value) if isinstance(value, int | float) else _duration_text(value, shown)
    except OverflowError:  # an int too large for a float
        seconds = math.inf
    if math.isnan(seconds) or seconds <= 0:
        raise ValueError(f"invalid duration {shown}: must be a finite number of seconds above 0")
    if seconds > MAX_DURATION:
        raise ValueError(f"invalid duration {shown}: at most 168h (7 days)")
    return seconds


def _duration_text(text: str, shown: str) -> float:
    stripped = text.strip()
    try:
        return float(stripped)
    except ValueError:
        pass
    match = _DURATION.fullmatch(stripped)
    if not stripped or match is None:
        raise ValueError(f"invalid duration {shown}: {_DURATION_FORMS}")
    hours, minutes, seconds = (float(part or 0) for part in match.groups())
    return hours * 3600 + minutes * 60 + seconds


def parse_size(text: str | int) -> int:
    """Bytes from an integer or a text like `500MB`, `2GiB`, `1.5G` (K, M, G, T alone are binary)."""
    if isinstance(text, bool) or not isinstance(text, str | int):
        raise TypeError(f"invalid size {_shown(text)}")
    if isinstance(text, int):
        size: float = text
    else:
        match = _SIZE.fullmatch(text.strip())
        if match is None:
            raise ValueError(f"invalid size {_shown(text)}: use bytes or a form like 500MB, 2GiB")
        number, prefix, binary, byte = match.groups()
        power = " kmgt".index(prefix.lower()) if prefix else 0
        # `2G` means GiB, as in most tools' size options; only an explicit `GB` is decimal.
        base = 1000 if (byte and not binary and prefix) else 1024
        size = float(number) * base**power  # inf for a number past what a float holds
    if size > MAX_SIZE:
        raise ValueError(f"invalid size {_shown(text)}: at most 1024TiB")
    if int(size) <= 0:
        raise ValueError(f"invalid size {_shown(text)}: must be more than 0 bytes")
    return int(size)


def _shown(value: object) -> str:
    """A value as an error message quotes it: a number thousands of digits long is cut short.
    Integers are measured by their bits, as turning a huge one into text is refused."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 128:
        return "(a number of more than 38 digits)"
    shown = repr(value)
    return shown if len(shown) <= 40 else f"{shown[:37]}..."


def parse_shard(text: str) -> tuple[int, int]:
    """`I/N` -> (I, N), with 1 <= I <= N <= `MAX_SHARDS`; ValueError, with a message fit for the
    user, for anything else (each caller says where the text was written)."""
    shown = _shown(text)
    match = _SHARD.fullmatch(text)
    if match is None:
        raise ValueError(f"invalid shard {shown}: expected I/N, such as 2/3")
    # Python refuses to read thousands of digits as an int: a number that long is too big anyway.
    index, count = (int(part) if len(part.lstrip("0")) <= 9 else MAX_SHARDS + 1 for part in match.groups())
    if count > MAX_SHARDS:
        raise ValueError(f"invalid shard {shown}: N must be at most {MAX_SHARDS}")
    if count < 1 or not 1 <= index <= count:
        raise ValueError(f"invalid shard {shown}: I must be between 1 and N, and N at least 1")
    return index, count
