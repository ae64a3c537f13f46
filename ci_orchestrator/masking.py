"""Secret values replaced by `***` in a byte stream read chunk by chunk."""

from __future__ import annotations

import re

MASK = b"***"


class Masker:
    """Replaces every mask value by `***` in a stream given chunk by chunk.

    The last len(longest)-1 bytes are held back until the next chunk shows whether a value
    starts there, so a value split across two chunks is masked all the same; the result is the
    same as masking the whole stream at once, with memory bounded by one chunk.
    """

    __slots__ = ("_carry", "_hold", "_pattern")

    def __init__(self, masks: tuple[str, ...]) -> None:
        # Longest first: where two values start at one place, the longer one is hidden whole.
        values = sorted({mask.encode() for mask in masks if mask}, key=len, reverse=True)
        self._pattern = re.compile(b"|".join(re.escape(value) for value in values)) if values else None
        self._hold = len(values[0]) - 1 if values else 0
        self._carry = b""

    def feed(self, chunk: bytes) -> bytes:
        data = self._carry + chunk
        masked, end = self._mask(data, max(len(data) - self._hold, 0))
        self._carry = data[end:]
        return masked

    def flush(self) -> bytes:
        data, self._carry = self._carry, b""
        return self._mask(data, len(data))[0]

    def _mask(self, data: bytes, cut: int) -> tuple[bytes, int]:
        """Masks each value that starts before `cut` (every value fits in `data` from there);
        returns the masked bytes and where in `data` they end."""
        if self._pattern is None:
            return data[:cut], cut
        parts = []
        position = 0
        while (match := self._pattern.search(data, position)) is not None and match.start() < cut:
            parts.append(data[position : match.start()])
            parts.append(MASK)
            position = match.end()
        end = max(position, cut)
        parts.append(data[position:end])
        return b"".join(parts), end
