"""SIGINT, SIGTERM and SIGHUP outside a run's supervision: the process ends quietly with 128 + the
signal's number (130, 143, 129), never with a KeyboardInterrupt traceback nor killed by it.

`install` sets this up first thing at start-up, where a signal ends the process where it is
(`SystemExit`, so `finally` blocks still run). A run's `Supervisor` takes the signals over while
steps run and gives them back after. Around a run, `Held` keeps a signal waiting so that the
reports are still written (a second one ends the process at once); a signal held when the
supervisor takes over interrupts the run before it starts anything. Once the command is done,
`finishing` ends the process on the spot: an exception raised while the interpreter shuts down
would be printed, and from some point of that shutdown a signal would kill it.
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
    finishing = False


_state = _State()


def install() -> None:
    """Turns each signal into an exit with its code."""
    take_over(_on_signal)


def take_over(handler: Callable[[int, FrameType | None], object]) -> dict[int, Handler]:
    """`handler` for each of `SIGNALS` but an ignored one, which stays ignored (`nohup`, or a
    shell's background job) as a program that handles it would keep it; the handlers replaced."""
    return {
        signum: signal.signal(signum, handler)
        for signum in SIGNALS
        if signal.getsignal(signum) is not signal.SIG_IGN
    }


def _on_signal(signum: int, _frame: FrameType | None) -> None:
    from ci_orchestrator.errors import signal_exit_code

    if _state.finishing:
        end(signal_exit_code(signum))
    if _state.holding and _state.pending is None:
        _state.pending = signum
        return
    raise SystemExit(signal_exit_code(signum))


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


def finishing() -> None:
    """From now on a signal ends the process at once with its code, output flushed."""
    _state.finishing = True


def end(code: int) -> None:
    """Ends the process with `code` now, after flushing stdout and stderr, without the
    interpreter's shutdown (whose work a process about to exit does not need)."""
    for stream in (sys.stdout, sys.stderr):
        # Closed, gone (None), or a flush this signal cut short: what is lost cannot be saved.
        with contextlib.suppress(OSError, ValueError, RuntimeError, AttributeError):
            stream.flush()
    os._exit(code)
