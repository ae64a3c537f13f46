"""The client side of a run server: hand this command to a server of its kind and exit as its
worker does, passing on the signals this process gets; or, with no server yet, start one in the
background and let the command run here."""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import sys

# The C module under `socket`: its Python wrapper costs every command 3 ms.
from _socket import AF_UNIX, SOCK_STREAM
from _socket import socket as unix_socket

from ci_orchestrator.server import identity, runtime
from ci_orchestrator.server.protocol import Channel

TYPE_CHECKING = False  # as `typing`'s, without importing it (4 ms) on every command's start-up
if TYPE_CHECKING:
    from types import FrameType

    from ci_orchestrator.run.interrupts import Handler
    from ci_orchestrator.server.protocol import RunRequest

FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2)
"""Signals passed on to the worker: what a terminal, a CI runner or `timeout` would send."""

# Started with `-c` so that the server's module path is this client's, not its own folder's.
_BOOT = (
    "import sys; sys.path[:] = {path!r}; "
    "from ci_orchestrator.server.daemon import serve; serve({folder!r}, {key!r})"
)


def run_on_server(argv: list[str]) -> int | None:
    """The exit code of `argv` run by a server; None when no server took it (run it here)."""
    if argv[1:2] == ["server"] or not runtime.wanted(os.environ) or not _streams_open():
        return None  # `server status` and `server stop` neither use a server nor start one
    try:
        cwd = os.getcwd()
    except OSError:
        return None  # a folder since removed: the command says so itself
    folder = runtime.folder(os.environ)
    if folder is None:
        return None
    key = identity.key()
    connection = unix_socket(AF_UNIX, SOCK_STREAM)
    try:
        runtime.at_socket(os.path.join(folder, f"{key}.sock"), connection.connect)
    except OSError:
        connection.close()
        _start_server(folder, key)
        return None
    try:
        return _run(Channel(connection), argv, cwd=cwd)
    finally:
        connection.close()


def _run(channel: Channel, argv: list[str], *, cwd: str) -> int | None:
    pending: list[int] = []
    worker: list[int] = []  # its pidfd, once started

    def forward(signum: int, _frame: FrameType | None) -> None:
        if worker:
            _signal(worker[0], signum)
        else:
            pending.append(signum)

    # All of them, not only those passed on: a step inherits what is ignored (`nohup`'s SIGHUP,
    # the SIGINT and SIGQUIT of a shell's background job).
    ignored = [int(signum) for signum in signal.valid_signals() if signal.getsignal(signum) is signal.SIG_IGN]
    previous = {signum: signal.signal(signum, forward) for signum in FORWARDED}
    blocked = sorted(int(signum) for signum in signal.pthread_sigmask(signal.SIG_BLOCK, []))
    umask = os.umask(0o022)
    os.umask(umask)
    request: RunRequest = {
        "kind": "run",
        "argv": argv,
        "cwd": cwd,
        "env": dict(os.environ),
        "umask": umask,
        "ignored": ignored,
        "blocked": blocked,
    }
    try:
        channel.send(request, fds=(0, 1, 2))
        started, fds = channel.receive(max_fds=1)
    except OSError:
        started, fds = None, []
    if not isinstance(started, dict) or not fds:
        # Nothing was started: the command runs here, as if no server were there.
        for fd in fds:
            os.close(fd)
        _restore(previous)
        if pending:
            from ci_orchestrator.errors import signal_exit_code

            return signal_exit_code(pending[0])
        return None
    worker.append(fds[0])
    for signum in pending:
        _signal(worker[0], signum)
    try:
        finished, _ = channel.receive()
    except OSError:
        finished = None
    _restore(previous)
    if not isinstance(finished, dict):
        return _lost(worker[0])
    status = int(finished["status"])
    if status < 0:  # the worker was killed by a signal: so is this process
        signal.signal(-status, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, [-status])
        os.kill(os.getpid(), -status)
        return 128 - status  # as a shell reports it, should the signal not end this process
    return status


def _signal(pidfd: int, signum: int) -> None:
    """Pass `signum` on to the worker, unless it is gone already (its status is on its way)."""
    with contextlib.suppress(ProcessLookupError):
        signal.pidfd_send_signal(pidfd, signum)


def _lost(pidfd: int) -> int:
    """The server went away before it told how the worker ended: wait for the worker's end."""
    import select

    select.select([pidfd], [], [])
    print(
        "ci-orchestrator: the run server stopped before the command ended: exit status unknown",
        file=sys.stderr,
    )
    return 1


def _start_server(folder: str, key: str) -> None:
    """A server for `key`, started in the background unless one is starting already (it holds
    its lock from the start) or could not be started in this process's context before."""
    lock_path = os.path.join(folder, f"{key}.lock")
    if os.path.exists(os.path.join(folder, f"{key}.refused")):
        return
    try:
        lock = os.open(lock_path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except OSError:
        return
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return
    finally:
        os.close(lock)
    boot = _BOOT.format(path=sys.path, folder=folder, key=key)
    null = os.devnull
    actions = [(os.POSIX_SPAWN_OPEN, fd, null, os.O_RDWR, 0) for fd in (0, 1, 2)]
    try:
        os.posix_spawn(
            sys.executable,
            [sys.executable, *_interpreter_options(), "-c", boot],
            os.environ,
            file_actions=actions,
            setsid=True,
        )
    except OSError:
        return


def _interpreter_options() -> list[str]:
    """The options this interpreter was started with (`-X dev`, `-W error`, `-O`), for the server's."""
    options = []
    args = iter(sys.orig_argv[1:])
    for arg in args:
        if arg in ("-W", "-X"):
            options += [arg, next(args, "")]
        elif arg.startswith(("-W", "-X")) or (arg.startswith("-") and arg[1:2] not in ("", "-", "m", "c")):
            options.append(arg)
        else:
            break
    return options


def _streams_open() -> bool:
    try:
        for fd in (0, 1, 2):
            os.fstat(fd)
    except OSError:
        return False
    return True


def _restore(previous: dict[signal.Signals, Handler]) -> None:
    for signum, handler in previous.items():
        signal.signal(signum, handler)
