"""Orphans adopted: the process of a run becomes the parent of what its steps leave behind
(Linux's child subreaper), so that the end of a run can ask the kernel whether anything is left
instead of reading every process's environment, and find what they left whatever its
environment (a daemon started with `env -i` carries no run id)."""

from __future__ import annotations

import ctypes  # for one system call that os does not offer; loaded with the module, not mid-run
import os
import sys
from pathlib import Path

# prctl(2) options: orphans of our descendants become our children instead of init's.
_PR_SET_CHILD_SUBREAPER = 36
_PR_GET_CHILD_SUBREAPER = 37


_FOUND: dict[int, int] = {}
"""The processes below this one when it began adopting orphans, each pid with its start time:
not the run's to stop (`sh -c 'sidecar & exec ci-orchestrator run'` makes the sidecar ours)."""


def adopt_orphans() -> bool:
    """Makes this process the parent of every orphan among its descendants (a daemon a step
    left behind), so that `leftovers_possible` can ask the kernel instead of reading every
    process's environment, and notes the processes already below it (see `found_before`).
    For a process that exists to run steps: `leftovers_possible` also collects the exit of any
    other child. True when it took effect (Linux only)."""
    if not _child_subreaper(become=True):
        return False
    # Noted after the flag is set: what is orphaned from here on is ours, what is here is not.
    _FOUND.update((pid, start) for pid in _descendants() if (start := _start_time(pid)) is not None)
    return True


def found_before() -> frozenset[int]:
    """The pids of the processes below this one when it began adopting orphans that are still
    alive (a pid since reused is not among them): what this process's steps did not start."""
    return frozenset(pid for pid, start in _FOUND.items() if _start_time(pid) == start)


def adopting() -> bool:
    """Whether this process adopts the orphans of its descendants (see `adopt_orphans`): then,
    once a run's steps have all ended, each child it still has is one they left behind."""
    return _child_subreaper(become=False)


def leftovers_possible() -> bool:
    """Whether a process of a run whose steps have all ended may still be alive.

    With orphans adopted it is exactly whether this process still has a child other than those
    it had when it began adopting (the exits of those that ended are collected on the way);
    otherwise only a search can tell, so yes.
    """
    if not adopting():
        return True
    if not has_children():
        return False
    before = found_before()
    return any(pid not in before for pid in _children("self"))


def has_children() -> bool:
    """Whether this process has a child still running; the exits of those that ended are
    collected on the way (an adopted orphan has no one else to wait for it)."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return False
        if pid == 0:
            return True


def _children(pid: str) -> list[int]:
    """The children of process `pid` (or "self"), from /proc: no process-table search."""
    children: list[int] = []
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return children
    for task in tasks:
        try:
            children.extend(int(child) for child in (task / "children").read_bytes().split())
        except OSError:  # the task or the process ended
            continue
    return children


def _descendants() -> list[int]:
    """Every process below this one, from /proc."""
    found: list[int] = []
    waiting = _children("self")
    while waiting:
        pid = waiting.pop()
        found.append(pid)
        waiting.extend(_children(str(pid)))
    return found


def _start_time(pid: int) -> int | None:
    """When process `pid` started (clock ticks after boot), which tells a reused pid apart;
    None when it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_bytes().rsplit(b")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return int(fields[19])  # field 22 of stat(5); the fields after the name begin with field 3


def _child_subreaper(*, become: bool) -> bool:
    """Sets (`become`) or reads this process's child-subreaper flag; False where there is none."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return False
    if become:
        return bool(prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0)
    flag = ctypes.c_int(0)
    return bool(prctl(_PR_GET_CHILD_SUBREAPER, ctypes.byref(flag), 0, 0, 0) == 0 and flag.value)
