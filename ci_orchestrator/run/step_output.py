"""What a running step prints, on its way to its log file: straight from the process (the file
is its stdout and stderr), or, when it must be masked or watched as it comes, through a pipe
read here, masked, written to the log and passed to the observer.

What the step announces with `::add-mask::` is hidden in its log from the line of the
announcement on, as GitHub hides it in its own: as it comes through the pipe, or once the step
is over in a file it wrote itself (`announced`).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, TypeAlias

from ci_orchestrator.output.announced import AnnouncedMasks, mask_file
from ci_orchestrator.output.masking import Masker
from ci_orchestrator.run.child import write_all

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from ci_orchestrator.run.child import Child

    OutputCallback: TypeAlias = Callable[[str, bytes], None]

_CHUNK = 1 << 16


def needs_pipe(masks: tuple[str, ...], on_output: OutputCallback | None) -> bool:
    """Whether a step's output must come through the tool: to be masked, or seen as it comes."""
    return any(masks) or on_output is not None


class StepOutput:
    """The output of one step: its log file's descriptor and, with a pipe, what reads it."""

    __slots__ = ("_announced", "_on_output", "error", "key", "log_fd", "log_path", "masker", "read_fd")

    def __init__(
        self,
        key: str,
        child: Child,
        *,
        log_path: Path,
        masks: tuple[str, ...],
        on_output: OutputCallback | None,
    ) -> None:
        self.key = key
        self.log_fd = child.log_fd
        self.log_path = log_path
        self.read_fd = child.read_fd
        self.masker = Masker(masks) if child.read_fd is not None and any(masks) else None
        self._announced = AnnouncedMasks() if child.read_fd is not None else None
        self.error: str | None = None  # why output was lost: the log could not be written
        self._on_output = on_output

    def copy(self, *, limit: int) -> bool:
        """Copies up to `limit` chunks from the pipe to the log (masked) and the observer;
        False once the pipe has ended."""
        assert self.read_fd is not None
        for _ in range(limit):
            try:
                chunk = os.read(self.read_fd, _CHUNK)
            except BlockingIOError:
                return True
            if not chunk:
                return False
            self._emit(self.masker.feed(chunk) if self.masker else chunk)
        return True

    def end_pipe(self) -> int | None:
        """Stops reading: what the maskers held back is written. The pipe's descriptor, for the
        caller to close; None when there is none (left)."""
        if self.read_fd is None:
            return None
        self._emit(self.masker.flush() if self.masker is not None else b"", last=True)
        read_fd, self.read_fd = self.read_fd, None
        return read_fd

    def close(self) -> tuple[str, ...]:
        """Closes the log (once the pipe has ended); the values the step announced, now masked
        in it. A log the step wrote itself is read again for them, and rewritten if it has any."""
        os.close(self.log_fd)
        if self._announced is not None:
            return self._announced.values
        return mask_file(self.log_path)

    def _emit(self, data: bytes, *, last: bool = False) -> None:
        """To the observer as it comes (it reads what the step announces itself); to the log
        with what the step announced masked, its last line held back until it ends."""
        if data and self._on_output is not None:
            self._on_output(self.key, data)
        assert self._announced is not None  # through the pipe
        logged = self._announced.feed(data) if data else b""
        if last:
            logged += self._announced.flush()
        if logged and self.error is None:
            self.error = write_all(self.log_fd, logged)
