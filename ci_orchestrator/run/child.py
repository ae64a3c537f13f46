"""One child process of a step: started in its own session with stdin closed and its output in a
log file (or a pipe, to mask it), a descriptor that tells when it ends, and its exit status
collected by this process alone (`Spawned`). What it starts in turn is `process_tree`'s."""

from __future__ import annotations

import contextlib
import errno
import os
import select
import signal
import subprocess
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ci_orchestrator.run.argv import find_program, missing_program
from ci_orchestrator.run.process_specs import unpassable

if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path

_LOG_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC


class StartError(Exception):
    """A process could not start; the message says why in the user's terms."""


class Spawned:
    """A started child, whose exit status this process alone collects (`os.waitpid` on its pid),
    however it was started: `os.posix_spawn` (vfork and exec in the C library, several times
    cheaper than `subprocess`'s start) or `subprocess.Popen`, whose own waiting would take a
    status that cannot be read (the child reaped by someone else) for an exit code of 0.

    `returncode` once it has ended; `lost` instead when its status could not be collected, why in
    words: an end that cannot be known is never taken for a success."""

    __slots__ = ("_popen", "args", "lost", "pid", "returncode")

    def __init__(self, pid: int, args: tuple[str, ...], popen: subprocess.Popen[bytes] | None = None) -> None:
        self.pid = pid
        self.args = args
        self.returncode: int | None = None
        self.lost: str | None = None
        self._popen = popen  # until collected: then told so, lest it waits for the pid itself

    @property
    def ended(self) -> bool:
        """Collected (or lost): from now on its pid may belong to another process."""
        return self.returncode is not None or self.lost is not None

    def poll(self) -> int | None:
        if not self.ended:
            self._collect(os.WNOHANG)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int | None:
        """Its exit code once it has ended (None when `lost`); raises `subprocess.TimeoutExpired`
        when it still runs after `timeout` seconds."""
        if self.poll() is not None or self.ended:
            return self.returncode
        if timeout is not None:
            try:
                fd = os.pidfd_open(self.pid)
            except ProcessLookupError:  # gone without us: the waitpid below says so
                fd = None
            if fd is not None:
                try:
                    ready, _, _ = select.select([fd], [], [], timeout)
                finally:
                    os.close(fd)
                if not ready:
                    raise subprocess.TimeoutExpired(list(self.args), timeout)
        self._collect(0)
        return self.returncode

    def _collect(self, options: int) -> None:
        try:
            pid, status = os.waitpid(self.pid, options)
        except ChildProcessError as error:
            self.lost = f"its exit status was collected by something else ({error.strerror})"
        else:
            if not pid:
                return
            self.returncode = os.waitstatus_to_exitcode(status)
        if self._popen is not None:
            # Popen must not wait for the pid itself, now another process's to take: with a
            # code set, it never does. For a lost one any code will do, Popen's is not read.
            self._popen.returncode = self.returncode if self.returncode is not None else -1
            self._popen = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Child:
    """A started process: the log file's descriptor, the read end of its output pipe when its
    output passes through us, and a descriptor that becomes readable when it ends."""

    process: Spawned
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
    except (OSError, ValueError) as error:  # ValueError: a NUL or unencodable text to pass on
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


def _start(argv: tuple[str, ...], *, cwd: Path, env: Mapping[str, str], stdin: int, out_fd: int) -> Spawned:
    program = find_program(argv[0], env.get("PATH")) if _FAST else None
    if program is None or str(cwd) != os.getcwd():  # noqa: PTH109 - a plain string compare
        popen = subprocess.Popen(
            argv,
            cwd=cwd,
            env=env,
            stdin=stdin,
            stdout=out_fd,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        return Spawned(popen.pid, argv, popen)
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


def _open_log(path: Path) -> int:
    try:
        try:
            return os.open(path, _LOG_FLAGS, 0o666)
        except FileNotFoundError:
            path.parent.mkdir(parents=True, exist_ok=True)
            return os.open(path, _LOG_FLAGS, 0o666)
    except OSError as error:
        raise StartError(f"cannot write the log file {path}: {error.strerror or error}") from None


def _exit_fd(process: Spawned) -> int:
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
