"""The process tree of a step (its child is `child`'s): every process it started, found by descent
and by the marker in their environment, signalled together and watched until gone. The only user
of psutil, imported only when a tree must be stopped or searched (it costs 10-25 ms at start-up,
and most runs never need it)."""

from __future__ import annotations

import contextlib
import os
import selectors
import signal
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Collection, Iterable, Mapping

    import psutil

RUN_ID = "CI_ORCHESTRATOR_RUN_ID"
STEP_ID = "CI_ORCHESTRATOR_STEP_ID"

_LOG_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC


@dataclass(frozen=True, slots=True, kw_only=True)
class Marker:
    """The environment values that tag a step's processes, even those that left its session.

    With no `step_id` it stands for every step of the run.
    """

    run_id: str
    step_id: str | None = None

    @classmethod
    def of(cls, env: Mapping[str, str]) -> Marker | None:
        """The marker of a step given its environment; None when the environment has none."""
        run_id = env.get(RUN_ID)
        step_id = env.get(STEP_ID)
        if not run_id or step_id is None:
            return None
        return cls(run_id=run_id, step_id=step_id)

    def matches(self, env: Mapping[str, str]) -> bool:
        if env.get(RUN_ID) != self.run_id:
            return False
        return self.step_id is None or env.get(STEP_ID) == self.step_id


def _gone() -> tuple[type[Exception], ...]:
    """What psutil raises for a process that ended or is not ours to look at."""
    import psutil

    return (psutil.NoSuchProcess, psutil.AccessDenied)


def marked_processes(marker: Marker) -> list[psutil.Process]:
    """Every live process (but this one) whose environment carries `marker`."""
    import psutil

    found = []
    own = os.getpid()
    for process in psutil.process_iter(["environ"], ad_value=None):
        environ = process.info["environ"]
        if process.pid != own and environ and marker.matches(environ) and is_alive(process):
            found.append(process)
    return found


def is_alive(process: psutil.Process) -> bool:
    """Running and not a zombie: an orphaned zombie waits for a reaper, it runs nothing."""
    import psutil

    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except _gone():
        return False


class Tree:
    """The processes of one step but its leader (the leader is the caller's child, signalled
    through its process group and reaped by the caller). Grows with each `refresh`."""

    __slots__ = ("leader", "marker", "members")

    def __init__(self, leader: int, marker: Marker | None) -> None:
        self.leader = leader
        self.marker = marker
        self.members: dict[int, psutil.Process] = {}

    def refresh(self, *, leader_reaped: bool) -> None:
        """Adds the leader's descendants (while it can still be asked) and the marked processes."""
        import psutil

        found: list[psutil.Process] = []
        if not leader_reaped:
            with contextlib.suppress(*_gone()):
                found.extend(psutil.Process(self.leader).children(recursive=True))
        if self.marker is not None:
            found.extend(marked_processes(self.marker))
        for process in found:
            if process.pid != self.leader:
                self.members.setdefault(process.pid, process)

    def signal(self, signum: int, *, leader_reaped: bool) -> None:
        """Sends `signum` to the leader's process group and to every live member.

        The group is signalled only while the leader is unreaped: until then its pid, and so the
        group id, cannot be taken by an unrelated process. psutil checks each member's identity.
        """
        if not leader_reaped:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.leader, signum)
        for process in self.alive():
            with contextlib.suppress(*_gone()):
                process.send_signal(signum)

    def alive(self) -> list[psutil.Process]:
        return [process for process in self.members.values() if is_alive(process)]

    def watch(self) -> tuple[list[int], bool]:
        """pidfds of the live members, and whether every live member got one."""
        fds = []
        complete = True
        for process in self.alive():
            fd = open_pidfd(process)
            if fd is not None:
                fds.append(fd)
            elif is_alive(process):
                complete = False
        return fds, complete

    def wait_gone(self, timeout: float) -> bool:
        """Waits up to `timeout` seconds for every member to end; True when they all did."""
        return not wait_gone(self.alive(), timeout)


def wait_gone(processes: Iterable[psutil.Process], timeout: float) -> list[psutil.Process]:
    """Waits up to `timeout` seconds for `processes` to end; returns those still alive.

    An ended process counts as gone at once, even before its reaper collects the zombie (some
    container init processes take a second to do so).
    """
    import psutil

    alive = [process for process in processes if is_alive(process)]
    fds = {fd: process for process in alive if (fd := open_pidfd(process)) is not None}
    if len(fds) < len(alive):  # no pidfds here: psutil polls
        psutil.wait_procs([process for process in alive if process not in fds.values()], timeout=timeout)
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as selector:
        for fd in fds:
            selector.register(fd, selectors.EVENT_READ)
        while selector.get_map() and (remaining := deadline - time.monotonic()) > 0:
            for key, _ in selector.select(remaining):
                selector.unregister(key.fd)
    for fd in fds:
        os.close(fd)
    return [process for process in alive if is_alive(process)]


def open_pidfd(process: psutil.Process) -> int | None:
    """A pidfd that becomes readable when `process` ends; None where there are no pidfds or the
    process is already gone."""
    if not hasattr(os, "pidfd_open"):
        return None
    try:
        fd = os.pidfd_open(process.pid)
    except OSError:
        return None
    if not is_alive(process):  # the pid may have been reused before the fd was opened
        os.close(fd)
        return None
    return fd


def terminate_leftovers(
    marker: Marker, *, adopted: bool, grace: float, spared: Collection[int] = frozenset()
) -> int:
    """Stops what the steps of a run left behind, once they have all ended: every process
    carrying `marker` and, when this process adopts orphans (`adopted`), every process below it,
    whatever its environment, except the `spared` pids and what is below them (processes this
    one had before the run: not the steps'). SIGTERM, then SIGKILL after `grace` seconds;
    orphans made while stopping (a daemon's children) are stopped in turn. Returns how many
    were found."""
    found = [process for process in marked_processes(marker) if process.pid not in spared]
    if adopted:
        found = _with_descendants(found, spared)
    total = 0
    for _ in range(_ROUNDS):
        if not found:
            break
        total += _terminate(found, grace=grace)
        grace = 0  # what is left now was made while stopping: no second grace
        found = _with_descendants([], spared) if adopted else []
    return total


_ROUNDS = 3


def _with_descendants(found: list[psutil.Process], spared: Collection[int]) -> list[psutil.Process]:
    """`found` and every live process below this one but the `spared` and theirs, each once."""
    import psutil

    processes = {process.pid: process for process in found}
    waiting = [psutil.Process()]
    while waiting:
        with contextlib.suppress(*_gone()):
            for process in waiting.pop().children():
                if process.pid in spared:
                    continue
                waiting.append(process)
                if is_alive(process):
                    processes.setdefault(process.pid, process)
    return list(processes.values())


def terminate_runs(run_ids: Collection[str], *, grace: float) -> int:
    """Stops every process that carries one of these run ids, as `terminate_leftovers` does for
    one marker, with a single look at the process table. Returns how many were found."""
    import psutil

    wanted = set(run_ids)
    own = os.getpid()
    found = [
        process
        for process in psutil.process_iter(["environ"], ad_value=None)
        if process.pid != own and (process.info["environ"] or {}).get(RUN_ID) in wanted and is_alive(process)
    ]
    return _terminate(found, grace=grace)


def _terminate(found: list[psutil.Process], *, grace: float) -> int:
    """SIGTERM to each, SIGKILL to what is left after `grace` seconds; returns how many."""
    for process in found:
        with contextlib.suppress(*_gone()):
            process.send_signal(signal.SIGTERM)
    survivors = wait_gone(found, grace)
    for process in survivors:
        with contextlib.suppress(*_gone()):
            process.kill()
    wait_gone(survivors, 1.0)
    return len(found)


def io_priority(pid: int) -> tuple[int, int] | None:
    """Process `pid`'s I/O priority (`ionice`): its class and level; None when it cannot be read.
    Here since psutil is the one to ask: the interpreter has no call for it."""
    import psutil

    try:
        ioclass, value = psutil.Process(pid).ionice()
    except (psutil.Error, AttributeError, OSError):  # gone, not ours, or no such thing here
        return None
    return int(ioclass), int(value)


def take_io_priority(priority: tuple[int, int]) -> bool:
    """Gives this process the I/O priority `priority` (as `io_priority` gives it); False when it
    may not have it (only a real-time one takes a privilege, see `ioprio_set(2)`)."""
    import psutil

    ioclass, value = priority
    level = value if ioclass in (psutil.IOPRIO_CLASS_RT, psutil.IOPRIO_CLASS_BE) else None
    try:
        psutil.Process().ionice(ioclass, level)
    except (psutil.Error, OSError, ValueError):
        return False
    return True
