"""How a client and a run server talk over a Unix socket: messages of plain data (`marshal`'d,
each after its length), the first of each side carrying file descriptors.

The client sends `run` (what the worker is to take on, with its standard streams) or `stop`; the
server answers `run` with the worker's pid (and a pidfd, to signal it), and then with its exit
status once it has ended.
"""

from __future__ import annotations

import array
import marshal
import struct

# The C module under `socket`: its Python wrapper costs every command 3 ms.
from _socket import CMSG_SPACE, SCM_RIGHTS, SOL_SOCKET

TYPE_CHECKING = False  # as `typing`'s, without importing it (4 ms) on every command's start-up
if TYPE_CHECKING:
    from _socket import socket
    from collections.abc import Mapping
    from typing import TypedDict

    class RunRequest(TypedDict):
        """What a worker takes on from its client (see `worker`); its streams travel beside it."""

        kind: str  # "run"
        argv: list[str]
        cwd: str
        env: dict[str, str]
        umask: int
        ignored: list[int]  # signals the client ignores (`nohup`)
        blocked: list[int]  # its signal mask


_LENGTH = struct.Struct("!I")
_FD = array.array("i").itemsize
_CHUNK = 1 << 16


class Channel:
    """One end of a connection, reading whole messages however the bytes arrive."""

    def __init__(self, sock: socket) -> None:
        self.sock = sock
        self._buffer = b""

    def send(self, message: Mapping[str, object], fds: tuple[int, ...] = ()) -> None:
        data = marshal.dumps(dict(message))
        frame = _LENGTH.pack(len(data)) + data
        ancillary = [(SOL_SOCKET, SCM_RIGHTS, array.array("i", fds).tobytes())] if fds else []
        sent = self.sock.sendmsg([frame], ancillary)
        if sent < len(frame):
            self.sock.sendall(frame[sent:])

    def receive(self, max_fds: int = 0) -> tuple[object, list[int]]:
        """The next message and the descriptors sent with it; None at the end of the connection
        (or when it ends mid-message)."""
        fds: list[int] = []
        while True:
            if len(self._buffer) >= _LENGTH.size:
                (length,) = _LENGTH.unpack_from(self._buffer)
                end = _LENGTH.size + length
                if len(self._buffer) >= end:
                    message = marshal.loads(self._buffer[_LENGTH.size : end])  # noqa: S302 (the peer is this user)
                    self._buffer = self._buffer[end:]
                    return message, fds
            room = CMSG_SPACE(max_fds * _FD) if max_fds and not fds else 0
            data, ancillary, _flags, _address = self.sock.recvmsg(_CHUNK, room)
            fds.extend(_descriptors(ancillary))
            if not data:
                return None, fds
            self._buffer += data


def _descriptors(ancillary: list[tuple[int, int, bytes]]) -> list[int]:
    fds = array.array("i")
    for level, kind, data in ancillary:
        if level == SOL_SOCKET and kind == SCM_RIGHTS:
            fds.frombytes(data[: len(data) - len(data) % _FD])
    return list(fds)
