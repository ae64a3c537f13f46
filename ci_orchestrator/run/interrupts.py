"""SIGINT, SIGTERM and SIGHUP outside a run's supervision: the process ends quietly with 128 + the
signal's number (130, 143, 129), never with a KeyboardInterrupt traceback nor killed by it.

`install` sets this up at start-up. A signal then ends the process at once (`end`), not through
an exception: Python runs a handler wherever the main thread is, a weakref callback or the
compiler in the middle of an import among those places, and there an exception raised by the
handler is printed as "ignored" and dropped, or dropped without a word: the command would go on
as if no signal had come. Nothing outside a run needs tidying: what a command writes it puts in
place whole (a report, the cache), and a run's own processes exist only under its supervisor.

A run's `Supervisor` takes the signals over while steps run and gives them back after. Around a
run, `Held` keeps a signal waiting so that the reports are still written (a second one ends the
process at once); a signal held when the supervisor takes over interrupts the run before it
starts anything.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys

TYPE_CHECKING = False  # as `typing`'s: this module is loaded by every command, before the CLI
if TYPE_CHECKING:
    from collections.abc import Callable
    from types import FrameType, TracebackType

    # What `signal.signal` gives back: a Python handler, SIG_DFL/SIG_IGN, or None (set from C).
    Handler = Callable[[int, FrameType | None], object] | int | signal.Handlers | None

SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class _State:
    holding = False
    pending: int | None = None  # the signal held, until taken or the end of `Held`
    last_words: Callable[[int], object] | None = None


_state = _State()


def install() -> None:
    """Turns each signal into an exit with its code, and gives SIGCHLD its default back."""
    take_over(_on_signal)
    # Left ignored by a parent, it would have the kernel collect every child by itself: no
    # step's exit status could be read (and the steps would inherit it).
    if signal.getsignal(signal.SIGCHLD) is signal.SIG_IGN:
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)


def take_over(handler: Callable[[int, FrameType | None], object]) -> dict[int, Handler]:
    """`handler` for each of `SIGNALS` but an ignored one, which stays ignored (`nohup`, or a
    shell's background job) as a program that handles it would keep it; the handlers replaced."""
    return {
        signum: signal.signal(signum, handler)
        for signum in SIGNALS
        if signal.getsignal(signum) is not signal.SIG_IGN
    }


def _on_signal(signum: int, _frame: FrameType | None) -> None:
    # Imports nothing and raises nothing (see the module's docstring).
    if _state.holding and _state.pending is None:
        _state.pending = signum
        return
    end(128 + signum)


class Held:
    """While entered, a signal is held instead of ending the process (a second one still ends
    it); `signum` is the one held, if any. Used around a run and its reports."""

    def __enter__(self) -> Held:
        _state.holding = True
        _state.pending = None
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        _state.holding = False

    @property
    def signum(self) -> int | None:
        return _state.pending


def take_pending() -> int | None:
    """The signal held so far, taken over by the caller (a run's supervisor, which interrupts
    the run with it)."""
    signum, _state.pending = _state.pending, None
    return signum


def before_end(last_words: Callable[[int], object]) -> None:
    """`last_words(code)` is called as the process ends, however it ends (a run server's worker
    tells its client the exit status)."""
    _state.last_words = last_words


def end(code: int) -> None:
    """Ends the process with `code` now, after flushing stdout and stderr, without the
    interpreter's shutdown (whose work a process about to exit does not need)."""
    for stream in (sys.stdout, sys.stderr):
        # Closed, gone (None), or a flush this signal cut short: what is lost cannot be saved.
        with contextlib.suppress(OSError, ValueError, RuntimeError, AttributeError):
            stream.flush()
    if _state.last_words is not None:
        with contextlib.suppress(Exception):
            _state.last_words(code)
    os._exit(code)
