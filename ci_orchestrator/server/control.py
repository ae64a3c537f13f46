"""This user's run servers, as `ci-orchestrator server status` and `server stop` show and end
them: each is a socket in the user's folder, and the process that listens on it.

A server belongs to one context (`identity`): the one this command's own key names is the server
commands started here use. `server stop` stops that one; `--all` every one of the user's (other
checkouts', other environments')."""

from __future__ import annotations

import dataclasses
import os
import socket
import time
from dataclasses import dataclass

from ci_orchestrator.commands.tables import table
from ci_orchestrator.reporters.writing import format_seconds
from ci_orchestrator.server import identity, runtime
from ci_orchestrator.server.client import ANSWER_SECONDS
from ci_orchestrator.server.protocol import Channel


@dataclass(frozen=True, slots=True, kw_only=True)
class Listening:
    """A server found: its key and pid, and what it says of itself (None from a server that
    does not answer `status`)."""

    key: str
    pid: int
    ours: bool  # the server of this command's context
    version: str | None = None
    python: str | None = None
    directory: str | None = None  # where its code is
    running: int = 0  # commands it runs now
    idle: float | None = None  # seconds with nothing to do


def listening() -> list[Listening]:
    """The servers of this user that answer on their sockets (the ones that do not, are not),
    this context's first."""
    folder = runtime.folder(os.environ)
    if folder is None:
        return []
    own = identity.key()
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
            credentials = connection.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12)
            key = name.removesuffix(".sock")
            server = Listening(key=key, pid=int.from_bytes(credentials[:4], "little"), ours=key == own)
            found.append(_told(Channel(connection), server))
    return sorted(found, key=lambda item: not item.ours)


def _told(channel: Channel, found: Listening) -> Listening:
    """`found` with what the server says of itself, each value checked (the server is this
    user's, but may be of another version)."""
    try:
        channel.send({"kind": "status"})
        answer, fds = channel.receive(deadline=time.monotonic() + ANSWER_SECONDS)
    except OSError:
        return found
    for fd in fds:
        os.close(fd)
    if not isinstance(answer, dict):
        return found

    def text(name: str) -> str | None:
        value = answer.get(name)
        return value if isinstance(value, str) else None

    running, idle = answer.get("running"), answer.get("idle")
    return dataclasses.replace(
        found,
        version=text("version"),
        python=text("python"),
        directory=text("directory"),
        running=running if isinstance(running, int) and running > 0 else 0,
        idle=float(idle) if isinstance(idle, int | float) and idle >= 0 else None,
    )


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


def status_text(found: list[Listening] | None = None) -> str:
    """`server status`: a line for each of this user's run servers (`found`, by default those
    listening now), this context's first."""
    if found is None:
        found = listening()
    if not found:
        return "no run server"
    rows = [["PID", "VERSION", "PYTHON", "STATE", "DIRECTORY"]]
    silent = 0
    for item in found:
        if item.running:
            state = f"running {item.running} command{'s' * (item.running != 1)}"
        elif item.idle is not None:
            state = f"idle {format_seconds(item.idle)}"
        elif item.version is None and item.python is None and item.directory is None:
            state, silent = "no answer", silent + 1
        else:
            state = "-"
        where = item.directory or "-"
        mark = "  (this context)" if item.ours else ""
        rows.append([str(item.pid), item.version or "-", item.python or "-", state, where + mark])
    minutes = runtime.IDLE_SECONDS // 60
    told = (
        [
            "No answer: a server that took the connection but did not say what it is (a version"
            " that does not know `status`, or one stopped or stuck)."
        ]
        if silent
        else []
    )
    return "\n".join(
        [
            *table(rows),
            "",
            f"Each ends after {minutes} idle minutes. This context's server is the one commands started here",
            "use: `server stop` stops it, `server stop --all` every one.",
            *told,
        ]
    )


def stop_servers(*, every: bool) -> str:
    """`server stop`: this context's run server asked to stop; with `every`, every one of this user's."""
    found = listening()
    chosen = found if every else [item for item in found if item.ours]
    for item in chosen:
        stop(item)
    if every:
        return f"stopped {len(chosen)} run server{'' if len(chosen) == 1 else 's'}"
    if chosen:
        return f"stopped the run server of this context (pid {chosen[0].pid})"
    others = len(found)
    if not others:
        return "no run server"
    return (
        f"no run server of this context; {others} other{'s' * (others != 1)} of this user"
        " (`server status` lists them, `server stop --all` stops them)"
    )
