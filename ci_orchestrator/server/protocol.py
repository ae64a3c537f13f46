"""How a client and a run server talk over a Unix socket: messages of plain data (`marshal`'d,
each after its length), the first of each side carrying file descriptors.

The client sends `run` (what the worker is to take on), `stop`, or `status` (answered with what
the server is: version, code directory, commands running, idle time). The server forks a worker,
which waits, and answers `run` with the worker's pid and two descriptors: a pidfd, to signal it,
and one end of a socket pair whose other end the worker waits on. There the client sends `go`
with its standard streams, and the worker begins; or it closes it, and the worker ends having
done nothing: a client that gave up waiting for the server's answer runs the command itself, and
must know that no worker runs it too. Its streams never wait in a server that does not answer
(a pipe the client's parent reads would stay open as long). Once begun, the worker sends its
exit status itself when it ends (the server too, which also tells a death by a signal): a server
stopped meanwhile holds up no one.

A client waits for each answer a limited time only (`Channel.receive`'s deadline); the server
reads each client's request as it comes, never waiting for one while others are there.
"""

from __future__ import annotations

import array
import marshal
import struct
import time

# The C module under `socket`: its Python wrapper costs every command 3 ms.
from _socket import CMSG_SPACE, SCM_RIGHTS, SOL_SOCKET

TYPE_CHECKING = False  # as `typing`'s, without importing it (4 ms) on every command's start-up
if TYPE_CHECKING:
    from _socket import socket
    from collections.abc import Mapping
    from typing import TypedDict

    class RunRequest(TypedDict):
        """What a worker takes on from its client (see `worker`); its streams come with `go`."""

        kind: str  # "run"
        argv: list[str]
        cwd: str
        env: dict[str, str]
        umask: int
        ignored: list[int]  # signals the client ignores (`nohup`)
        blocked: list[int]  # its signal mask


GO = {"kind": "go"}
"""What the client sends the worker, with its standard streams, to have it begin."""

_LENGTH = struct.Struct("!I")
_FD = array.array("i").itemsize
_CHUNK = 1 << 16
INCOMPLETE = object()
"""What `take` gives while no whole message has arrived."""


class Channel:
    """One end of a connection, reading whole messages however the bytes arrive."""

    def __init__(self, sock: socket) -> None:
        self.sock = sock
        self._buffer = b""
        self._fds: list[int] = []
        self._received_fds = False

    def send(self, message: Mapping[str, object], fds: tuple[int, ...] = ()) -> None:
        data = marshal.dumps(dict(message))
        frame = _LENGTH.pack(len(data)) + data
        ancillary = [(SOL_SOCKET, SCM_RIGHTS, array.array("i", fds).tobytes())] if fds else []
        sent = self.sock.sendmsg([frame], ancillary)
        if sent < len(frame):
            self.sock.sendall(frame[sent:])

    def receive(self, max_fds: int = 0, *, deadline: float | None = None) -> tuple[object, list[int]]:
        """The next message and the descriptors sent with it; None at the end of the connection
        (or when it ends mid-message). With a `deadline` (`time.monotonic()`), `TimeoutError`
        once it has passed."""
        while (message := self.take()) is INCOMPLETE:
            if deadline is not None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError("no answer in time")
                self.sock.settimeout(remaining)
            if not self.read(max_fds):
                return None, self.take_fds()
        return message, self.take_fds()

    def read(self, max_fds: int = 0) -> bool:
        """Reads what has arrived (blocking as the socket does), with up to `max_fds`
        descriptors the first time; False at the end of the connection."""
        room = CMSG_SPACE(max_fds * _FD) if max_fds and not self._received_fds else 0
        data, ancillary, _flags, _address = self.sock.recvmsg(_CHUNK, room)
        fds = _descriptors(ancillary)
        self._received_fds = self._received_fds or bool(fds)
        self._fds.extend(fds)
        self._buffer += data
        return bool(data)

    def take(self) -> object:
        """The next whole message read so far, or `INCOMPLETE`."""
        if len(self._buffer) < _LENGTH.size:
            return INCOMPLETE
        (length,) = _LENGTH.unpack_from(self._buffer)
        end = _LENGTH.size + length
        if len(self._buffer) < end:
            return INCOMPLETE
        message = marshal.loads(self._buffer[_LENGTH.size : end])  # noqa: S302 (the peer is this user)
        self._buffer = self._buffer[end:]
        return message

    def take_fds(self) -> list[int]:
        """The descriptors received so far, now the caller's to close."""
        fds, self._fds = self._fds, []
        return fds


def _descriptors(ancillary: list[tuple[int, int, bytes]]) -> list[int]:
    fds = array.array("i")
    for level, kind, data in ancillary:
        if level == SOL_SOCKET and kind == SCM_RIGHTS:
            fds.frombytes(data[: len(data) - len(data) % _FD])
    return list(fds)
