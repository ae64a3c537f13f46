"""A run's own process adopts what its steps leave behind, and so can tell without searching
the process table whether anything is left."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from tests.helpers import REPO

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="child subreapers are Linux's")

PROBE = textwrap.dedent(
    """
    import os, signal, subprocess, sys, time
    from ci_orchestrator.orphans import adopt_orphans, leftovers_possible

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
