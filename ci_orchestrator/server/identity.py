"""What a worker forked from a run server gets from the server rather than from the client that
asked for it, reduced to one key: a client uses only a server with its own key, so a command runs
on a server exactly as it would have run in the client.

The worker takes on the client's arguments, environment, working directory, umask, signal
dispositions and standard streams (see `worker`), and its I/O priority (`ionice`: the one thing a
client cannot read without a system call the interpreter lacks; the server reads it, see
`daemon`). Everything else a process inherits is in the key: the interpreter, its flags and
module path, the environment variables read while it starts, the code of this package and what
the module path offers, the user and groups, resource limits, CPUs, priority, scheduling policy
(`chrt`), personality (`setarch`), timer slack, cgroup, memory nodes, namespaces and privileges.
A server is started by the first client of its key, and inherits all of it from that client: a
policy or personality the worker could not have taken on (a real-time one, unprivileged) is
kept exactly.
"""

from __future__ import annotations

import os
import resource
import sys

# The C modules under `hashlib` and `socket`: their Python wrappers cost every command 3-6 ms.
from _blake2 import blake2b

PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
"""The folder of this package's code: a server's, as `server status` shows it."""

# Read by the interpreter or a library as it starts (locale and stream encodings, typer's output).
_STARTUP_ENV = ("PYTHON", "LANG", "LC_", "TYPER", "_TYPER", "TERMINAL_WIDTH")

# The folders of the interpreter and of its environment (a venv's), with a separator at the end.
_PREFIXES = tuple(
    os.path.join(top, "") for top in (sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix)
)
# What in a folder of the module path can be imported or installs something (.pth: at start-up).
_IMPORTABLE = (".py", ".pyc", ".so", ".pth", ".zip", ".egg", ".egg-link", ".dist-info", ".egg-info")

_PROC_FILES = ("cgroup", "oom_score_adj", "loginuid", "sessionid", "personality", "timerslack_ns")
_PROC_STATUS = (
    "Cap",
    "NoNewPrivs",
    "Seccomp",
    "Groups",
    "Uid",
    "Gid",
    "THP_enabled",
    "Speculation",
    "Mems_allowed_list",
)
_NAMESPACES = ("cgroup", "ipc", "mnt", "net", "pid", "time", "user", "uts")


def key() -> str:
    """This process's key (hex), as its run server's must be."""
    digest = blake2b(digest_size=16)
    for part in _parts():
        digest.update(part.encode("utf-8", "surrogateescape"))
        digest.update(b"\0")
    return digest.hexdigest()


def _parts() -> list[str]:
    limits = [
        resource.getrlimit(getattr(resource, name)) for name in dir(resource) if name.startswith("RLIMIT_")
    ]
    return [
        sys.version,
        sys.executable,
        repr(sys.path),
        repr(sys.flags),
        repr(sys.warnoptions),
        repr(sys._xoptions),
        repr(sorted((name, value) for name, value in os.environ.items() if name.startswith(_STARTUP_ENV))),
        repr((os.getuid(), os.geteuid(), os.getgid(), os.getegid(), sorted(os.getgroups()))),
        repr(limits),
        repr(sorted(os.sched_getaffinity(0))),
        repr(os.getpriority(os.PRIO_PROCESS, 0)),
        # The policy carries SCHED_RESET_ON_FORK: then the server, a child, has another, and
        # refuses to serve (see `daemon`): such a client runs its commands itself.
        repr((os.sched_getscheduler(0), os.sched_getparam(0).sched_priority)),
        *_proc(),
        *_code(),
    ]


def _proc() -> list[str]:
    """What /proc says of this process that a child inherits and a fork would not have from the
    client: cgroup, OOM score, login session, personality, timer slack, privileges, transparent
    huge pages and speculation controls (`prctl`), memory nodes, namespaces."""
    parts = [_read(f"/proc/self/{name}") for name in _PROC_FILES]
    status = _read("/proc/self/status").splitlines()
    parts.extend(line for line in status if line.startswith(_PROC_STATUS))
    for name in _NAMESPACES:
        try:
            parts.append(f"{name}:{os.stat(f'/proc/self/ns/{name}').st_ino}")
        except OSError:
            parts.append(f"{name}:-")
    return parts


def _code() -> list[str]:
    """This package's files, each with its size and time of change, and what each entry of the
    module path offers to import (see `_offered`)."""
    parts = []
    for folder, dirs, files in os.walk(PACKAGE):
        dirs.sort()
        for name in sorted(files):
            if name.endswith(".py"):
                parts.append(_signature(os.path.join(folder, name)))
    parts.extend(_offered(entry or ".") for entry in sys.path)
    return parts


def _offered(entry: str) -> str:
    """An entry of the module path, as far as it decides what is imported. A folder of the
    interpreter or of its environment: its time of change (a library installed, upgraded or
    removed changes it). Another folder (the working directory that `python -m` puts first, one
    of PYTHONPATH): the modules and packages in it by name, and the distributions. Files come and
    go there as commands run (reports, a step's output); the folder's time of change would give
    a new key, and a new server, after most runs."""
    path = os.path.abspath(entry)
    if path.startswith(_PREFIXES) or not os.path.isdir(path):
        return _signature(path)
    names = []
    try:
        with os.scandir(path) as entries:
            for item in entries:
                if item.name.endswith(_IMPORTABLE) or (
                    item.is_dir() and os.path.exists(os.path.join(item.path, "__init__.py"))
                ):
                    names.append(item.name)
    except OSError:
        return f"{path}:-"
    return f"{path}:{sorted(names)!r}"


def _signature(path: str) -> str:
    try:
        status = os.stat(path)
    except OSError:
        return f"{path}:-"
    return f"{path}:{status.st_size}:{status.st_mtime_ns}:{status.st_ctime_ns}:{status.st_ino}"


def _read(path: str) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as file:
            return file.read()
    except OSError:
        return "-"
