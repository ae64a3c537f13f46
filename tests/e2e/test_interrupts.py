"""A signal outside the run's own supervision, as a user sends it to a real process: in start-up,
or once the reports are written, SIGTERM and SIGINT end the process quietly with 143 and 130, as
during a run, never by the signal itself nor with a traceback."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
import time
from typing import TYPE_CHECKING

import pytest

from tests.helpers import (
    assert_143_and_quiet,
    cli_environment,
    early_sigterms,
    entry_points,
    start_cli,
)

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")

PLAYBOOK = """\
name: p
steps:
  - id: a
    run: touch ran
"""
CODES = [(signal.SIGTERM, 143), (signal.SIGINT, 130)]
IDS = ["SIGTERM", "SIGINT"]


def caught_signals(pid: int) -> int:
    """The signals a process has handlers for (the SigCgt mask of /proc/PID/status)."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("SigCgt:"):
                    return int(line.split()[1], 16)
    except OSError:
        pass
    return 0


def quiet(stderr: str) -> bool:
    return "Traceback" not in stderr and "KeyboardInterrupt" not in stderr


@pytest.mark.parametrize(("signum", "code"), CODES, ids=IDS)
def test_a_signal_right_after_start_ends_the_process_with_its_code(
    workdir: Path, signum: int, code: int
) -> None:
    (workdir / "p.yml").write_text(PLAYBOOK)
    process = start_cli(workdir, "run", "p.yml", stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    # The first moment it handles SIGTERM itself: its own code has just begun, the run is
    # still far off (typer, the playbook, the plan).
    wanted = 1 << (signal.SIGTERM - 1)
    deadline = time.monotonic() + 30
    while not caught_signals(process.pid) & wanted and process.poll() is None:
        assert time.monotonic() < deadline
        time.sleep(0.0005)
    process.send_signal(signum)
    out, err = process.communicate(timeout=60)
    assert process.returncode == code, err
    assert quiet(err), err
    assert out == ""  # the run never began
    assert not (workdir / "ran").exists()


DRIVER = textwrap.dedent(
    """
    import os, sys
    from ci_orchestrator import pipeline
    from ci_orchestrator.__main__ import main

    signum, where = int(sys.argv[1]), sys.argv[2]
    original = getattr(pipeline, where)

    def signalled(*args, **kwargs):
        if where == "prepare":  # start-up: the playbook is about to be read
            os.kill(os.getpid(), signum)
        returned = original(*args, **kwargs)
        if where == "write_reports":  # the run is over and its reports written
            os.kill(os.getpid(), signum)
        return returned

    setattr(pipeline, where, signalled)
    sys.argv = ["ci-orchestrator", "run", "p.yml"]
    main()
    """
)


@pytest.mark.parametrize("where", ["prepare", "write_reports"])
@pytest.mark.parametrize(("signum", "code"), CODES, ids=IDS)
def test_a_signal_before_or_after_the_run_ends_the_process_with_its_code(
    workdir: Path, signum: int, code: int, where: str
) -> None:
    """The same real process, signalled at a chosen moment: by itself, at that point of its run."""
    (workdir / "p.yml").write_text(PLAYBOOK)
    done = subprocess.run(
        [sys.executable, "-c", DRIVER, str(int(signum)), where],
        cwd=workdir,
        env=cli_environment(workdir),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == code, done.stderr
    assert quiet(done.stderr), done.stderr
    record = workdir / ".ci-orchestrator/reports/run.json"
    if where == "prepare":
        assert not record.exists()
        assert not (workdir / "ran").exists()
    else:
        assert json.loads(record.read_text())["status"] == "passed"
        assert "p passed" in done.stdout  # the console's summary got out before the exit


def test_an_ignored_sighup_stays_ignored_while_steps_run(workdir: Path) -> None:
    """`nohup ci-orchestrator run`: a terminal closing while a step runs neither stops the step
    nor the run."""
    (workdir / "p.yml").write_text(
        "name: p\nsteps:\n  - id: a\n    run: touch started; sleep 1; touch finished\n"
    )
    nohup = ("sh", "-c", 'trap "" HUP; exec "$@"', "sh")  # what nohup does: SIGHUP ignored across exec
    process = start_cli(
        workdir, "run", "p.yml", launcher=nohup, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 30
    while not (workdir / "started").exists():
        assert time.monotonic() < deadline and process.poll() is None
        time.sleep(0.01)
    process.send_signal(signal.SIGHUP)
    _out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    assert (workdir / "finished").exists()


LONG = """\
name: p
steps:
  - id: a
    run: touch ran; sleep 30
"""


@pytest.mark.slow
def test_a_sigterm_in_the_first_fraction_of_a_second_gives_143_every_time(workdir: Path) -> None:
    (workdir / "p.yml").write_text(LONG)
    ended = early_sigterms(entry_points("run", "p.yml"), cwd=workdir, env=cli_environment(workdir), runs=40)
    assert_143_and_quiet(ended)
