"""The client side of a run server: hand this command to a server of its kind and exit as its
worker does, passing on the signals this process gets; or, with no server yet, start one in the
background and let the command run here.

The client waits for the server a limited time only (`ANSWER_SECONDS`): a server that does not
answer (stopped, or stuck) has the command run here, and SIGINT, SIGTERM or SIGHUP meanwhile
ends this process at once with its code, as it would the command run here."""

from __future__ import annotations

import contextlib
import fcntl
import os
import select
import signal
import sys
import time

# The C module under `socket`: its Python wrapper costs every command 3 ms.
from _socket import AF_UNIX, SOCK_STREAM
from _socket import socket as unix_socket

from ci_orchestrator.server import identity, runtime
from ci_orchestrator.server.protocol import GO, Channel

TYPE_CHECKING = False  # as `typing`'s, without importing it (4 ms) on every command's start-up
if TYPE_CHECKING:
    from types import FrameType

    from ci_orchestrator.run.interrupts import Handler
    from ci_orchestrator.server.protocol import RunRequest

FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2)
"""Signals passed on to the worker: what a terminal, a CI runner or `timeout` would send."""

_ENDING = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
"""Those that end the command with 128 + their number (see `run.interrupts`)."""

ANSWER_SECONDS = 5.0
"""How long the client waits for the server to take its command (a few milliseconds as a rule),
and for the status of a worker that has ended."""

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
    # A server's socket whose backlog is full refuses at once rather than have us wait.
    connection.settimeout(ANSWER_SECONDS)
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
    worker: list[int] = []  # its pidfd, once it is the worker's to run the command

    def forward(signum: int, _frame: FrameType | None) -> None:
        if worker:
            _signal(worker[0], signum)
        elif signum in _ENDING:
            # Nothing runs yet: the command ends here with its code, as it would have by itself.
            # A worker that was forked meanwhile sees its pipe close unwritten, and ends too.
            from ci_orchestrator.run.interrupts import end

            end(128 + signum)
        else:
            pending.append(signum)

    # All of them, not only those passed on: a step inherits what is ignored (`nohup`'s SIGHUP,
    # the SIGINT and SIGQUIT of a shell's background job).
    ignored = [int(signum) for signum in signal.valid_signals() if signal.getsignal(signum) is signal.SIG_IGN]
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
    previous = {signum: signal.signal(signum, forward) for signum in FORWARDED if signum not in ignored}
    fds: list[int] = []
    try:
        try:
            deadline = time.monotonic() + ANSWER_SECONDS
            channel.send(request)  # within the connection's own time limit, the same
            started, fds = channel.receive(max_fds=2, deadline=deadline)
        except TimeoutError:
            _say(f"the run server did not answer in {ANSWER_SECONDS:g} s: the command runs here")
            started = None
        except OSError:
            started = None
        if not isinstance(started, dict) or len(fds) != 2:
            return None  # nothing was started: the command runs here, as if no server were there
        pidfd, go_fd = fds
        fds = []
        go = unix_socket(AF_UNIX, SOCK_STREAM, 0, go_fd)  # which closes it from now on
        # From here on the worker runs the command: a signal is passed on, no longer ends this.
        worker.append(pidfd)
        try:
            Channel(go).send(GO, fds=(0, 1, 2))
        except OSError:  # the worker is gone already; its status says how it ended
            pass
        finally:
            go.close()
        for signum in pending:
            _signal(pidfd, signum)
        channel.sock.settimeout(None)
        return _finished(channel, pidfd)
    finally:
        for fd in fds:
            os.close(fd)
        _restore(previous)


def _finished(channel: Channel, pidfd: int) -> int:
    """The exit code of the worker, as the worker or the server tells it."""
    finished: object = None
    with contextlib.suppress(OSError):
        readable, _, _ = select.select([channel.sock.fileno(), pidfd], [], [])
        # A worker that has ended has told its status as it ended, unless a signal ended it:
        # then the server tells it, if it is there to.
        deadline = None if pidfd not in readable else time.monotonic() + ANSWER_SECONDS
        finished, _ = channel.receive(deadline=deadline)
    if not isinstance(finished, dict):
        return _lost(pidfd)
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
    """Neither the worker nor the server told how the worker ended: wait for its end."""
    select.select([pidfd], [], [])
    _say("the run server stopped before the command ended: exit status unknown")
    return 1


def _say(message: str) -> None:
    print(f"ci-orchestrator: {message}", file=sys.stderr)


def _start_server(folder: str, key: str) -> None:
    """A server for `key`, started in the background unless one is starting already (it holds
    its lock from the start) or could not be started in this process's context before. On a
    terminal, the client that starts it says so, and how to stop it: a process of the user's
    that stays is never a surprise (once a server, since only the starting client says it)."""
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
        pid = os.posix_spawn(
            sys.executable,
            [sys.executable, *_interpreter_options(), "-c", boot],
            os.environ,
            file_actions=actions,
            setsid=True,
        )
    except OSError:
        return
    if os.isatty(2):
        minutes = runtime.IDLE_SECONDS // 60
        _say(
            f"started a run server (pid {pid}) that keeps ci-orchestrator loaded, so that the next"
            f" commands here start faster; it ends after {minutes} idle minutes\n"
            "ci-orchestrator: `ci-orchestrator server stop` stops it, `ci-orchestrator server status`"
            f" lists them, {runtime.SETTING}=off starts none"
        )


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
