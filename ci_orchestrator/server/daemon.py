"""A run server: with every module loaded, it forks a worker for each command a client hands it
(see `worker`), tells the client the worker's pid and then its exit status, stops a worker whose
client went away, and ends after `IDLE_SECONDS` without work or on SIGTERM. It reads each
client's request as it arrives: one that connects and says nothing holds up no other.

One server per key (`identity`), holding `KEY.lock` for its life; its socket is `KEY.sock` in the
user's private folder. A server that finds itself in another context than the key it was started
for writes `KEY.refused`, so that clients of that key stop starting servers.
"""

from __future__ import annotations

import contextlib
import fcntl
import gc
import importlib
import os
import pkgutil
import selectors
import signal
import socket
import sys
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, cast

import ci_orchestrator
from ci_orchestrator.run.process_tree import io_priority, take_io_priority
from ci_orchestrator.server import identity, runtime, worker
from ci_orchestrator.server.client import FORWARDED
from ci_orchestrator.server.protocol import INCOMPLETE, Channel

if TYPE_CHECKING:
    import _socket
    from collections.abc import Callable

    from ci_orchestrator.server.protocol import RunRequest

# Loaded as well: what commands import only when they need it.
_LIBRARIES = ("psutil", "diskcache", "junit_xml", "yaml", "sqlite3", "xml.dom.minidom")


def serve(folder: str, key: str) -> None:
    """Serve clients of `key` until idle; the process's whole life (`python -c`, see `client`)."""
    _leave_client()
    os.chdir("/")
    os.umask(0o077)
    base = os.path.join(folder, key)
    if identity.key() != key:
        _refuse(base)
        return
    lock = os.open(f"{base}.lock", os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return  # another server of this key is there
    _load_everything()
    if identity.key() != key:  # the code changed while it loaded
        return
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    # Bound under another name and put in place once it listens: a client that finds the socket
    # can connect (between bind and listen it would be refused, and run the command itself).
    # The rename replaces the socket of a server that was killed.
    path, new = f"{base}.sock", f"{base}.{os.getpid()}.new"
    try:
        runtime.at_socket(new, listener.bind)
        listener.listen(64)
        os.rename(new, path)
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(new)
        raise
    gc.freeze()  # what is loaded stays: neither the server's collections nor the workers' walk it
    serving = _Server(listener, lock, path=path, inode=os.stat(path).st_ino)
    try:
        serving.loop()
    finally:
        serving.withdraw()


def _leave_client() -> None:
    """Let go of what this process inherited from the client that started it: the descriptors
    other than the standard streams (a pipe its parent waits to see closed would stay open for
    the server's life), and the signals the client blocked or ignored (a blocked SIGCHLD would
    leave every worker unreaped; an ignored SIGQUIT would be every worker's)."""
    for name in os.listdir("/proc/self/fd"):
        if int(name) > 2:
            with contextlib.suppress(OSError):  # the listing's own, closed already
                os.close(int(name))
    signal.pthread_sigmask(signal.SIG_SETMASK, [])
    for signum in signal.valid_signals():
        # SIGPIPE and SIGXFSZ: ignored by the interpreter itself, in the clients too.
        if signal.getsignal(signum) is signal.SIG_IGN and signum not in (signal.SIGPIPE, signal.SIGXFSZ):
            signal.signal(signum, signal.SIG_DFL)


def _refuse(base: str) -> None:
    with contextlib.suppress(OSError):
        os.close(os.open(f"{base}.refused", os.O_WRONLY | os.O_CREAT, 0o600))


def _load_everything() -> None:
    for module in pkgutil.walk_packages(ci_orchestrator.__path__, prefix="ci_orchestrator."):
        if module.name != "ci_orchestrator.__main__":
            importlib.import_module(module.name)
    importlib.import_module("ci_orchestrator.__main__")
    for name in _LIBRARIES:
        with contextlib.suppress(ImportError):
            importlib.import_module(name)
    from ci_orchestrator import cli

    cli.build_commands()


@dataclass(slots=True, kw_only=True)
class _Worker:
    """A worker running, with the connection of its client (None once the client went away)."""

    pidfd: int
    channel: Channel | None


@dataclass(slots=True, kw_only=True)
class _Asking:
    """A client connected whose request has not all arrived yet."""

    channel: Channel
    pid: int  # the client's


@dataclass(slots=True)
class _Server:
    listener: socket.socket
    lock: int
    path: str  # the socket's, and the inode bound there
    inode: int
    selector: selectors.BaseSelector = field(default_factory=selectors.DefaultSelector)
    workers: dict[int, _Worker] = field(default_factory=dict)
    asking: list[_Asking] = field(default_factory=list)
    own: list[socket.socket] = field(default_factory=list)  # the listener and the wake-up pair
    stopping: bool = False
    last_work: float = field(default_factory=time.monotonic)

    def loop(self) -> None:
        wake_read, wake_write = socket.socketpair()
        for end in (wake_read, wake_write):
            end.setblocking(False)
        signal.set_wakeup_fd(wake_write.fileno())
        for signum in (signal.SIGCHLD, signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(signum, self._note)
        self.selector.register(self.listener, selectors.EVENT_READ, "listener")
        self.selector.register(wake_read, selectors.EVENT_READ, "signals")
        self.own = [self.listener, wake_read, wake_write]
        while not (self.stopping and not self.workers):
            if self.stopping:
                self.withdraw()
            idle = time.monotonic() - self.last_work
            if not self.workers and idle >= runtime.IDLE_SECONDS:
                break
            for event, _mask in self.selector.select(timeout=max(runtime.IDLE_SECONDS - idle, 1)):
                if event.data == "listener":
                    self._accept()
                elif event.data == "signals":
                    with contextlib.suppress(BlockingIOError):
                        wake_read.recv(4096)
                    self._reap()
                elif isinstance(event.data, _Asking):
                    self._read_request(event.data)
                else:  # a client sends nothing after its request: this is its end (killed)
                    self._client_gone(event.data)

    def _note(self, signum: int, _frame: object) -> None:
        if signum != signal.SIGCHLD:
            self.stopping = True

    def withdraw(self) -> None:
        """No more clients: the socket goes at once, not when the last worker is done, so that a
        command started meanwhile runs by itself instead of waiting in the socket's backlog."""
        if self.listener.fileno() == -1:
            return
        with contextlib.suppress(OSError):
            if os.stat(self.path).st_ino == self.inode:  # not a later server's
                os.unlink(self.path)
        with contextlib.suppress(KeyError, ValueError):
            self.selector.unregister(self.listener)
        self.listener.close()
        # Those still asking are told nothing more: each client runs its command itself.
        for asking in list(self.asking):
            self._drop(asking)

    def _accept(self) -> None:
        if self.stopping:
            return
        try:
            connection, _ = self.listener.accept()
        except OSError:  # gone before it was taken, or out of descriptors: that client runs alone
            return
        credentials = connection.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12)
        if int.from_bytes(credentials[4:8], "little") != os.getuid():
            connection.close()
            return
        connection.setblocking(False)
        asking = _Asking(channel=Channel(connection), pid=int.from_bytes(credentials[:4], "little"))
        self.asking.append(asking)
        self.selector.register(connection, selectors.EVENT_READ, asking)

    def _drop(self, asking: _Asking) -> None:
        self.asking.remove(asking)
        with contextlib.suppress(KeyError, ValueError):
            self.selector.unregister(asking.channel.sock)
        for fd in asking.channel.take_fds():
            os.close(fd)
        asking.channel.sock.close()

    def _read_request(self, asking: _Asking) -> None:
        """Reads what has come of a client's request; once it is all there, acts on it."""
        try:
            still_open = asking.channel.read()
        except BlockingIOError:
            return
        except OSError:
            still_open = False
        request = asking.channel.take()
        if request is INCOMPLETE and still_open:
            return  # more to come
        self.asking.remove(asking)
        self.selector.unregister(asking.channel.sock)
        kind = request.get("kind") if isinstance(request, dict) else None
        if kind == "status":
            self._tell_status(asking.channel)
        elif kind == "run":  # the only work: a look at the server, or a word, lets it idle on
            self.last_work = time.monotonic()
        if kind == "run" and self._as_client(
            asking.pid, lambda: self._start(cast("RunRequest", request), asking.channel)
        ):
            return
        if kind == "stop":
            self._note(signal.SIGTERM, None)
        asking.channel.sock.close()

    def _tell_status(self, channel: Channel) -> None:
        """`server status`: what this server is, and how long it has had nothing to do."""
        with contextlib.suppress(OSError):
            channel.send(
                {
                    "version": ci_orchestrator.__version__,
                    "python": sys.version.split()[0],
                    "directory": identity.PACKAGE,
                    "running": len(self.workers),
                    "idle": 0.0 if self.workers else time.monotonic() - self.last_work,
                }
            )

    def _as_client(self, pid: int, fork: Callable[[], None]) -> bool:
        """`fork()` with this process's I/O priority (`ionice`) the client's, for the worker to
        inherit it (the client cannot read it; see `identity`), the server's own back after.
        False, nothing done, when it cannot take it on: the client then runs its command itself."""
        theirs, own = io_priority(pid), io_priority(os.getpid())
        if theirs is None or own is None:
            return False
        if theirs != own and not take_io_priority(theirs):
            return False
        try:
            fork()
        finally:
            if theirs != own:
                take_io_priority(own)
        return True

    def _start(self, request: RunRequest, channel: Channel) -> None:
        """Forks the worker of a request, which waits until its client lets it begin."""
        connection = channel.sock
        go, worker_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        # Signals the client passes on wait in the worker until it handles them as the command
        # does: the client may send one as soon as it knows the worker's pid.
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, FORWARDED)
        try:
            pid = os.fork()
        except OSError:  # out of processes: the client, told nothing, runs the command itself
            pid = -1
        if pid == 0:
            worker.become(
                request,
                go=worker_end,
                connection=connection,
                servers=[*self.own, self.selector, *self._connections(), go],
                fds=[self.lock, *(item.pidfd for item in self.workers.values())],
            )
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        worker_end.close()
        pidfd = -1
        if pid > 0:
            try:
                pidfd = os.pidfd_open(pid)
            except OSError:
                # Out of descriptors: a worker the server cannot watch must not run on. It has
                # not begun (its socket closes unused), and is killed at once all the same.
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
        if pidfd < 0:
            go.close()
            connection.close()
            return
        self.workers[pid] = _Worker(pidfd=pidfd, channel=channel)
        try:
            channel.send({"pid": pid}, fds=(pidfd, go.fileno()))
        except OSError:
            self._client_gone(pid)
            return
        finally:
            go.close()  # the client's now: the worker begins when it says so there, ends if it closes
        self.selector.register(connection, selectors.EVENT_READ, pid)

    def _connections(self) -> list[_socket.socket]:
        """Every client's connection: those of workers, those still asking."""
        running = [item.channel.sock for item in self.workers.values() if item.channel is not None]
        return [*running, *(asking.channel.sock for asking in self.asking)]

    def _client_gone(self, pid: int) -> None:
        """The client of `pid` went away: its worker is stopped as a cancelled run is."""
        item = self.workers.get(pid)
        if item is None or item.channel is None:
            return
        with contextlib.suppress(KeyError, ValueError):
            self.selector.unregister(item.channel.sock)
        item.channel.sock.close()
        item.channel = None
        with contextlib.suppress(ProcessLookupError):
            signal.pidfd_send_signal(item.pidfd, signal.SIGTERM)

    def _reap(self) -> None:
        while self.workers:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            item = self.workers.pop(pid, None)
            if item is None:
                continue
            self.last_work = time.monotonic()
            os.close(item.pidfd)
            if item.channel is not None:
                with contextlib.suppress(KeyError, ValueError):
                    self.selector.unregister(item.channel.sock)
                with contextlib.suppress(OSError):
                    item.channel.send({"status": os.waitstatus_to_exitcode(status)})
                item.channel.sock.close()
