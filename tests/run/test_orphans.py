"""A run's own process adopts what its steps leave behind, and so can tell without searching
the process table whether anything is left, and stop what is left whatever its environment."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from typing import TYPE_CHECKING

import psutil
import pytest

from tests.helpers import REPO, run_cli

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="child subreapers are Linux's")

PROBE = textwrap.dedent(
    """
    import os, signal, subprocess, sys, time
    from ci_orchestrator.run.orphans import adopt_orphans, leftovers_possible

    print("before", leftovers_possible())  # not adopting yet: only a search could tell
    print("adopted", adopt_orphans())
    print("nothing", leftovers_possible())
    # A step that leaves a daemon in its own session, then ends.
    step = subprocess.Popen(["sh", "-c", "setsid sleep 30 </dev/null >/dev/null 2>&1 & echo $!"],
                            stdout=subprocess.PIPE, text=True)
    daemon = int(step.stdout.read())
    step.wait()
    time.sleep(0.2)  # the orphan is reparented when its parent ends
    print("parent", open(f"/proc/{daemon}/stat").read().split(")")[1].split()[1] == str(os.getpid()))
    print("daemon", leftovers_possible())
    os.kill(daemon, signal.SIGKILL)
    time.sleep(0.2)
    print("gone", leftovers_possible())
    print("reaped", not os.path.exists(f"/proc/{daemon}"))
    """
)


def test_orphans_of_steps_become_ours_and_are_seen_and_collected() -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    answers = dict(line.split() for line in done.stdout.splitlines())
    assert answers == {
        "before": "True",
        "adopted": "True",
        "nothing": "False",
        "parent": "True",
        "daemon": "True",
        "gone": "False",
        "reaped": "True",
    }


LEAVERS = """\
name: leavers
execution: parallel
fail-fast: false
steps:
  - id: cleared
    # No CI_ORCHESTRATOR_RUN_ID in its environment: only its parentage tells it is ours.
    run: |
      env -i /bin/sleep 393 >/dev/null 2>&1 &
      echo $! > cleared.pid
  - id: double-fork
    # Its grandchild leaves the step's session and process tree before the timeout stops it.
    timeout: 1
    run: |
      env -i setsid sh -c '/bin/sleep 394 </dev/null >/dev/null 2>&1 & echo $! > grandchild.pid' &
      sleep 300
"""


def alive(pid: int) -> psutil.Process | None:
    try:
        process = psutil.Process(pid)
        return process if process.status() != psutil.STATUS_ZOMBIE else None
    except psutil.Error:
        return None


def test_what_steps_leave_without_their_marker_is_stopped_at_the_end_of_the_run(workdir: Path) -> None:
    (workdir / "leavers.yml").write_text(LEAVERS)
    done = run_cli(workdir, "run", "leavers.yml", "-j", "2")
    pids = [int((workdir / name).read_text()) for name in ("cleared.pid", "grandchild.pid")]
    try:
        assert done.returncode == 1, done.stdout + done.stderr  # the double-fork step timed out
        deadline = time.monotonic() + 3.0  # a killed process may take a moment to leave the table
        while (left := [pid for pid in pids if alive(pid)]) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert left == []
    finally:
        for pid in pids:
            if (process := alive(pid)) is not None and "sleep" in process.name():
                process.kill()


SIDECAR = """\
name: sidecar
steps:
  - id: leaver
    run: |
      /bin/sleep 397 >/dev/null 2>&1 &
      echo $! > left.pid
"""


def test_what_the_process_had_before_the_run_is_not_stopped(workdir: Path) -> None:
    # The usual container entrypoint: after `exec`, the sidecar is already this process's child.
    (workdir / "sidecar.yml").write_text(SIDECAR)
    entrypoint = ("sh", "-c", 'sleep 1098 >/dev/null 2>&1 & echo $! > sidecar.pid; exec "$@"', "sh")
    done = run_cli(workdir, "run", "sidecar.yml", launcher=entrypoint)
    sidecar = int((workdir / "sidecar.pid").read_text())
    left = int((workdir / "left.pid").read_text())
    try:
        assert done.returncode == 0, done.stdout + done.stderr
        process = alive(sidecar)
        assert process is not None and process.cmdline() == ["sleep", "1098"]
        deadline = time.monotonic() + 3.0  # what the step left is stopped all the same
        while alive(left) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert alive(left) is None
    finally:
        for pid in (sidecar, left):
            if (process := alive(pid)) is not None and "sleep" in process.name():
                process.kill()
