"""What the command writes reaches its reader whole, when a signal cuts a write short.

A write to a full pipe that a signal interrupts returns having written only part of its text:
a stop and continue (Ctrl-Z, then `fg`) does it, and so does a step's exit (SIGCHLD) while the
step loop starts another, signals blocked. Python run unbuffered (`python -u`, PYTHONUNBUFFERED,
which many CI images set) used to drop the rest of such a write without a word: lines of a
step's log, annotations, or two lines glued into one.

Here a real process is stopped and continued while it waits in a write to its full stdout (the
console's own thread) or stderr (a warning), and everything it wrote is read back.
"""

from __future__ import annotations

import os
import platform
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers import cli_environment, start_cli

WRITE = {"x86_64": 1, "aarch64": 64}.get(platform.machine())  # the write system call's number

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux") or WRITE is None, reason="reads a thread's system call in /proc"
)
BUFFERING = pytest.mark.parametrize("unbuffered", [True, False], ids=["unbuffered", "buffered"])
LINES = 4000  # of 100 characters: several times what a pipe holds (64 KiB)
PLAYBOOK = f"""\
name: p
steps:
  - id: big
    run: seq -f 'line %05g {"." * 89}' 1 {LINES}
"""


def environment(work: Path, *, unbuffered: bool, **extra: str) -> dict[str, str]:
    env = cli_environment(work, **extra)
    env.pop("PYTHONUNBUFFERED", None)
    if unbuffered:
        env["PYTHONUNBUFFERED"] = "1"
    return env


def waits_in_write(pid: int, fd: int) -> bool:
    """Whether a thread of process `pid` waits in a write to its descriptor `fd`."""
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            if (task / "syscall").read_text().startswith(f"{WRITE} {fd:#x} "):
                return True
        except PermissionError:
            pytest.skip("a thread's system call cannot be read here")
        except OSError:  # the thread has just ended
            continue
    return False


def full(write_end: int) -> bool:
    """Whether the pipe of `write_end` takes no more (every one of its pages is in use)."""
    _, writable, _ = select.select([], [write_end], [], 0)
    return not writable


def stopped(pid: int) -> bool:
    """Whether every thread of process `pid` is stopped."""
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            state = task.joinpath("stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:  # the thread has just ended
            continue
        if state != "T":
            return False
    return True


def stop_and_continue_in_write(process: subprocess.Popen[bytes], fd: int, write_end: int) -> None:
    """Once `process` waits in a write to `fd`, the pipe of `write_end` full (the write has begun:
    what came before it fills a page at most), stops it, and continues it once stopped: the write
    returns having written part of its text."""
    deadline = time.monotonic() + 60
    try:
        while not (full(write_end) and waits_in_write(process.pid, fd)):
            assert process.poll() is None, "ended before it filled the pipe"
            assert time.monotonic() < deadline, "never waited in a write to a full pipe"
            time.sleep(0.01)
        process.send_signal(signal.SIGSTOP)
        try:
            while not stopped(process.pid):
                assert time.monotonic() < deadline, "never stopped"
                time.sleep(0.01)
        finally:
            process.send_signal(signal.SIGCONT)
    except BaseException:
        process.kill()  # its pipe is never read: it would wait for ever
        raise


def read_all(read_end: int) -> bytes:
    with os.fdopen(read_end, "rb") as pipe:
        return pipe.read()


@BUFFERING
def test_a_stop_while_the_console_waits_on_its_reader_loses_no_line_of_a_log(
    workdir: Path, unbuffered: bool
) -> None:
    (workdir / "p.yml").write_text(PLAYBOOK)
    env = environment(workdir, unbuffered=unbuffered)
    read_end, write_end = os.pipe()
    try:
        process = start_cli(
            workdir,
            "run",
            "p.yml",
            "--output",
            "grouped",
            env=env,
            stdout=write_end,
            stderr=subprocess.DEVNULL,
        )
        stop_and_continue_in_write(process, 1, write_end)
    finally:
        os.close(write_end)  # the process's end is the only one left: its exit ends the text
    out = read_all(read_end)

    assert process.wait(timeout=120) == 0
    shown = [line for line in out.decode().splitlines() if line.startswith("line ")]
    assert shown == [f"line {n:05d} {'.' * 89}" for n in range(1, LINES + 1)]


@BUFFERING
def test_a_stop_while_a_warning_waits_on_its_reader_loses_none_of_it(
    workdir: Path, tmp_path: Path, unbuffered: bool
) -> None:
    """A warning longer than the pipe holds: one that names a path of 100,000 characters."""
    (workdir / "p.yml").write_text("name: p\nsteps:\n  - id: a\n    run: 'true'\n")
    output = "/" + "/".join(["o" * 99] * 1000)  # too long a name for any system call
    env = environment(workdir, unbuffered=unbuffered, GITHUB_ACTIONS="true", GITHUB_OUTPUT=output)
    read_end, write_end = os.pipe()
    try:
        with (tmp_path / "stdout").open("wb") as stdout:
            process = start_cli(workdir, "run", "p.yml", env=env, stdout=stdout, stderr=write_end)
        stop_and_continue_in_write(process, 2, write_end)
    finally:
        os.close(write_end)
    err = read_all(read_end)

    assert process.wait(timeout=120) == 0
    warnings = [line for line in err.decode().splitlines() if "warning:" in line]
    said = f"cannot write the step outputs to $GITHUB_OUTPUT ({output}): File name too long"
    assert warnings == [f"ci-orchestrator: warning: {said}"]
