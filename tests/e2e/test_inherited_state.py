"""What a command inherits from whatever started it must not change its results. A parent can
leave SIGCHLD ignored (a daemon that did not want zombies, a `python` that set it before exec):
then the kernel reaps every child by itself and no exit status can be collected. A step that
fails is still reported failed, and what the steps themselves start is waited for as usual."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from typing import TYPE_CHECKING

import pytest

from tests.helpers import cli_environment

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")

# Started as a parent can leave it: SIGCHLD ignored, then the command exec'd.
IGNORING_SIGCHLD = textwrap.dedent(
    """
    import os, signal, sys
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    os.execv(sys.executable, [sys.executable, "-m", "ci_orchestrator", *sys.argv[1:]])
    """
)

PLAYBOOK = """\
name: inherited
steps:
  - id: fails
    run: exit 3
  - id: fails-elsewhere
    working-directory: sub
    run: exit 4
  - id: waits-for-its-own
    command: [{python}, -c, "import subprocess, sys; sys.exit(subprocess.run(['false']).returncode)"]
  - id: passes
    run: grep '^SigIgn:' /proc/self/status > sigign
"""


def test_a_parent_that_ignores_sigchld_changes_no_result(workdir: Path) -> None:
    (workdir / "sub").mkdir()
    (workdir / "p.yml").write_text(PLAYBOOK.format(python=json.dumps(sys.executable)))
    done = subprocess.run(
        [sys.executable, "-c", IGNORING_SIGCHLD, "run", "p.yml", "--no-fail-fast"],
        cwd=workdir,
        env=cli_environment(workdir),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    record = json.loads((workdir / ".ci-orchestrator/reports/run.json").read_text())
    steps = {step["id"]: (step["status"], step["exit_code"]) for step in record["steps"]}
    assert steps == {
        "fails": ("failed", 3),
        "fails-elsewhere": ("failed", 4),
        "waits-for-its-own": ("failed", 1),
        "passes": ("passed", 0),
    }
    # The steps do not inherit it either: theirs is the usual SIGCHLD.
    ignored = int((workdir / "sigign").read_text().split()[1], 16)
    assert not ignored & 1 << (17 - 1)


# The supervisor by itself, in a process that left SIGCHLD ignored (as a program embedding it
# might): each child's end then cannot be read, and is reported as such, never as a pass.
SUPERVISED = textwrap.dedent(
    """
    import json, os, signal, sys
    from pathlib import Path
    from ci_orchestrator.run.events import ProcessSpec
    from ci_orchestrator.run.supervisor import Supervisor

    signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    work = Path.cwd()
    (work / "elsewhere").mkdir()
    ended = {}
    with Supervisor(grace=0.5) as supervisor:
        for key, argv, cwd in [
            ("fails", ("sh", "-c", "exit 3"), work),
            ("passes", ("true",), work),
            ("fails-elsewhere", ("sh", "-c", "exit 4"), work / "elsewhere"),
        ]:
            supervisor.start(ProcessSpec(
                key=key, argv=argv, cwd=cwd, env=dict(os.environ), log_path=work / f"{key}.log",
                timeout=60,
            ))
        while supervisor.running:
            for event in supervisor.wait():
                ended[event.key] = [event.ok, event.exit_code, event.error]
    print(json.dumps(ended))
    """
)


def test_an_exit_status_that_cannot_be_read_is_an_error_not_a_pass(workdir: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", SUPERVISED],
        cwd=workdir,
        env=cli_environment(workdir),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    ended = json.loads(done.stdout)
    assert set(ended) == {"fails", "passes", "fails-elsewhere"}
    for key, (ok, exit_code, error) in ended.items():
        assert not ok, key
        assert exit_code is None, key
        assert "exit status was collected by something else" in error, key
