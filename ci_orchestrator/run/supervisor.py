"""One process per step: its own session, stdin closed, output straight to a log file, a deadline,
and the whole process tree stopped (SIGTERM, then SIGKILL) on timeout or cancellation.

`Supervisor` runs many such processes from one thread and reports what happens as events from
`wait()`, which blocks in `select` on pidfds and pipes until something happens or the nearest
deadline passes: no sleep loops. Signals reach it through a pipe, so that thread need not be the
main one; so does the end of work that thread handed to another (`expect`, `done`), which keeps
slow work such as storing a large result from holding up the deadlines and signals of the rest.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import signal
import subprocess
import threading
import time
from datetime import UTC, datetime
from enum import Enum
from typing import TYPE_CHECKING

from ci_orchestrator.run.child import StartError, spawn
from ci_orchestrator.run.events import Event, Exited, ProcessSpec, Signalled, WorkDone
from ci_orchestrator.run.interrupts import SIGNALS, take_over, take_pending
from ci_orchestrator.run.orphans import adopting, found_before, has_children, leftovers_possible
from ci_orchestrator.run.process_tree import Marker, Tree, terminate_leftovers
from ci_orchestrator.run.step_output import StepOutput, needs_pipe

if TYPE_CHECKING:
    from types import FrameType, TracebackType

    from ci_orchestrator.run.child import Child
    from ci_orchestrator.run.interrupts import Handler
    from ci_orchestrator.run.step_output import OutputCallback

TIMEOUT_EXIT_CODE = 124
MAX_GRACE = 5.0
_CHUNK = 1 << 16
_DRAIN_LIMIT = 256  # chunks read after the leader exits: a daemon that keeps writing is cut off


class _Stop(Enum):
    TIMEOUT = "timeout"
    CANCEL = "cancel"


class _Source(Enum):
    WAKE = "wake"  # the pipe Python writes the number of each signal to
    EXIT = "exit"  # a leader's pidfd
    OUTPUT = "output"  # a leader's output pipe
    MEMBER = "member"  # the pidfd of another process of a stopping tree


class _Step:
    """The mutable bookkeeping of one running process (internal to the supervisor)."""

    __slots__ = (
        "deadline",
        "exit_fd",
        "kill_at",
        "killed",
        "member_fds",
        "output",
        "process",
        "spec",
        "started",
        "stop",
        "tree",
    )

    def __init__(self, spec: ProcessSpec, child: Child, output: StepOutput, started: datetime) -> None:
        self.spec = spec
        self.process = child.process
        self.started = started
        self.deadline = None if spec.timeout is None else time.monotonic() + spec.timeout
        self.output = output
        self.exit_fd: int | None = child.exit_fd
        self.member_fds: set[int] = set()
        self.stop: _Stop | None = None
        self.kill_at: float | None = None
        self.killed = False
        self.tree = Tree(child.process.pid, Marker.of(spec.env))

    @property
    def reaped(self) -> bool:
        return self.process.ended


class Supervisor:
    """Starts processes and reports their ends (`Exited`) and this process's signals (`Signalled`).

    Use it from one thread. Entered as a context manager in the main thread, it also turns
    SIGINT, SIGTERM and SIGHUP into `Signalled` events (the previous handlers come back on exit),
    whichever thread then calls `wait()`. Closing it kills whatever still runs.
    """

    def __init__(self, *, grace: float = MAX_GRACE, on_output: OutputCallback | None = None) -> None:
        self.grace = min(max(grace, 0.0), MAX_GRACE)
        self._on_output = on_output
        self._steps: dict[str, _Step] = {}
        self._events: list[Event] = []
        self._signals: list[int] = []
        self._previous: dict[int, Handler] = {}
        self._selector = selectors.DefaultSelector()
        self._wake_read, self._wake_write = os.pipe()
        os.set_blocking(self._wake_read, False)
        os.set_blocking(self._wake_write, False)
        self._selector.register(self._wake_read, selectors.EVENT_READ, (_Source.WAKE, ""))
        self._devnull = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)  # every child's stdin
        self._closed = False
        self._expected: set[str] = set()  # work on other threads whose end `wait()` waits for
        self._done: list[str] = []  # ended there, not yet reported: written by those threads
        self._done_lock = threading.Lock()  # guards `_done` and, against `done`, the closing pipe

    # -- context ------------------------------------------------------------------------------

    def __enter__(self) -> Supervisor:
        if threading.current_thread() is threading.main_thread():
            # From here on each signal is written to the pipe by its Python-level handler (which
            # runs in the main thread, even one waiting for the run's thread), and `wait()`
            # reads it there, on any thread. One that came before, held for the run, is taken
            # next: no signal can fall between the two handlers.
            self._previous = take_over(self._to_the_pipe)
            if (held := take_pending()) is not None:
                self._signals.append(held)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Kills every process still running, then lets go of all resources. Idempotent.

        A signal that came after the last `wait()` is not lost: it is raised again once the
        previous handlers are back, for them to handle (the run's reports are then still written,
        and the process ends with its code)."""
        if self._closed:
            return
        self.kill_all_now()
        for step in list(self._steps.values()):
            with contextlib.suppress(subprocess.TimeoutExpired):
                step.process.wait(timeout=MAX_GRACE)
            # A member SIGKILLed with its group is still ending when its leader is collected:
            # a tree is reported only once it has ended, here as when a step ends on its own.
            step.tree.wait_gone(MAX_GRACE)
            self._finish(step)
        self._events.clear()
        for signum, handler in self._previous.items():
            # None: a handler not set from Python, which cannot be put back; the default is closest.
            signal.signal(signum, signal.SIG_DFL if handler is None else handler)
        self._previous.clear()
        self._read_signals()
        unread, self._signals = self._signals, []
        self._selector.close()
        with self._done_lock:  # a late `done` must not write to a closed (or reused) descriptor
            for fd in (self._wake_read, self._wake_write, self._devnull):
                os.close(fd)
            self._closed = True
        for signum in unread:
            signal.raise_signal(signum)

    # -- starting -----------------------------------------------------------------------------

    @property
    def running(self) -> int:
        """How many processes have started and not yet been reported."""
        return len(self._steps)

    def start(self, spec: ProcessSpec) -> None:
        """Starts `spec`'s process. A process that cannot start is reported by `wait()` as an
        `Exited` with `error` set; this never raises for it."""
        if spec.key in self._steps:
            raise ValueError(f"{spec.key!r} is already running")
        started = _now()
        error, child = spec.error, None
        if error is None:
            try:
                child = spawn(
                    spec.argv,
                    cwd=spec.cwd,
                    env=spec.env,
                    log_path=spec.log_path,
                    stdin=self._devnull,
                    piped=needs_pipe(spec.masks, self._on_output),
                )
            except StartError as failure:
                error = str(failure)
        if child is None:
            self._events.append(
                Exited(key=spec.key, exit_code=None, error=error, started=started, finished=_now())
            )
            return
        output = StepOutput(
            spec.key, child, log_path=spec.log_path, masks=spec.masks, on_output=self._on_output
        )
        self._steps[spec.key] = _Step(spec, child, output, started)
        self._selector.register(child.exit_fd, selectors.EVENT_READ, (_Source.EXIT, spec.key))
        if child.read_fd is not None:
            self._selector.register(child.read_fd, selectors.EVENT_READ, (_Source.OUTPUT, spec.key))

    # -- work on other threads -----------------------------------------------------------------

    def expect(self, key: str) -> None:
        """`wait()` also waits for `done(key)`, and reports it as `WorkDone`."""
        self._expected.add(key)

    def done(self, key: str) -> None:
        """The work `expect`ed for `key` is over. Any thread may call this; it wakes `wait()`."""
        with self._done_lock:
            if self._closed:
                return
            self._done.append(key)
            with contextlib.suppress(BlockingIOError):  # a full pipe wakes `wait()` as well
                os.write(self._wake_write, b"\0")  # no signal's number: read as a wake-up alone

    # -- stopping -----------------------------------------------------------------------------

    def cancel_all(self) -> None:
        """Stops every tree still running (TERM, then KILL after the grace); `wait()` reports
        them cancelled."""
        for step in list(self._steps.values()):
            if step.stop is None:
                self._terminate(step, _Stop.CANCEL)

    def cancel(self, key: str) -> None:
        """Stops one running tree as `cancel_all` does."""
        step = self._steps.get(key)
        if step is not None and step.stop is None:
            self._terminate(step, _Stop.CANCEL)

    def kill_all_now(self) -> None:
        """SIGKILL every tree at once (a second Ctrl-C); `wait()` reports them cancelled."""
        for step in list(self._steps.values()):
            if step.stop is None:
                step.stop = _Stop.CANCEL
            if not step.killed:
                self._kill(step)

    def reap_leftovers(self, run_id: str) -> int:
        """Stops what the steps left behind (a daemon of a passing step, the grandchild of a
        timed-out one that left its session): every process still carrying this run's id and,
        in a process that adopts orphans, every child it still has, marked or not, but those it
        had before the run (`orphans.found_before`). Returns how many there were. Meant for the
        end of a run, when no step runs."""
        if not leftovers_possible():
            return 0
        adopted = adopting()
        found = terminate_leftovers(
            Marker(run_id=run_id), adopted=adopted, grace=self.grace, spared=found_before()
        )
        if adopted:
            has_children()  # collects the exits of the orphans just stopped: none else waits for them
        return found

    def _terminate(self, step: _Step, reason: _Stop) -> None:
        step.stop = reason
        # The snapshot is taken before signalling: a child killed first would orphan its own.
        step.tree.refresh(leader_reaped=step.reaped)
        step.tree.signal(signal.SIGTERM, leader_reaped=step.reaped)
        step.kill_at = time.monotonic() + self.grace
        if self.grace <= 0:
            self._kill(step)

    def _kill(self, step: _Step) -> None:
        step.kill_at = None
        step.killed = True
        step.tree.refresh(leader_reaped=step.reaped)
        step.tree.signal(signal.SIGKILL, leader_reaped=step.reaped)
        if step.reaped:
            step.tree.wait_gone(1.0)
            self._finish(step)
        # Otherwise the leader's exit, which SIGKILL makes imminent, finishes the step.

    # -- waiting ------------------------------------------------------------------------------

    def wait(self) -> list[Event]:
        """Blocks until at least one event, and returns all there are (signals first).

        Returns an empty list at once when nothing runs, nothing is expected and nothing is pending.
        """
        while not self._events and not self._signals and (self._steps or self._expected):
            for key, _ in self._selector.select(self._next_timeout()):
                source, name = key.data
                self._dispatch(source, name, key.fd)
            self._check_deadlines()
        if not self._steps:  # nothing was waited for: a signal may still sit in the pipe
            self._read_signals()
        events: list[Event] = []
        while self._signals:
            events.append(Signalled(signum=self._signals.pop(0)))
        events.extend(self._events)
        self._events.clear()
        return events

    def _next_timeout(self) -> float | None:
        times = [step.deadline if step.stop is None else step.kill_at for step in self._steps.values()]
        pending = [moment for moment in times if moment is not None]
        return max(min(pending) - time.monotonic(), 0.0) if pending else None

    def _check_deadlines(self) -> None:
        now = time.monotonic()
        for step in list(self._steps.values()):
            if step.stop is None and step.deadline is not None and now >= step.deadline:
                self._terminate(step, _Stop.TIMEOUT)
            elif step.kill_at is not None and now >= step.kill_at:
                self._kill(step)

    def _dispatch(self, source: _Source, name: str, fd: int) -> None:
        if source is _Source.WAKE:
            self._read_signals()
            return
        step = self._steps.get(name)
        if step is None:  # finished earlier in this round
            return
        if source is _Source.OUTPUT:
            self._copy_output(step, limit=1)
        elif source is _Source.EXIT:
            self._leader_exited(step)
        else:
            self._unwatch(fd)
            step.member_fds.discard(fd)
            if not step.member_fds:
                self._finish(step)

    def _leader_exited(self, step: _Step) -> None:
        if step.exit_fd is not None:
            self._unwatch(step.exit_fd)
            step.exit_fd = None
        step.process.wait()  # at once: its pidfd says it ended
        if step.stop is None:
            self._finish(step)
            return
        if step.killed:
            step.tree.wait_gone(1.0)  # SIGKILL went to all at once; the leader may have gone first
            self._finish(step)
            return
        # A stopping tree whose leader went first: the step ends when the rest is gone too,
        # or at the latest when the grace runs out and SIGKILL follows.
        step.tree.refresh(leader_reaped=True)
        fds, complete = step.tree.watch()
        for fd in fds:
            self._selector.register(fd, selectors.EVENT_READ, (_Source.MEMBER, step.spec.key))
        step.member_fds.update(fds)
        if not fds and complete:
            self._finish(step)

    def _finish(self, step: _Step) -> None:
        del self._steps[step.spec.key]
        for fd in (step.exit_fd, *step.member_fds):
            if fd is not None:
                self._unwatch(fd)
        step.exit_fd = None
        step.member_fds.clear()
        if step.output.read_fd is not None:
            self._copy_output(step, limit=_DRAIN_LIMIT)
            self._close_output(step)
        masks = step.output.close()
        timed_out = step.stop is _Stop.TIMEOUT
        code = step.process.returncode
        # An end whose status could not be read is a failure, never a pass (not even when the
        # step was being stopped anyway: a timeout or a cancellation says so by itself).
        lost = step.process.lost if step.stop is None else None
        self._events.append(
            Exited(
                key=step.spec.key,
                exit_code=TIMEOUT_EXIT_CODE if timed_out else _exit_code(code),
                timed_out=timed_out,
                cancelled=step.stop is _Stop.CANCEL,
                error=lost,
                log_error=step.output.error,
                masks=masks,
                started=step.started,
                finished=_now(),
            )
        )

    # -- output -------------------------------------------------------------------------------

    def _copy_output(self, step: _Step, *, limit: int) -> None:
        """Copies up to `limit` chunks from the step's pipe to its log (masked) and observer."""
        if not step.output.copy(limit=limit):
            self._close_output(step)

    def _close_output(self, step: _Step) -> None:
        read_fd = step.output.end_pipe()
        if read_fd is not None:
            self._unwatch(read_fd)

    def _unwatch(self, fd: int) -> None:
        with contextlib.suppress(KeyError, ValueError):
            self._selector.unregister(fd)
        os.close(fd)

    def _to_the_pipe(self, signum: int, _frame: FrameType | None) -> None:
        """The handler of the run's signals while steps run: it only tells `wait()`."""
        with contextlib.suppress(OSError):  # a full pipe: 64 KiB of signals unread already
            os.write(self._wake_write, bytes([signum]))

    def _read_signals(self) -> None:
        """Takes the signals from the wake pipe, and the work reported `done` meanwhile."""
        with contextlib.suppress(BlockingIOError):
            self._signals.extend(number for number in os.read(self._wake_read, _CHUNK) if number in SIGNALS)
        with self._done_lock:
            done, self._done = self._done, []
        for key in done:
            self._expected.discard(key)
            self._events.append(WorkDone(key=key))


def _now() -> datetime:
    return datetime.now(UTC)


def _exit_code(returncode: int | None) -> int | None:
    if returncode is None or returncode >= 0:
        return returncode
    return 128 - returncode  # the shell's way to tell a death by signal N: 128+N
