"""Warnings: the one way the core says that something went wrong and the run goes on.

The core (cache, history, reporters, the pipeline) calls `warn`; the sink in place decides how
the message looks. By default it is a line on stderr, `ci-orchestrator: warning: ...`; the CLI
or a test puts another in place for a block with `sent_to`, and `held` keeps what is said while
steps run until their output is done.

One sink for the whole process, not a context variable: the step loop runs on a thread of its
own, which would not see a context variable set by the thread that started it.
"""

from __future__ import annotations

import sys
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    Sink = Callable[[str], None]


def _print(message: str) -> None:
    from ci_orchestrator.output.workflow_commands import printable  # a warning may quote any value

    # stderr as it is now, not as it was at import: a run server's worker replaces it.
    print(printable(f"ci-orchestrator: warning: {message}"), file=sys.stderr)


_sink: Sink = _print


def warn(message: str) -> None:
    """Say `message` as a warning, to the sink in place."""
    _sink(message)


@contextmanager
def sent_to(sink: Sink) -> Iterator[None]:
    """Warnings said in the block go to `sink`; the sink before it is back after."""
    global _sink  # the process's one sink (see the module's docstring)
    before, _sink = _sink, sink
    try:
        yield
    finally:
        _sink = before


@contextmanager
def held() -> Iterator[None]:
    """Warnings said in the block are said when it ends, in the order they came: a live view
    of running steps is not broken into, and none is lost when the block raises."""
    said: list[str] = []
    try:
        with sent_to(said.append):
            yield
    finally:
        for message in said:
            warn(message)
