"""Orphans adopted: the process of a run becomes the parent of what its steps leave behind
(Linux's child subreaper), so that the end of a run can ask the kernel whether anything is left
instead of reading every process's environment, and find what they left whatever its
environment (a daemon started with `env -i` carries no run id)."""

from __future__ import annotations

import os
import sys

# prctl(2) options: orphans of our descendants become our children instead of init's.
_PR_SET_CHILD_SUBREAPER = 36
_PR_GET_CHILD_SUBREAPER = 37


def adopt_orphans() -> bool:
    """Makes this process the parent of every orphan among its descendants (a daemon a step
    left behind), so that `leftovers_possible` can ask the kernel instead of reading every
    process's environment. For a process that exists to run steps: `leftovers_possible` also
    collects the exit of any other child. True when it took effect (Linux only)."""
    return _child_subreaper(become=True)


def adopting() -> bool:
    """Whether this process adopts the orphans of its descendants (see `adopt_orphans`): then,
    once a run's steps have all ended, each child it still has is one they left behind."""
    return _child_subreaper(become=False)


def leftovers_possible() -> bool:
    """Whether a process of a run whose steps have all ended may still be alive.

    With orphans adopted it is exactly whether this process still has a child (the exits of
    those that ended are collected on the way); otherwise only a search can tell, so yes.
    """
    return not adopting() or has_children()


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


def _child_subreaper(*, become: bool) -> bool:
    """Sets (`become`) or reads this process's child-subreaper flag; False where there is none."""
    if not sys.platform.startswith("linux"):
        return False
    import ctypes  # a few ms, for one system call that os does not offer

    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return False
    if become:
        return bool(prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0)
    flag = ctypes.c_int(0)
    return bool(prctl(_PR_GET_CHILD_SUBREAPER, ctypes.byref(flag), 0, 0, 0) == 0 and flag.value)
