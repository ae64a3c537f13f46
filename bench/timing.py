"""Timing whole processes from outside, tools alternating run by run, each run checked.

`perf_counter` around `subprocess.run`: what a user waits for, start-up included. The machines
are shared and noisy, so the tools of one comparison take turns (A B C, A B C, ...) after one
warm-up run each, and a table quotes the median with the min and max.
"""

from __future__ import annotations

import contextlib
import os
import signal
import statistics
import subprocess
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from bench.peers import QUIET_ENV

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from pathlib import Path

# A tool whose warm-up run takes longer than this is not run again: that run is its only
# sample. turbo needs minutes where the others need seconds, and the suite must stay within
# its time budget; at that length a warm-up changes little.
SLOW_SECONDS = 15.0
STOPPED = "stopped after"


def environment(overlay: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of every timed process: the bench's own without CI variables (nor ours:
    CI_ORCHESTRATOR*) and without PYTHONPATH (ours is an installed command; where it runs from
    the snapshot instead, its peer's `env` sets PYTHONPATH), then `overlay` (a case's own, e.g.
    CI_ORCHESTRATOR_SERVER, on top of the peer's `env`)."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("GITHUB_", "CI_ORCHESTRATOR", "RUNNER_")) and name not in ("CI", "PYTHONPATH")
    }
    env.update(QUIET_ENV)
    env.update(overlay or {})
    return env


@dataclass(frozen=True, slots=True, kw_only=True)
class Case:
    """One tool in one comparison: how to prepare, run and check a run of it."""

    name: str
    argv: list[str]
    cwd: Path
    check: Callable[[], str] = lambda: ""  # why the run is wrong, or ""
    prepare: Callable[[int], None] = lambda _round: None  # untimed, before each run
    discard_output: bool = False  # stdout to /dev/null instead of a log file
    limit: float = 240.0  # seconds; a longer run is stopped and reported, not timed
    env: Mapping[str, str] = field(default_factory=dict)  # on top of `environment()`
    # Untimed, once after the warm-up run: waits for what the timed runs should find (ours' run
    # server); returns why it is not there, or "".
    ready: Callable[[], str] = lambda: ""


@dataclass(slots=True, kw_only=True)
class Timing:
    """The timed runs of one case, and the first thing found wrong with any of them."""

    name: str
    seconds: list[float] = field(default_factory=list)
    wrong: str = ""
    warmup_only: bool = False  # too slow to repeat: the warm-up run is the only sample
    stopped_at: float = 0.0  # the limit a run went past (it was stopped), else 0
    note: str = ""  # what `Case.ready` found missing after the warm-up

    @property
    def median(self) -> float:
        return statistics.median(self.seconds) if self.seconds else float("nan")

    @property
    def low(self) -> float:
        return min(self.seconds, default=float("nan"))

    @property
    def high(self) -> float:
        return max(self.seconds, default=float("nan"))

    @property
    def ok(self) -> bool:
        return bool(self.seconds) and not self.wrong


def _stop(started: list[int]) -> None:
    for pid in started:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)


def run_once(case: Case, round_number: int, log_folder: Path) -> tuple[float, str]:
    """Prepare, run and check one run: its seconds and what was wrong with it ("" when right)."""
    case.prepare(round_number)
    log_folder.mkdir(parents=True, exist_ok=True)
    log = log_folder / f"{case.name}.log"
    started: list[int] = []
    # Not `wait(timeout=)`: it polls with sleeps of up to 50 ms, which would round every time
    # up to that grain. A timer, started before the clock, stops a run past its limit, and
    # `wait()` blocks until the exact exit.
    stopper = threading.Timer(case.limit, _stop, args=(started,))
    stopper.start()
    with log.open("wb") as sink:
        start = time.perf_counter()
        # A session of its own, so a run over its limit is stopped with every process it started.
        process = subprocess.Popen(
            case.argv,
            cwd=case.cwd,
            env=environment(case.env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL if case.discard_output else sink,
            stderr=sink,
            start_new_session=True,
        )
        started.append(process.pid)
        returncode = process.wait()
        seconds = time.perf_counter() - start
        stopped = not stopper.is_alive()
        stopper.cancel()
        if stopped:
            return seconds, f"{STOPPED} {case.limit:.0f} s"
    if returncode:
        tail = log.read_bytes()[-400:].decode(errors="replace").strip().replace("\n", " ")
        return seconds, f"exit code {returncode}: {tail}"
    return seconds, case.check()


def compare(cases: list[Case], *, runs: int, log_folder: Path) -> dict[str, Timing]:
    """A warm-up run of every case (then its `ready`), then `runs` rounds in which each case runs
    once, in turn."""
    timings = {case.name: Timing(name=case.name) for case in cases}
    for case in cases:
        seconds, wrong = run_once(case, 0, log_folder)
        timing = timings[case.name]
        timing.wrong = wrong if not wrong or wrong.startswith(STOPPED) else f"warm-up: {wrong}"
        timing.stopped_at = case.limit if wrong.startswith(STOPPED) else 0.0
        if seconds > SLOW_SECONDS and not wrong:
            timing.seconds.append(seconds)
            timing.warmup_only = True
        elif not wrong:
            timing.note = case.ready()
    for round_number in range(1, runs + 1):
        for case in cases:
            timing = timings[case.name]
            if timing.warmup_only or timing.wrong:
                continue
            seconds, wrong = run_once(case, round_number, log_folder)
            timing.seconds.append(seconds)
            timing.wrong = wrong
            timing.stopped_at = case.limit if wrong.startswith(STOPPED) else 0.0
    return timings
