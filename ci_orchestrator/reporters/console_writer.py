"""Console text written on a thread of its own, for a console that may read slowly.

A pipe into a reader that stalls (`| less`, a busy log collector) blocks whoever writes to it.
Written from the step loop, that would hold up the loop itself: no new step starts and no
timeout is enforced until the reader goes on. Here the loop only queues the text; a thread
writes it out in order. Up to `BACKLOG` characters may wait; past that the loop waits too, so
memory stays bounded whatever the steps print.
"""

from __future__ import annotations

import collections
import os
import stat
import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import TextIO

BACKLOG = 16 * 1024 * 1024  # characters queued before the writer of more text waits


def may_block(stream: TextIO) -> bool:
    """Whether writing to `stream` can wait on a reader: a pipe or a socket (a file, a terminal
    and a stream in memory take what they are given)."""
    try:
        mode = os.fstat(stream.fileno()).st_mode
    except (OSError, AttributeError, ValueError):
        return False
    return stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)


def write_out(stream: TextIO, text: str) -> None:
    """Writes and flushes `text`; what the stream's encoding cannot show is replaced. Raises
    OSError when the console is gone."""
    try:
        stream.write(text)
    except UnicodeEncodeError:
        # A console that cannot show everything a step printed still gets the rest of it.
        encoding = getattr(stream, "encoding", None) or "ascii"
        stream.write(text.encode(encoding, errors="replace").decode(encoding))
    stream.flush()


class ConsoleWriter:
    """Writes the text given to `put` to `stream`, in order, on a daemon thread; `sync` waits
    until all of it is written. `on_lost` is called (on the thread) when a write fails."""

    def __init__(self, stream: TextIO, *, on_lost: Callable[[], None]) -> None:
        self._stream = stream
        self._on_lost = on_lost
        self._queue: collections.deque[str] = collections.deque()
        self._size = 0  # characters queued or being written
        self._writing = False
        self._changed = threading.Condition()
        threading.Thread(target=self._run, name="console", daemon=True).start()

    def put(self, text: str) -> None:
        with self._changed:
            while self._size > BACKLOG:
                self._changed.wait()
            self._queue.append(text)
            self._size += len(text)
            self._changed.notify_all()

    def sync(self) -> None:
        with self._changed:
            while self._queue or self._writing:
                self._changed.wait()

    def _run(self) -> None:
        while True:
            with self._changed:
                while not self._queue:
                    self._changed.wait()
                text = "".join(self._queue)
                self._queue.clear()
                self._writing = True
            try:
                write_out(self._stream, text)
            except OSError:
                self._on_lost()
            with self._changed:
                self._size -= len(text)
                self._writing = False
                self._changed.notify_all()
