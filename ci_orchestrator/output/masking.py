"""Secret values replaced by `***`: the one rule of what is hidden, for a text (console lines,
reports) and for a byte stream read chunk by chunk (step logs)."""

from __future__ import annotations

import functools
import re
from typing import TYPE_CHECKING

from ci_orchestrator.output.text import as_bytes

if TYPE_CHECKING:
    from collections.abc import Iterable

MASK = "***"

MIN_LENGTH = 4
"""Characters a value (or a line of a multi-line one), stripped, needs to be masked. A shorter one
would hide ordinary text wherever it occurs: a secret `a` turns `<details>` into `<det***ils>`,
the lines `{` and `}` of a pretty-printed JSON secret hide every brace of the output. The floor
other maskers keep (google-github-actions' `min_mask_length`, Azure Pipelines' knob, Ansible)."""


def maskable(value: str) -> bool:
    """Whether a value (or a line of one) is long enough to be masked, stripped (`MIN_LENGTH`)."""
    return len(value.strip()) >= MIN_LENGTH


def mask_values(secrets: Iterable[str]) -> tuple[str, ...]:
    """Every text to hide for these secret values, longest first (a value that holds another is
    hidden whole): each value, and each line of one that has a line break, stripped. A line may
    reach the output on its own (`echo $VALUE`, `$(cat file)` without its last line break, a log
    tail that begins inside the value), so each line is a secret too. A value or line shorter
    than `MIN_LENGTH` characters once stripped is left out: it would hide ordinary text."""
    values: set[str] = set()
    for secret in secrets:
        # Blanks would hide nothing but the output's spacing; very short values, ordinary text.
        if not maskable(secret):
            continue
        values.add(secret)
        lines = secret.splitlines()
        if lines != [secret]:
            values.update(line.strip() for line in lines if maskable(line))
    return tuple(sorted(values, key=lambda value: (-len(value), value)))


def mask(text: str, secrets: Iterable[str]) -> str:
    """`text` with every value of `mask_values(secrets)` replaced by `***`; where two start at one
    place the longer one is hidden whole, as `Masker` does in a stream."""
    if not text or not secrets:  # no secrets (an iterator is always truthy): most runs, every line
        return text
    pattern = _text_pattern(tuple(secrets))
    return text if pattern is None else pattern.sub(MASK, text)


@functools.lru_cache(maxsize=16)  # the same few secrets for every line of a run
def _text_pattern(secrets: tuple[str, ...]) -> re.Pattern[str] | None:
    values = mask_values(secrets)
    return re.compile("|".join(re.escape(value) for value in values)) if values else None


class Masker:
    """Replaces every value of `mask_values(masks)` by `***` in a stream given chunk by chunk.

    Only the tail of what has come that is the beginning of some value is held back until the
    next chunk shows whether the value goes on; usually there is none (a line ends with a line
    break), so output is passed on as soon as it comes. A value split across chunks is masked
    all the same: the result is the same as masking the whole stream at once, with memory
    bounded by one chunk and the longest value.
    """

    __slots__ = ("_carry", "_firsts", "_pattern", "_starting", "_window")

    def __init__(self, masks: Iterable[str]) -> None:
        # Longest first: where two values start at one place, the longer one is hidden whole.
        # A value holding bytes that are not UTF-8 (from the environment) is found as those bytes.
        values = [as_bytes(value) for value in mask_values(masks)]
        values.sort(key=len, reverse=True)  # in bytes, which a character may span several of
        self._pattern = re.compile(b"|".join(re.escape(value) for value in values)) if values else None
        # A held tail is shorter than the value it may begin, and starts with that value's first
        # byte: only those places of the last len(longest)-1 bytes are looked at.
        self._window = len(values[0]) - 1 if values else 0
        starting: dict[int, list[bytes]] = {}
        for value in values:
            starting.setdefault(value[0], []).append(value)
        self._starting = starting
        firsts = b"".join(re.escape(bytes([first])) for first in starting)
        self._firsts = re.compile(b"[" + firsts + b"]") if firsts else None
        self._carry = b""

    def feed(self, chunk: bytes) -> bytes:
        data = self._carry + chunk
        masked, end = self._mask(data, self._held_from(data))
        self._carry = data[end:]
        return masked

    def flush(self) -> bytes:
        data, self._carry = self._carry, b""
        return self._mask(data, len(data))[0]

    def _held_from(self, data: bytes) -> int:
        """Where the longest tail of `data` that a value begins with (and goes on after) starts;
        `len(data)` when there is none."""
        size = len(data)
        if self._firsts is None:
            return size
        for found in self._firsts.finditer(data, max(size - self._window, 0)):
            start = found.start()
            tail = data[start:]
            if any(
                len(value) > size - start and value.startswith(tail) for value in self._starting[data[start]]
            ):
                return start
        return size

    def _mask(self, data: bytes, cut: int) -> tuple[bytes, int]:
        """Masks each value that starts before `cut` (no longer value can start there once more
        data comes, since no value begins with what follows); returns the masked bytes and where
        in `data` they end."""
        if self._pattern is None:
            return data[:cut], cut
        parts = []
        position = 0
        while (match := self._pattern.search(data, position)) is not None and match.start() < cut:
            parts.append(data[position : match.start()])
            parts.append(_MASK_BYTES)
            position = match.end()
        end = max(position, cut)
        parts.append(data[position:end])
        return b"".join(parts), end


_MASK_BYTES = MASK.encode()
