"""Durations and sizes as users write them (`90s`, `1h30m`, `500MB`, `2GiB`), in seconds and bytes."""

from __future__ import annotations

import math
import re

_NUMBER = r"\d+(?:\.\d+)?"
_DURATION = re.compile(rf"(?:({_NUMBER})h)?\s*(?:({_NUMBER})m)?\s*(?:({_NUMBER})s)?", re.IGNORECASE)
_DURATION_FORMS = "use seconds or a form like 90s, 2m, 1h30m"
_SIZE = re.compile(rf"({_NUMBER})\s*([kmgt]?)(i?)(b?)", re.IGNORECASE)


def parse_duration(value: object) -> float:
    """Seconds from a number or a text like `90`, `1.5`, `90s`, `2m`, `1h30m`.

    Every duration users write is a timeout, so it must be finite and above 0: a timeout of 0
    would stop its step at once. Raises ValueError for anything else, TypeError for a value of
    another type (a bool, a list), both with a message fit for the user. The playbook, script
    headers, settings and `--timeout` all read durations here; each caller says where the value
    was written.
    """
    shown = repr(value) if len(repr(value)) <= 40 else f"{repr(value)[:37]}..."
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise TypeError(f"invalid duration {shown}: {_DURATION_FORMS}")
    try:
        seconds = float(value) if isinstance(value, int | float) else _duration_text(value, shown)
    except OverflowError:  # an int too large for a float
        seconds = math.inf
    if not math.isfinite(seconds) or seconds <= 0:
        raise ValueError(f"invalid duration {shown}: must be a finite number of seconds above 0")
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
