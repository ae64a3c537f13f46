"""Durations and sizes as users write them (`90s`, `1h30m`, `500MB`, `2GiB`), in seconds and bytes."""

from __future__ import annotations

import math
import re

_NUMBER = r"\d+(?:\.\d+)?"
_DURATION = re.compile(rf"(?:({_NUMBER})h)?\s*(?:({_NUMBER})m)?\s*(?:({_NUMBER})s)?", re.IGNORECASE)
_SIZE = re.compile(rf"({_NUMBER})\s*([kmgt]?)(i?)(b?)", re.IGNORECASE)


def parse_duration(text: str | float) -> float:
    """Seconds from a number or a text like `90`, `1.5`, `90s`, `2m`, `1h30m`.

    Raises ValueError for a malformed or negative duration, TypeError for a value of another type.
    """
    if isinstance(text, bool):
        raise TypeError(f"invalid duration {text!r}")
    seconds = float(text) if isinstance(text, int | float) else _duration_text(text)
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"invalid duration {text!r}: must be a finite number of seconds, 0 or more")
    return seconds


def _duration_text(text: str) -> float:
    stripped = text.strip()
    try:
        return float(stripped)
    except ValueError:
        pass
    match = _DURATION.fullmatch(stripped)
    if not stripped or match is None:
        raise ValueError(f"invalid duration {text!r}: use seconds or a form like 90s, 2m, 1h30m")
    hours, minutes, seconds = (float(part or 0) for part in match.groups())
    return hours * 3600 + minutes * 60 + seconds


def parse_size(text: str | int) -> int:
    """Bytes from an integer or a text like `500MB`, `2GiB`, `1.5G` (K, M, G, T alone are binary)."""
    if isinstance(text, bool):
        raise TypeError(f"invalid size {text!r}")
    if isinstance(text, int):
        size = text
    else:
        match = _SIZE.fullmatch(text.strip())
        if match is None:
            raise ValueError(f"invalid size {text!r}: use bytes or a form like 500MB, 2GiB")
        number, prefix, binary, byte = match.groups()
        power = " kmgt".index(prefix.lower()) if prefix else 0
        # `2G` means GiB, as in most tools' size options; only an explicit `GB` is decimal.
        base = 1000 if (byte and not binary and prefix) else 1024
        size = int(float(number) * base**power)
    if size <= 0:
        raise ValueError(f"invalid size {text!r}: must be more than 0 bytes")
    return size
