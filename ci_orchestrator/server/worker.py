"""A worker of a run server: the forked process that takes on its client's context (arguments,
environment, working directory, umask, signal dispositions and mask, standard streams) and runs
the command there, as the client itself would have. What the key of the server already makes equal
(`identity`) is left as it is."""

from __future__ import annotations

import os
import signal
import sys
import time
from typing import TYPE_CHECKING, NoReturn, TextIO

if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Protocol

    from ci_orchestrator.server.protocol import RunRequest

    class _Closable(Protocol):
        def close(self) -> None: ...


def become(
    request: RunRequest, streams: Sequence[int], *, servers: Sequence[_Closable], fds: Sequence[int]
) -> NoReturn:
    """Run the client's command in this forked process and end it with the command's exit code.
    `servers` and `fds` are the server's own (its sockets, its lock, the other workers'
    pidfds): closed first."""
    from ci_orchestrator.run import interrupts

    code = 1
    try:
        _leave_server(servers, fds)
        _take_on(request, streams)
        from ci_orchestrator.__main__ import command

        code = command()
    except BaseException:  # a worker never returns into the server's loop
        import traceback

        traceback.print_exc()
    interrupts.end(code)
    os._exit(code)  # not reached: `end` exits


def _leave_server(servers: Sequence[_Closable], fds: Sequence[int]) -> None:
    signal.set_wakeup_fd(-1)
    for signum in (signal.SIGCHLD, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    for item in servers:
        item.close()
    for fd in fds:
        os.close(fd)
    os.setsid()  # its own session and process group: what is sent to the server's is not for it


def _take_on(request: RunRequest, streams: Sequence[int]) -> None:
    for target, fd in enumerate(streams):
        os.dup2(fd, target)
        os.close(fd)
    # The server ignores none but the interpreter's own (see `daemon`): the client's are set.
    for signum in request["ignored"]:
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
