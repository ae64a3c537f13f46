"""Faults while running, as a user meets them: ci-orchestrator as a real process, signalled,
killed, starved of disk, with steps that fork daemons, ignore SIGTERM, close their output or
leave zombies. Every case ends with no process of the run alive (found with psutil by the
run id in their environment), and with the reports written unless ci-orchestrator was killed.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest

from tests.helpers import run_cli, start_cli

REPORTS = Path(".ci-orchestrator/reports")
SETTLE = 3.0  # seconds a SIGKILLed process may take to leave the process table on a busy machine


# Runs the rest of its arguments with no file allowed past a size (argv[1] bytes): a disk that fills up.
_LIMITED = (
    "import os, resource, sys; limit = int(sys.argv[1]);"
    " resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit));"
    " os.execv(sys.argv[2], sys.argv[2:])"
)


def start(workdir: Path, *args: str, file_size_limit: int | None = None) -> subprocess.Popen[bytes]:
    """`ci-orchestrator run ARGS` in `workdir`, its console to files there."""
    limited = () if file_size_limit is None else (sys.executable, "-c", _LIMITED, str(file_size_limit))
    with (workdir / "console.txt").open("wb") as out, (workdir / "errors.txt").open("wb") as err:
        return start_cli(
            workdir, "run", *args, launcher=limited, stdin=subprocess.DEVNULL, stdout=out, stderr=err
        )


def finish(process: subprocess.Popen[bytes], timeout: float = 60) -> int:
    try:
        return process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        raise


def wait_for_files(workdir: Path, names: list[str], timeout: float = 30) -> str:
    """Waits until every step named has written its `ready-NAME` file; returns the run id."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all((workdir / f"ready-{name}").exists() for name in names):
            time.sleep(0.2)  # let the step reach the command after its marker
            return (workdir / f"ready-{names[0]}").read_text().strip()
        time.sleep(0.05)
    raise AssertionError(f"steps never became ready: {names}")


def processes_of(run_id: str) -> list[psutil.Process]:
    """Live processes (zombies excepted: they run nothing) that carry the run's id."""
    found = []
    for process in psutil.process_iter(["environ", "status"], ad_value=None):
        environ = process.info["environ"] or {}
        if environ.get("CI_ORCHESTRATOR_RUN_ID") == run_id and process.info["status"] != psutil.STATUS_ZOMBIE:
            found.append(process)
    return found


def survivors(run_id: str, settle: float = SETTLE) -> list[str]:
    deadline = time.monotonic() + settle
    while (alive := processes_of(run_id)) and time.monotonic() < deadline:
        time.sleep(0.1)
    described = []
    for process in alive:
        try:
            described.append(f"{process.pid} {' '.join(process.cmdline())}")
        except psutil.Error:
            continue
    return described


def kill_run(run_id: str) -> None:
    """Test clean-up: whatever a failed assertion left behind."""
    for process in processes_of(run_id):
        try:
            process.kill()
        except psutil.Error:
            continue


def record(workdir: Path) -> dict[str, object]:
    data: dict[str, object] = json.loads((workdir / REPORTS / "run.json").read_text())
    return data


def statuses(workdir: Path) -> dict[str, tuple[str, int | None, str | None]]:
    steps = record(workdir)["steps"]
    assert isinstance(steps, list)
    return {step["id"]: (step["status"], step["exit_code"], step["reason"]) for step in steps}


def playbook(workdir: Path, name: str, text: str) -> str:
    (workdir / f"{name}.yml").write_text(textwrap.dedent(text))
    return f"{name}.yml"


# A marker line each step writes once it is where the test wants it.
READY = 'echo "$CI_ORCHESTRATOR_RUN_ID" > "ready-$CI_ORCHESTRATOR_STEP_ID"'

HOSTILE_STEPS = f"""\
name: hostile
execution: parallel
{{secrets}}
steps:
  - id: daemon
    run: |
      setsid sleep 300 < /dev/null > /dev/null 2>&1 &
      {READY}
      sleep 300
  - id: closer
    run: |
      exec 1>&- 2>&-
      {READY}
      sleep 300
  - id: zombie
    command:
      - python3
      - -c
      - |
        import os, subprocess, time
        if os.fork() == 0:
            os._exit(0)
        subprocess.run(["bash", "-c", '{READY}'])
        time.sleep(300)
  - id: later
    needs: [daemon, closer, zombie]
    run: echo never
"""


@pytest.mark.parametrize(
    ("signum", "code", "secrets"),
    [
        (signal.SIGINT, 130, False),
        (signal.SIGINT, 130, True),  # output through the masking pipe
        (signal.SIGTERM, 143, False),
        (signal.SIGHUP, 129, False),
    ],
    ids=["SIGINT", "SIGINT-masked", "SIGTERM", "SIGHUP"],
)
def test_a_signal_cancels_running_steps_writes_reports_and_leaves_nothing(
    workdir: Path, signum: int, code: int, secrets: bool
) -> None:
    text = HOSTILE_STEPS.replace("{secrets}", "secrets: [TOKEN]\nenv: {TOKEN: tok-123}" if secrets else "")
    process = start(workdir, playbook(workdir, "hostile", text), "-j", "4")
    run_id = wait_for_files(workdir, ["daemon", "closer", "zombie"])
    try:
        process.send_signal(signum)
        assert finish(process) == code
        assert survivors(run_id) == []
    finally:
        kill_run(run_id)
    steps = statuses(workdir)
    assert {name: steps[name][0] for name in ("daemon", "closer", "zombie")} == dict.fromkeys(
        ("daemon", "closer", "zombie"), "cancelled"
    )
    assert steps["later"][0] == "skipped"
    assert record(workdir)["status"] == "cancelled"
    assert (workdir / REPORTS / "junit.xml").stat().st_size > 0
    summary = (workdir / REPORTS / "summary.md").read_text()
    assert f"Interrupted by {signal.Signals(signum).name}" in summary


STUBBORN = f"""\
name: stubborn
execution: parallel
steps:
  - id: stubborn
    run: |
      trap '' TERM
      {READY}
      sleep 300
  - id: daemon
    run: |
      setsid bash -c "trap '' TERM; sleep 300" < /dev/null > /dev/null 2>&1 &
      {READY}
      sleep 300
"""


def test_a_second_sigint_kills_at_once(workdir: Path) -> None:
    process = start(workdir, playbook(workdir, "stubborn", STUBBORN), "-j", "2")
    run_id = wait_for_files(workdir, ["stubborn", "daemon"])
    try:
        process.send_signal(signal.SIGINT)
        time.sleep(0.5)
        assert process.poll() is None  # waiting for steps that ignore SIGTERM
        second = time.monotonic()
        process.send_signal(signal.SIGINT)
        assert finish(process) == 130
        assert time.monotonic() - second < 4.0  # well inside the 5 s grace a single Ctrl-C gives
        assert survivors(run_id) == []
    finally:
        kill_run(run_id)
    assert {status for status, _, _ in statuses(workdir).values()} == {"cancelled"}


@pytest.mark.slow  # waits out the 5 s grace before SIGKILL
def test_steps_that_ignore_sigterm_are_killed_after_the_grace(workdir: Path) -> None:
    process = start(workdir, playbook(workdir, "stubborn", STUBBORN), "-j", "2")
    run_id = wait_for_files(workdir, ["stubborn", "daemon"])
    try:
        signalled = time.monotonic()
        process.send_signal(signal.SIGTERM)
        assert finish(process) == 143
        assert time.monotonic() - signalled >= 4.0  # they had their grace
        assert survivors(run_id) == []
    finally:
        kill_run(run_id)
    steps = statuses(workdir)
    assert steps["stubborn"][:2] == ("cancelled", 137)


def test_steps_that_leave_daemons_zombies_or_close_their_output_pass_and_leave_nothing(
    workdir: Path,
) -> None:
    text = f"""\
    name: leavers
    execution: parallel
    secrets: [TOKEN]
    env: {{TOKEN: tok-123}}
    steps:
      - id: daemon
        run: |
          setsid sleep 300 < /dev/null > /dev/null 2>&1 &
          nohup sleep 300 > /dev/null 2>&1 &
          echo started
      - id: closer
        run: |
          echo before
          exec 1>&- 2>&-
          sleep 0.2
      - id: zombie
        command: [python3, -c, "import os\\nif os.fork() == 0: os._exit(0)\\nprint('left a zombie')"]
      - id: chatty-daemon
        run: |
          setsid bash -c 'while true; do echo tok-123; done' < /dev/null &
          {READY}
    """
    started = time.monotonic()
    process = start(workdir, playbook(workdir, "leavers", text), "-j", "4")
    assert finish(process) == 0, (workdir / "errors.txt").read_text()
    assert time.monotonic() - started < 60  # not held up by what the steps left running
    run_id = (workdir / "ready-chatty-daemon").read_text().strip()
    try:
        assert survivors(run_id) == []
    finally:
        kill_run(run_id)
    assert {status for status, _, _ in statuses(workdir).values()} == {"passed"}
    logs = "".join(path.read_text() for path in (workdir / ".ci-orchestrator/logs" / run_id).glob("*.log"))
    assert "tok-123" not in logs


CACHED = """\
name: cached
steps:
  - id: build
    run: echo built > built.txt
    inputs: [src.txt]
    outputs: [built.txt]
  - id: slow
    run: |
      {ready}
      sleep 300
"""


def test_sigkill_mid_run_then_the_next_run_works_and_history_says_interrupted(workdir: Path) -> None:
    (workdir / "src.txt").write_text("v1")
    name = playbook(workdir, "cached", CACHED.replace("{ready}", READY))
    process = start(workdir, name)
    run_id = wait_for_files(workdir, ["slow"])
    try:
        process.kill()
        process.wait()
        assert processes_of(run_id)  # the step outlives its parent: no one could stop it

        # The next run: the cache entry stored before the kill is used, the lost run's
        # leftovers are stopped, and the history reads back whole.
        (workdir / "built.txt").unlink()
        text = CACHED.replace("{ready}", "true").replace("sleep 300", "true")
        rerun = start(workdir, playbook(workdir, "cached", text))
        assert finish(rerun) == 0, (workdir / "errors.txt").read_text()
        assert survivors(run_id) == []
    finally:
        kill_run(run_id)
    assert statuses(workdir)["build"][0] == "cached"
    assert (workdir / "built.txt").read_text() == "built\n"
    assert "left running by an interrupted run" in (workdir / "errors.txt").read_text()
    history = run_cli(workdir, "history")
    assert history.returncode == 0, history.stderr
    (line,) = [line for line in history.stdout.splitlines() if line.startswith(run_id)]
    assert "interrupted" in line


SIMPLE = """\
name: simple
steps:
  - id: build
    run: echo hello
    inputs: [simple.yml]
  - id: test
    run: echo tested
"""


@pytest.mark.parametrize(
    ("blocked", "code", "expected"),
    [
        (".ci-orchestrator/logs", 1, "cannot write the log file"),
        (".cache-blocked", 0, "running without it"),
        (".ci-orchestrator/history.db/x", 0, "run history unavailable"),
        (".ci-orchestrator/reports", 0, "cannot write report"),
    ],
    ids=["log-folder", "cache-folder", "history", "reports-folder"],
)
def test_unwritable_state_folders_give_a_clear_message(
    workdir: Path, blocked: str, code: int, expected: str
) -> None:
    # Tests run as root, which writes through permissions: a file (or a folder, for the history
    # database) stands where the folder (or file) should be.
    path = workdir / blocked
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("in the way")
    args = ["--cache-dir", str(path)] if "cache" in blocked else []
    process = start(workdir, playbook(workdir, "simple", SIMPLE), *args)
    assert finish(process) == code
    errors = (workdir / "errors.txt").read_text() + (workdir / "console.txt").read_text()
    assert expected in errors
    assert "Traceback" not in errors
    if blocked.endswith("reports"):
        return
    steps = statuses(workdir)
    if code:
        assert steps["build"][0] == "failed"
        assert expected in str(steps["build"][2])
    else:
        assert {status for status, _, _ in steps.values()} == {"passed"}


@pytest.mark.parametrize("closed", [">&-", "2>&-", ">&- 2>&-"])
def test_a_closed_console_still_runs_and_writes_the_reports(workdir: Path, closed: str) -> None:
    name = playbook(workdir, "simple", SIMPLE)
    closing = ("bash", "-c", f'exec "$@" {closed}', "bash")
    done = run_cli(workdir, "run", name, "--no-cache", launcher=closing, timeout=60)
    assert done.returncode == 0
    assert {status for status, _, _ in statuses(workdir).values()} == {"passed"}
    assert (workdir / REPORTS / "junit.xml").is_file()


STALLED = """\
name: stalled
execution: parallel
steps:
  - id: chatty
    run: head -c 2000000 /dev/zero | tr '\\0' x; echo
  - id: sleeper
    timeout: 2s
    run: sleep 60
"""


def test_a_console_that_stops_reading_does_not_hold_up_timeouts(workdir: Path) -> None:
    # The console is a pipe nobody reads for a while: 2 MB of log does not fit in it.
    read_fd, write_fd = os.pipe()
    name = playbook(workdir, "stalled", STALLED)
    process = start_cli(
        workdir, "run", name, "--no-cache", "--output", "grouped", stdout=write_fd, stderr=subprocess.DEVNULL
    )
    os.close(write_fd)
    time.sleep(12)  # nobody reads
    with os.fdopen(read_fd, "rb") as console:
        shown = console.read()
    assert process.wait(timeout=60) == 1
    steps = {step["id"]: step for step in record(workdir)["steps"]}
    assert steps["sleeper"]["status"] == "timed-out"
    # Stopped at its deadline, not when the console was read again, 12 s after the start.
    assert steps["sleeper"]["duration"] < 8
    assert shown.count(b"x" * 1000) >= 1999  # and every line of the log still reached it


BIG = """\
name: big
{secrets}
steps:
  - id: big
    run: head -c 1000000 /dev/zero | tr '\\0' x; echo
  - id: after
    run: echo after
"""


@pytest.mark.parametrize("masked", [False, True], ids=["direct", "masked"])
def test_a_full_disk_is_reported_and_the_reports_that_fit_are_written(workdir: Path, masked: bool) -> None:
    # RLIMIT_FSIZE on ci-orchestrator (and so on its steps) stands in for a disk that fills up:
    # no file may grow past 64 KiB.
    secrets = "secrets: [TOKEN]\nenv: {TOKEN: tok-123}" if masked else ""
    name = playbook(workdir, "big", BIG.replace("{secrets}", secrets))
    process = start(workdir, name, "--output", "quiet", file_size_limit=1 << 16)
    code = finish(process)
    errors = (workdir / "errors.txt").read_text()
    assert "Traceback" not in errors
    steps = statuses(workdir)  # the run record is small: it is always written
    if masked:
        # Output passes through ci-orchestrator, which writes what fits and says so.
        assert code == 0
        assert steps["big"] == ("passed", 0, "log incomplete: File too large")
    else:
        # The step writes its own log and the kernel stops it at the limit.
        assert code == 1
        assert steps["big"] == ("failed", 153, "exit code 153 (killed by SIGXFSZ)")
    for report in ("junit.xml", "summary.md"):
        written = (workdir / REPORTS / report).exists()
        assert written or f"{report}: cannot write report: File too large" in errors


GIGABYTE = """\
name: gigabyte
{secrets}
steps:
  - id: flood
    run: head -c 1073741824 /dev/zero | tr '\\0' 'x' | fold -w 100
"""


def peak_memory(process: subprocess.Popen[bytes]) -> int:
    """ci-orchestrator's own peak resident memory in bytes: the kernel's high-water mark
    (VmHWM) of that one process, read until it exits. The step runs in a child process with
    its own memory, so none of the step's memory is counted."""
    peak = 0
    status = Path(f"/proc/{process.pid}/status")
    while process.poll() is None:
        try:
            text = status.read_text()
        except OSError:
            break
        for line in text.splitlines():
            if line.startswith("VmHWM:"):
                peak = max(peak, int(line.split()[1]) * 1024)
        time.sleep(0.05)
    return peak


@pytest.mark.slow
@pytest.mark.skipif(os.environ.get("CI_ORCHESTRATOR_SLOW") != "1", reason="set CI_ORCHESTRATOR_SLOW=1")
@pytest.mark.parametrize("masked", [False, True], ids=["direct", "masked"])
def test_a_gigabyte_of_output_keeps_memory_under_100_mb(workdir: Path, masked: bool) -> None:
    secrets = "secrets: [TOKEN]\nenv: {TOKEN: tok-123}" if masked else ""
    name = playbook(workdir, "gigabyte", GIGABYTE.replace("{secrets}", secrets))
    process = start(workdir, name, "--no-cache")
    peak = peak_memory(process)
    assert finish(process, timeout=600) == 0, (workdir / "errors.txt").read_text()[-2000:]
    print(f"peak memory {'masked' if masked else 'direct'}: {peak / 2**20:.1f} MiB")
    assert 0 < peak < 100 * 2**20
    (log,) = (workdir / ".ci-orchestrator/logs").glob("*/flood.log")
    assert log.stat().st_size == 2**30 + 2**30 // 100  # every byte, a newline per 100


def _steps(workdir: Path, count: int) -> str:
    lines = [f"name: scale{count}", "execution: parallel", "steps:"]
    lines += [f"  - {{id: s{index}, command: [true]}}" for index in range(count)]
    (workdir / f"scale{count}.yml").write_text("\n".join(lines) + "\n")
    return f"scale{count}.yml"


def _timed(workdir: Path, *args: str) -> float:
    started = time.perf_counter()
    done = run_cli(workdir, *args)
    assert done.returncode == 0, done.stderr
    return time.perf_counter() - started


@pytest.mark.slow
@pytest.mark.skipif(os.environ.get("CI_ORCHESTRATOR_SLOW") != "1", reason="set CI_ORCHESTRATOR_SLOW=1")
def test_plan_and_run_overhead_grow_linearly_to_ten_thousand_steps(workdir: Path) -> None:
    base = _timed(workdir, "plan", _steps(workdir, 1), "--format", "json")  # start-up alone
    per_step = {}
    for count in (1000, 10_000):
        name = _steps(workdir, count)
        plan = _timed(workdir, "plan", name, "--format", "json") - base
        run = _timed(workdir, "run", name, "-j", "8", "--no-cache", "--output", "quiet") - base
        per_step[count] = (plan / count, run / count)
        print(f"{count} steps: plan {plan:.2f}s, run {run:.2f}s ({run / count * 1000:.2f} ms/step)")
    # Linear: ten times the steps costs about ten times as much (a quadratic part would cost ten
    # times as much per step). The bound leaves room for a busy machine; at 1,000 steps the
    # plan's own time is close to the start-up noise, hence its floor of 0.1 ms a step.
    assert per_step[10_000][0] < 4 * max(per_step[1000][0], 1e-4)
    assert per_step[10_000][1] < 4 * per_step[1000][1]
