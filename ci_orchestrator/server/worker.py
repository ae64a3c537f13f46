"""A worker of a run server: the forked process that takes on its client's context (arguments,
environment, working directory, umask, signal dispositions and mask, standard streams; its I/O
priority it has from the server, which forks it with the client's, see `daemon`) and runs
the command there, as the client itself would have. What the key of the server already makes equal
(`identity`) is left as it is.

It begins only once its client says so (see `protocol`), and tells the client its exit status
itself, so that the end of a command does not wait on the server."""

from __future__ import annotations

import os
import signal
import sys
import time
from typing import TYPE_CHECKING, NoReturn, TextIO

if TYPE_CHECKING:
    from _socket import socket
    from collections.abc import Sequence
    from typing import Protocol

    from ci_orchestrator.server.protocol import RunRequest

    class _Closable(Protocol):
        def close(self) -> None: ...


def become(
    request: RunRequest,
    *,
    go: socket,
    connection: socket,
    servers: Sequence[_Closable],
    fds: Sequence[int],
) -> NoReturn:
    """Run the client's command in this forked process once the client says `go` (with its
    standard streams), and end it with the command's exit code, told to the client on
    `connection` first. `servers` and `fds` are the server's own (its sockets, its lock, the
    other workers' pidfds): closed first. A client that closes `go` instead has this process end
    at once, having done nothing."""
    from ci_orchestrator.run import interrupts
    from ci_orchestrator.server.protocol import GO, Channel

    def tell(code: int) -> None:
        Channel(connection).send({"status": code})

    code = 1
    try:
        _leave_server(servers, fds)
        try:
            said, streams = Channel(go).receive(max_fds=3)
        except OSError:
            said, streams = None, []
        go.close()
        if said != GO or len(streams) != 3:
            os._exit(0)  # the client runs the command itself, or is gone: nothing to do
        # Its exit status is the client's to know however it ends (a signal, once the command
        # handles them, ends it at once): the client need not wait for the server to tell it.
        interrupts.before_end(tell)
        _take_on(request, streams)
        from ci_orchestrator.__main__ import command

        code = command()
    except SystemExit as exit:
        code = exit.code if isinstance(exit.code, int) else 1
    except BaseException:  # a worker never returns into the server's loop
        import traceback

        traceback.print_exc()
    interrupts.end(code)
    os._exit(code)  # not reached: `end` exits


def _leave_server(servers: Sequence[_Closable], fds: Sequence[int]) -> None:
    from ci_orchestrator.run import interrupts

    signal.set_wakeup_fd(-1)
    # The run's signals at once as the command handles them: the client passes them on as soon
    # as it knows the worker, and the worker must end with their code, not be killed by them.
    interrupts.install()
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    for item in servers:
        item.close()
    for fd in fds:
        os.close(fd)
    os.setsid()  # its own session and process group: what is sent to the server's is not for it


def _take_on(request: RunRequest, streams: Sequence[int]) -> None:
    for target, fd in enumerate(streams):
        os.dup2(fd, target)
        os.close(fd)
    # The server ignores none but the interpreter's own (see `daemon`): the client's are set,
    # but SIGCHLD, which would leave no exit status to read (the client resets it too).
    for signum in request["ignored"]:
        if signum != signal.SIGCHLD:
            signal.signal(signum, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_SETMASK, request["blocked"])
    os.chdir(request["cwd"])
    os.umask(request["umask"])
    os.environ.clear()
    os.environ.update(request["env"])
    time.tzset()
    sys.argv = list(request["argv"])
    # Encoding and error handler as the server's: the key makes its locale the client's.
    sys.stdin = open(0, encoding=sys.stdin.encoding, errors=sys.stdin.errors, closefd=False)  # noqa: SIM115
    sys.stdout = _writer(1, like=sys.stdout)
    sys.stderr = _writer(2, like=sys.stderr)


def _writer(fd: int, *, like: TextIO) -> TextIO:
    """`fd` as the interpreter makes an output stream: line-buffered on a terminal (stderr always)."""
    stream = open(fd, "w", encoding=like.encoding, errors=like.errors, closefd=False)  # noqa: SIM115
    stream.reconfigure(line_buffering=fd == 2 or stream.isatty())
    return stream
