"""The run server: a process that keeps ci-orchestrator imported, so that a command costs its own
work and not the interpreter's start-up and imports again (about 100 ms before anything runs).

The `ci-orchestrator` command, as a client, hands its arguments, environment, working directory,
umask, signal dispositions and standard streams to a server of its own kind (`identity`), which
forks a worker that takes them on and runs the command as the client would have (`worker`). The
client passes on the signals it gets and exits as the worker does. With no server, the client
starts one in the background (`daemon`) and runs the command itself.

Used where runs repeat on one machine, a laptop's; not under CI (as `ci` tells it), where every
job starts on a fresh machine, nor when `CI_ORCHESTRATOR_SERVER` is `off`. This package's modules
other than `daemon` and `worker` are loaded by every command: they import nothing beyond the
interpreter's own, and `ci`, which imports `os` alone.
"""

from __future__ import annotations

import os
import stat

from ci_orchestrator import ci

TYPE_CHECKING = False  # as `typing`'s, without importing it (4 ms) on every command's start-up
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

SETTING = "CI_ORCHESTRATOR_SERVER"
"""`auto` (the default: on unless under CI), `on` or `off`."""

IDLE_SECONDS = 30 * 60
"""A server with nothing to do for this long ends."""

_ADDRESS_BYTES = 108
"""The room for a path in a Unix socket's address (`sun_path`), its final NUL included."""

_ON = ("on", "1", "true", "yes")
_OFF = ("off", "0", "false", "no")


def wanted(environ: Mapping[str, str]) -> bool:
    """Whether this command should go through a run server (see `SETTING`)."""
    setting = environ.get(SETTING, "auto").strip().lower()
    if setting in _ON:
        return True
    if setting in _OFF:
        return False
    return not ci.under_ci(environ)


def folder(environ: Mapping[str, str]) -> str | None:
    """The folder of this user's servers (their sockets and locks), made if missing; None when it
    is not this user's alone (another user could then talk to the servers or pose as one)."""
    runtime = environ.get("XDG_RUNTIME_DIR")
    base = os.path.join(runtime, "ci-orchestrator") if runtime else f"/tmp/ci-orchestrator-{os.getuid()}"
    try:
        os.makedirs(base, mode=0o700, exist_ok=True)
        status = os.lstat(base)
    except OSError:
        return None
    # lstat: a symlink is not a folder here, even to one of the user's.
    private = stat.S_ISDIR(status.st_mode) and status.st_uid == os.getuid() and not status.st_mode & 0o077
    return base if private else None


def at_socket(path: str, use: Callable[[str], object]) -> None:
    """`use(path)`, `use` being a Unix socket's `connect` or `bind`, also when `path` is longer
    than a socket's address holds (a deep `XDG_RUNTIME_DIR`): then through the folder's
    descriptor in /proc/self/fd, a path short enough that reaches the same file."""
    if len(os.fsencode(path)) < _ADDRESS_BYTES:
        use(path)
        return
    folder = os.open(os.path.dirname(path), os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        use(f"/proc/self/fd/{folder}/{os.path.basename(path)}")
    finally:
        os.close(folder)
