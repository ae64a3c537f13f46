"""Storing a large result does not hold up the run: the real CLI, a step whose output takes a
second or more to store beside steps that time out or are interrupted meanwhile.

Timing is judged against the time this machine takes to store that output (measured first, in a
run of its own), never against fixed durations.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import run_cli, start_cli

OUTPUT_SIZE = 600 * 1024 * 1024  # sparse when prepared: only storing it writes its bytes

PLAYBOOK = """\
name: storing
execution: parallel
steps:
  - id: big
    inputs: ["seed.txt"]
    outputs: ["out/**"]
    run: mkdir -p out && mv prepared.bin out/big.bin
  - id: other
    {timeout}
    run: sleep 60
"""

pytestmark = pytest.mark.slow  # a few large stores: several seconds on a loaded machine


def prepare(work: Path) -> None:
    """The output `big` moves into place at once: its store starts as the run does."""
    (work / "out" / "big.bin").unlink(missing_ok=True)
    with (work / "prepared.bin").open("wb") as handle:
        handle.truncate(OUTPUT_SIZE)


def write_playbook(work: Path, *, timeout: float | None) -> None:
    (work / "playbooks").mkdir(exist_ok=True)
    line = f"timeout: {timeout:.3f}" if timeout is not None else "env: {}"
    (work / "playbooks" / "ci.yml").write_text(PLAYBOOK.format(timeout=line))


def run(work: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run_cli(work, "run", "--output", "quiet", *args)


def record(work: Path) -> dict[str, Any]:
    return json.loads((work / ".ci-orchestrator" / "reports" / "run.json").read_text())


def moment(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def steps(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {step["id"]: step for step in data["steps"]}


def store_time(work: Path) -> float:
    """How long storing big's output takes here: a run of `big` alone, from its end to the run's."""
    write_playbook(work, timeout=None)
    prepare(work)
    done = run(work, "--select", "big", "--cache-dir", str(work.parent / "calibration-cache"))
    assert done.returncode == 0, done.stderr
    data = record(work)
    return moment(data["finished"]) - moment(steps(data)["big"]["finished"])


@pytest.fixture
def work(workdir: Path) -> Path:
    (workdir / "seed.txt").write_text("seed\n")
    return workdir


def test_a_timeout_fires_while_a_large_result_is_being_stored(work: Path) -> None:
    storing = store_time(work)
    timeout = storing / 6
    write_playbook(work, timeout=timeout)
    prepare(work)

    done = run(work)
    assert done.returncode == 1, done.stderr
    data = record(work)
    big, other = steps(data)["big"], steps(data)["other"]
    assert (big["status"], other["status"]) == ("passed", "timed-out")
    store_began, store_ended = moment(big["finished"]), moment(data["finished"])
    # The other step's timeout was acted on in the first half of the store, not after it.
    assert moment(other["finished"]) < store_began + (store_ended - store_began) / 2
    assert other["duration"] < 3 * timeout
    prepare(work)
    assert run(work, "--select", "big").returncode == 0
    assert steps(record(work))["big"]["status"] == "cached"  # the store was not cut short


def test_an_interrupt_during_a_large_store_ends_the_run_at_once_and_stores_nothing(work: Path) -> None:
    storing = store_time(work)
    write_playbook(work, timeout=None)
    prepare(work)
    process = start_cli(
        work, "run", "--output", "quiet", stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    try:
        wait_until_reading(process.pid, work / "out" / "big.bin")
        interrupted = time.monotonic()
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=60)
        took = time.monotonic() - interrupted
    finally:
        process.kill()
        process.wait()
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr
    assert took < storing / 2, f"ended {took:.2f}s after the interrupt; a store takes {storing:.2f}s"
    assert steps(record(work))["big"]["status"] == "passed"
    assert not list((work / ".cache-dir" / "entries").rglob("*.val"))  # no partial archive either

    # Nothing half-written was left to read as a hit: big runs again, and is stored whole.
    prepare(work)
    assert run(work, "--select", "big").returncode == 0
    assert steps(record(work))["big"]["status"] == "passed"
    prepare(work)
    assert run(work, "--select", "big").returncode == 0
    assert steps(record(work))["big"]["status"] == "cached"


def wait_until_reading(pid: int, path: Path) -> None:
    """Until the process has `path` open (the store archiving it); polled: the test has no other way in."""
    deadline = time.monotonic() + 60
    descriptors = Path(f"/proc/{pid}/fd")
    while time.monotonic() < deadline:
        for descriptor in descriptors.iterdir() if descriptors.exists() else ():
            try:
                if os.readlink(descriptor) == str(path):
                    return
            except OSError:
                continue
        time.sleep(0.005)
    raise AssertionError(f"the run never opened {path}")
