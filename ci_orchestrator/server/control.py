"""This user's run servers, as `ci-orchestrator server status` and `server stop` show and end
them: each is a socket in the user's folder, and the process that listens on it."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass

from ci_orchestrator.server import runtime
from ci_orchestrator.server.client import ANSWER_SECONDS
from ci_orchestrator.server.protocol import Channel


@dataclass(frozen=True, slots=True, kw_only=True)
class Listening:
    """A server found: its key and pid."""

    key: str
    pid: int


def listening() -> list[Listening]:
    """The servers of this user that answer on their sockets (the ones that do not, are not)."""
    folder = runtime.folder(os.environ)
    if folder is None:
        return []
    found = []
    for name in sorted(os.listdir(folder)):
        if not name.endswith(".sock"):
            continue
        connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        connection.settimeout(ANSWER_SECONDS)  # a stopped server's full backlog: no waiting for ever
        with connection:
            try:
                runtime.at_socket(os.path.join(folder, name), connection.connect)
            except OSError:
                continue
            pid = connection.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12)[:4]
        found.append(Listening(key=name.removesuffix(".sock"), pid=int.from_bytes(pid, "little")))
    return found


def stop(found: Listening) -> None:
    """Ask the server to end once the commands it runs are done (this one may be among them)."""
    folder = runtime.folder(os.environ)
    if folder is None:
        return
    connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    connection.settimeout(ANSWER_SECONDS)
    with connection:
        try:
            runtime.at_socket(os.path.join(folder, f"{found.key}.sock"), connection.connect)
            Channel(connection).send({"kind": "stop"})
        except OSError:
            return


def status_text() -> str:
    """`server status`: a line for each of this user's run servers."""
    found = listening()
    return "\n".join(f"{item.key}  pid {item.pid}" for item in found) or "no run server"


def stop_all() -> str:
    """`server stop`: every run server of this user asked to stop."""
    found = listening()
    for item in found:
        stop(item)
    return f"stopped {len(found)} run server{'' if len(found) == 1 else 's'}"
