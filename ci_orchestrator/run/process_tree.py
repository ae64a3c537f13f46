"""One child process and its tree: started in its own session with stdin closed and its output
in a log file (or a pipe, to mask it), a descriptor that tells when it ends, and every process it
started, found by descent and by the marker in their environment, signalled together and watched
until gone. The only user of psutil, imported only when a tree must be stopped or searched
(it costs 10-25 ms at start-up, and most runs never need it)."""

from __future__ import annotations

import contextlib
import errno
import os
import select
import selectors
import signal
import subprocess
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ci_orchestrator.run.argv import find_program, missing_program
from ci_orchestrator.run.process_specs import unpassable

if TYPE_CHECKING:
    from collections.abc import Collection, Iterable, Mapping
    from pathlib import Path

    import psutil

RUN_ID = "CI_ORCHESTRATOR_RUN_ID"
STEP_ID = "CI_ORCHESTRATOR_STEP_ID"

_LOG_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC


class StartError(Exception):
    """A process could not start; the message says why in the user's terms."""


class Spawned:
    """A child started with `os.posix_spawn` (vfork and exec in the C library, several times
    cheaper than `subprocess`'s start): the part of `Popen`'s interface the supervisor uses."""

    def __init__(self, pid: int, args: tuple[str, ...]) -> None:
        self.pid = pid
        self.args = args
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            with contextlib.suppress(ChildProcessError):
                pid, status = os.waitpid(self.pid, os.WNOHANG)
                if pid:
                    self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if self.poll() is not None:
            return self.returncode  # type: ignore[return-value]
        if timeout is not None:
            fd = os.pidfd_open(self.pid)
            try:
                ready, _, _ = select.select([fd], [], [], timeout)
            finally:
                os.close(fd)
            if not ready:
                raise subprocess.TimeoutExpired(list(self.args), timeout)
        try:
            _, status = os.waitpid(self.pid, 0)
            self.returncode = os.waitstatus_to_exitcode(status)
        except ChildProcessError:
            self.returncode = 0 if self.returncode is None else self.returncode
        return self.returncode


@dataclass(frozen=True, slots=True, kw_only=True)
class Child:
    """A started process: the log file's descriptor, the read end of its output pipe when its
    output passes through us, and a descriptor that becomes readable when it ends."""

    process: subprocess.Popen[bytes] | Spawned
    log_fd: int
    read_fd: int | None
    exit_fd: int


def spawn(
    argv: tuple[str, ...],
    *,
    cwd: Path,
    env: Mapping[str, str],
    log_path: Path,
    stdin: int,
    piped: bool,
) -> Child:
    """Starts `argv` in its own session, stdin from `stdin`, stdout and stderr to the log file or,
    when `piped`, to a pipe. Raises `StartError` when it cannot start."""
    if not argv:
        raise StartError("nothing to run")
    log_fd = _open_log(log_path)
    # Unpiped, the child writes to the log file itself: none of its output passes through us.
    read_fd, out_fd = os.pipe() if piped else (None, log_fd)
    try:
        process = _start(argv, cwd=cwd, env=env, stdin=stdin, out_fd=out_fd)
    except (OSError, ValueError) as error:
        os.close(log_fd)
        if read_fd is not None:
            os.close(read_fd)
        reason = _explain(argv, cwd, error) if isinstance(error, OSError) else unpassable(argv, cwd, env)
        raise StartError(reason) from None
    finally:
        if read_fd is not None:
            os.close(out_fd)
    if read_fd is not None:
        os.set_blocking(read_fd, False)
    return Child(process=process, log_fd=log_fd, read_fd=read_fd, exit_fd=_exit_fd(process))


# posix_spawn cannot change the directory before exec (not in Python 3.11), nor search the
# child's own PATH: those cases, and platforms without pidfds, go through subprocess.
_FAST = hasattr(os, "posix_spawn") and hasattr(os, "pidfd_open")
_DEFAULT_SIGNALS = {signal.SIGPIPE, signal.SIGXFSZ}  # ignored by Python, as subprocess restores


def _start(
    argv: tuple[str, ...], *, cwd: Path, env: Mapping[str, str], stdin: int, out_fd: int
) -> subprocess.Popen[bytes] | Spawned:
    program = find_program(argv[0], env.get("PATH")) if _FAST else None
    if program is None or str(cwd) != os.getcwd():  # noqa: PTH109 - a plain string compare
        return subprocess.Popen(
            argv,
            cwd=cwd,
            env=env,
            stdin=stdin,
            stdout=out_fd,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    pid = os.posix_spawn(
        program,
        argv,
        env,
        file_actions=[
            (os.POSIX_SPAWN_DUP2, stdin, 0),
            (os.POSIX_SPAWN_DUP2, out_fd, 1),
            (os.POSIX_SPAWN_DUP2, out_fd, 2),
        ],
        setsid=True,
        setsigdef=_DEFAULT_SIGNALS,
    )
    return Spawned(pid, argv)


def write_all(fd: int, data: bytes) -> str | None:
    """Writes all of `data`; a full disk loses log text but must not stop the run, so the
    failure is returned (why, in words) rather than raised."""
    view = memoryview(data)
    try:
        while view:
            view = view[os.write(fd, view) :]
    except OSError as error:
        return error.strerror or str(error)
    return None


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


def _open_log(path: Path) -> int:
    try:
        try:
            return os.open(path, _LOG_FLAGS, 0o666)
        except FileNotFoundError:
            path.parent.mkdir(parents=True, exist_ok=True)
            return os.open(path, _LOG_FLAGS, 0o666)
    except OSError as error:
        raise StartError(f"cannot write the log file {path}: {error.strerror or error}") from None


def _exit_fd(process: subprocess.Popen[bytes] | Spawned) -> int:
    """A file descriptor that becomes readable when `process` ends: its pidfd, or where there
    are none (macOS), a pipe closed by a thread that waits for it."""
    if hasattr(os, "pidfd_open"):
        with contextlib.suppress(OSError):
            return os.pidfd_open(process.pid)
    read_fd, write_fd = os.pipe()

    def watch() -> None:
        process.wait()
        os.close(write_fd)

    threading.Thread(target=watch, name=f"wait-{process.pid}", daemon=True).start()
    return read_fd


def _explain(argv: tuple[str, ...], cwd_path: Path, error: OSError) -> str:
    """Why a process could not start, in the user's terms."""
    cwd = os.fspath(cwd_path)
    if error.filename is not None and os.fspath(error.filename) == cwd:
        if isinstance(error, FileNotFoundError):
            return f"working directory does not exist: {cwd}"
        if isinstance(error, NotADirectoryError):
            return f"working directory is not a directory: {cwd}"
        return f"cannot enter the working directory {cwd}: {error.strerror}"
    program = argv[0]
    if isinstance(error, FileNotFoundError):
        if os.sep in program and (cwd_path / program).exists():
            return f"cannot run {program}: the interpreter on its #! line is not installed"
        return missing_program(program)
    if isinstance(error, PermissionError):
        return f"cannot run {program}: permission denied (is it executable?)"
    if error.errno == errno.ENOEXEC:
        return f"cannot run {program}: not an executable file (does it start with a #! line?)"
    return f"cannot run {program}: {error.strerror or error}"
