"""What a running step prints, on its way to its log file: straight from the process (the file
is its stdout and stderr), or, when it must be masked or watched as it comes, through a pipe
read here, masked, written to the log and passed to the observer."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, TypeAlias

from ci_orchestrator.output.masking import Masker
from ci_orchestrator.run.child import write_all

if TYPE_CHECKING:
    from collections.abc import Callable

    from ci_orchestrator.run.child import Child

    OutputCallback: TypeAlias = Callable[[str, bytes], None]

_CHUNK = 1 << 16


def needs_pipe(masks: tuple[str, ...], on_output: OutputCallback | None) -> bool:
    """Whether a step's output must come through the tool: to be masked, or seen as it comes."""
    return any(masks) or on_output is not None


class StepOutput:
    """The output of one step: its log file's descriptor and, with a pipe, what reads it."""

    __slots__ = ("_on_output", "error", "key", "log_fd", "masker", "read_fd")

    def __init__(
        self, key: str, child: Child, *, masks: tuple[str, ...], on_output: OutputCallback | None
    ) -> None:
        self.key = key
        self.log_fd = child.log_fd
        self.read_fd = child.read_fd
        self.masker = Masker(masks) if child.read_fd is not None and any(masks) else None
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
        """Stops reading: what the masker held back is written. The pipe's descriptor, for the
        caller to close; None when there is none (left)."""
        if self.read_fd is None:
            return None
        if self.masker is not None:
            self._emit(self.masker.flush())
        read_fd, self.read_fd = self.read_fd, None
        return read_fd

    def _emit(self, data: bytes) -> None:
        if not data:
            return
        if self.error is None:
            self.error = write_all(self.log_fd, data)
        if self._on_output is not None:
            self._on_output(self.key, data)
