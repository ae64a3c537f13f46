"""The console reporter fed by hand-built events, with real log files."""

from __future__ import annotations

import io
import os
import pty
import select
import subprocess
import sys
import time
from typing import TYPE_CHECKING, Any

import pytest

from ci_orchestrator.output.mode import OutputMode
from ci_orchestrator.reporters.console import FAILURE_LINES, ConsoleReporter
from ci_orchestrator.reporters.logs import strip_ansi
from ci_orchestrator.results import RunStats, RunStatus, Status, StepResult
from tests.helpers import cli_environment, run_result, start_cli, step_result

if TYPE_CHECKING:
    from pathlib import Path

NO_CI: dict[str, str] = {}


def log_file(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / f"{name}.log"
    path.write_text(text, encoding="utf-8")
    return path


def play(reporter: ConsoleReporter, results: list[StepResult], **extra: Any) -> None:
    """Start every step, then finish them in order (all running at once, as in a parallel run)."""
    reporter.run_started(run_id="run-1", playbook="ci", total=len(results))
    for result in results:
        reporter.step_started(instance_id=result.id, attempt=1)
    for result in results:
        reporter.step_finished(result)
    reporter.run_finished(run_result(*results, **extra))


def test_grouped_prints_each_log_whole_when_its_step_ends(tmp_path: Path) -> None:
    lint = log_file(tmp_path, "lint", "".join(f"lint line {i}\n" for i in range(50)))
    test = log_file(tmp_path, "test", "".join(f"test line {i}\n" for i in range(50)))
    out = io.StringIO()
    reporter = ConsoleReporter(out, environ=NO_CI)
    reporter.run_started(run_id="run-1", playbook="ci", total=2)
    reporter.step_started(instance_id="lint", attempt=1)
    reporter.step_started(instance_id="test (3.12)", attempt=1)
    # Output events are not wanted in grouped mode and must not leak into the console.
    reporter.step_output(instance_id="lint", chunk=b"live chunk\n")
    reporter.step_finished(step_result("test (3.12)", log=test))
    reporter.step_finished(step_result("lint", log=lint))
    reporter.waiting()  # as the scheduler says after each batch of events
    text = out.getvalue()
    lines = text.splitlines()
    assert "live chunk" not in text
    test_block = lines.index("test line 0")
    assert lines[test_block : test_block + 50] == [f"test line {i}" for i in range(50)]
    lint_block = lines.index("lint line 0")
    assert lines[lint_block : lint_block + 50] == [f"lint line {i}" for i in range(50)]
    assert test_block < lint_block  # in the order the steps ended
    assert lines[test_block - 1].startswith("passed") and "test (3.12)" in lines[test_block - 1]


def test_off_a_terminal_each_start_and_finish_is_one_line(tmp_path: Path) -> None:
    out = io.StringIO()
    play(
        ConsoleReporter(out, environ=NO_CI),
        [
            step_result("build", duration=1.5),
            step_result("docs", Status.SKIPPED, reason="fail-fast"),
            step_result("deps", Status.CACHED, duration=1.5),
        ],
    )
    lines = out.getvalue().splitlines()
    assert lines[0] == "ci: 3 steps (run run-1)"
    assert lines[1].split() == ["start", "build"]
    assert lines[4].split() == ["passed", "build", "in", "1.5s"]
    assert lines[5].split() == ["skipped", "docs", "(fail-fast)"]
    assert lines[6].split() == ["cached", "deps", "in", "1.5s"]


def test_a_huge_log_is_echoed_whole_and_in_order(tmp_path: Path) -> None:
    lines = [f"{i:06d} " + "x" * 90 for i in range(5000)]  # about 500 KB
    log = log_file(tmp_path, "big", "\n".join(lines) + "\n")
    out = io.StringIO()
    play(ConsoleReporter(out, environ=NO_CI), [step_result("big", log=log)])
    printed = out.getvalue().splitlines()
    first = printed.index(lines[0])
    assert printed[first : first + len(lines)] == lines


def test_stream_prefixes_lines_and_buffers_partial_ones_per_step(tmp_path: Path) -> None:
    out = io.StringIO()
    reporter = ConsoleReporter(out, mode=OutputMode.STREAM, environ=NO_CI)
    reporter.run_started(run_id="run-1", playbook="ci", total=2)
    reporter.step_started(instance_id="a", attempt=1)
    reporter.step_started(instance_id="b", attempt=1)
    reporter.step_output(instance_id="a", chunk=b"hello wo")
    reporter.step_output(instance_id="b", chunk=b"one\ntw")
    reporter.step_output(instance_id="a", chunk=b"rld\n\xc3")  # half of "é"
    reporter.step_output(instance_id="b", chunk=b"o\n")
    reporter.step_output(instance_id="a", chunk=b"\xa9t\xc3\xa9")
    reporter.step_finished(step_result("b"))
    reporter.step_finished(step_result("a"))
    reporter.waiting()
    lines = out.getvalue().splitlines()
    streamed = [line for line in lines if line.startswith("[")]
    assert streamed == ["[b] one", "[a] hello world", "[b] two", "[a] été"]
    finished_a = next(i for i, line in enumerate(lines) if line.split()[:2] == ["passed", "a"])
    assert lines.index("[a] été") < finished_a


def test_quiet_gives_a_line_per_step_and_the_log_of_a_failure(tmp_path: Path) -> None:
    good = log_file(tmp_path, "good", "".join("." * 80 + "\n" for _ in range(1700)))
    bad = log_file(tmp_path, "bad", "assertion exploded\n")
    out = io.StringIO()
    play(
        ConsoleReporter(out, mode=OutputMode.QUIET, environ=NO_CI),
        [
            step_result("good", log=good),
            step_result("bad", Status.FAILED, log=bad),
            step_result("deps", Status.CACHED, duration=1.5),
            step_result("docs", Status.SKIPPED, reason="fail-fast"),
        ],
    )
    lines = out.getvalue().splitlines()
    assert "." * 80 not in lines  # a passing step's log stays in its file
    assert not [line for line in lines if line.startswith("start")]
    assert lines[:6] == [
        "ci: 4 steps (run run-1)",
        "passed    good in 2.0s",
        "failed    bad after 2.0s: exit code 1",
        "assertion exploded",
        "          end of bad",
        "cached    deps in 1.5s",
    ]
    assert lines[6] == "skipped   docs (fail-fast)"
    assert "4 steps: 1 passed, 1 failed, 1 skipped, 1 cached" in lines
    assert f"step logs: {tmp_path}/" in lines
    assert lines[-1].startswith("ci failed")


def test_a_retried_instance_says_which_attempt_ended_it(tmp_path: Path) -> None:
    """A pass after a failure (`retry:`) shows on its own line, not only in the next run's
    comparison with this one."""
    out = io.StringIO()
    play(
        ConsoleReporter(out, mode=OutputMode.QUIET, environ=NO_CI),
        [
            step_result("flaky", attempts=2),
            step_result("broken", Status.FAILED, log=log_file(tmp_path, "broken", "no\n"), attempts=3),
            step_result("steady"),
        ],
    )
    lines = out.getvalue().splitlines()
    assert "passed    flaky in 2.0s (attempt 2)" in lines
    assert "failed    broken after 2.0s: exit code 1 (attempt 3)" in lines
    assert "passed    steady in 2.0s" in lines


def test_quiet_shows_the_end_of_a_long_failed_log_and_where_the_rest_is(tmp_path: Path) -> None:
    secret = "announced-secret-value"
    dots = "".join(f"{i:05d} " + "." * 70 + "\n" for i in range(2000))
    failures = "".join(f"E   failure detail {i} {secret}\n" for i in range(FAILURE_LINES - 1))
    log = log_file(tmp_path, "pytest", f"::add-mask::{secret}\n{dots}{failures}1 failed, 1999 passed\n")
    out = io.StringIO()
    play(
        ConsoleReporter(out, mode=OutputMode.QUIET, environ=NO_CI),
        [step_result("pytest", Status.FAILED, log=log)],
    )
    lines = out.getvalue().splitlines()
    start = lines.index(f"          ... the last {FAILURE_LINES} lines (2,001 earlier lines in {log}):")
    assert lines[start - 1].startswith("failed    pytest after")
    shown = lines[start + 1 : lines.index("          end of pytest")]
    assert shown == [
        *(f"E   failure detail {i} ***" for i in range(FAILURE_LINES - 1)),
        "1 failed, 1999 passed",
    ]
    assert not [line for line in lines if line.startswith("01999 ")]
    assert secret not in out.getvalue()  # announced in the part left out, masked in the rest


def test_quiet_shows_a_failed_log_of_its_length_whole(tmp_path: Path) -> None:
    text = "".join(f"line {i}\n" for i in range(FAILURE_LINES))
    log = log_file(tmp_path, "short", text)
    out = io.StringIO()
    play(
        ConsoleReporter(out, mode=OutputMode.QUIET, environ=NO_CI),
        [step_result("short", Status.FAILED, log=log)],
    )
    assert text in out.getvalue()
    assert "earlier line" not in out.getvalue()


def test_closing_summary(tmp_path: Path) -> None:
    noise = "".join(f"noise {i}\n" for i in range(100))
    lint_log = log_file(tmp_path, "lint", noise + "E501 line too long\n")
    steps = [
        step_result("format", group="checks"),
        step_result("types", group="checks"),
        step_result("lint", Status.FAILED, log=lint_log, group="checks"),
        step_result("spell", Status.CACHED, group="checks"),
        step_result("docs", group="checks"),
        step_result("test (3.12)", Status.TIMED_OUT, reason="timed out after 2m"),
        step_result("deploy", Status.SKIPPED, reason="needs failed"),
    ]
    out = io.StringIO()
    stats = RunStats(serial_duration=30.0, speedup=2.5, max_concurrency_seen=3)
    play(ConsoleReporter(out, environ=NO_CI, tail_lines=5), steps, seconds=12, stats=stats)
    text = out.getvalue()
    summary = text[text.index("Failed steps:") :]
    assert "group checks: 5 completed, 4 successful, 1 failed (lint)" in summary
    assert "7 steps: 3 passed, 1 failed, 1 timed-out, 1 skipped, 1 cached" in summary
    last = summary.splitlines()[-1]
    assert last.startswith("ci failed in 12.0s")
    assert "30.0s" in last and "2.50x" in last
    # The failed steps with the end of their logs, and no more of them than asked for.
    assert "E501 line too long" in summary and "noise 96" in summary and "noise 95" not in summary
    assert "timed out after 2m" in summary
    assert summary.index("lint") < summary.index("E501") < summary.index("test (3.12)")


def test_interrupted_run_says_by_what() -> None:
    out = io.StringIO()
    play(ConsoleReporter(out, environ=NO_CI), [], status=RunStatus.CANCELLED, interrupted_by=2)
    assert out.getvalue().splitlines()[-1].startswith("ci interrupted by SIGINT")


def test_secrets_are_masked_everywhere(tmp_path: Path) -> None:
    secret = "hunter2-s3cr3t"
    late = "late-secret-value"
    # A line far longer than one read, with the secret across the read boundary.
    long_line = "y" * (64 * 1024 - 5) + secret + "z" * 10
    log = log_file(tmp_path, "leak", f"token={secret}\n{long_line}\nlate={late}\n")
    for mode in OutputMode:
        out = io.StringIO()
        reporter = ConsoleReporter(out, mode=mode, secrets=[secret], environ=NO_CI)
        reporter.run_started(run_id="run-1", playbook="ci", total=1)
        reporter.step_started(instance_id="leak", attempt=1)
        reporter.step_output(instance_id="leak", chunk=f"say {secret[:5]}".encode())
        reporter.step_output(instance_id="leak", chunk=f"{secret[5:]} out loud\n".encode())
        result = step_result("leak", Status.FAILED, log=log)
        reporter.step_finished(result)
        reporter.run_finished(run_result(result, secrets=(secret, late)))
        text = out.getvalue()
        assert secret not in text, mode
        # Known only from the run result: masked from the summary on.
        assert late not in text[text.index("Failed steps:") :], mode
        assert "***" in text
        if mode is OutputMode.STREAM:
            assert "[leak] say *** out loud" in text
    out = io.StringIO()
    reporter = ConsoleReporter(out, mode=OutputMode.STREAM, secrets=[secret], environ=NO_CI)
    reporter.step_output(instance_id="x", chunk=secret[:3].encode())
    reporter.step_output(instance_id="x", chunk=(secret[3:] + "\n").encode())
    assert out.getvalue() == "[x] ***\n"


def test_missing_log_is_not_an_error(tmp_path: Path) -> None:
    out = io.StringIO()
    play(ConsoleReporter(out, environ=NO_CI), [step_result("gone", Status.FAILED, log=tmp_path / "nope.log")])
    assert "gone" in out.getvalue()


def test_a_console_that_cannot_show_every_character(tmp_path: Path) -> None:
    log = log_file(tmp_path, "intl", "caf\u00e9 \u2713\n")
    raw = io.BytesIO()
    out = io.TextIOWrapper(raw, encoding="ascii", write_through=True)
    play(ConsoleReporter(out, environ=NO_CI), [step_result("intl", log=log)])
    assert b"caf? ?" in raw.getvalue()


def read_until(fd: int, marker: str, *, timeout: float = 10.0) -> str:
    """What a terminal shows until `marker` appears (the live view keeps drawing: never "until quiet")."""
    seen = b""
    deadline = time.monotonic() + timeout
    while marker.encode() not in seen and time.monotonic() < deadline:
        if select.select([fd], [], [], 0.1)[0]:
            seen += os.read(fd, 65536)
    return strip_ansi(seen.decode("utf-8", errors="replace"))


def test_live_view_on_a_terminal(tmp_path: Path) -> None:
    master, slave = pty.openpty()
    log = log_file(tmp_path, "unit", "unit output line\n")
    with os.fdopen(slave, "w", encoding="utf-8") as terminal:
        reporter = ConsoleReporter(terminal, environ={"TERM": "xterm"})
        reporter.run_started(run_id="run-1", playbook="ci", total=3)
        reporter.step_started(instance_id="unit", attempt=1)
        reporter.step_started(instance_id="lint", attempt=1)
        reporter.step_finished(step_result("unit", log=log))
        seen = read_until(master, "1/3 done")
        reporter.step_finished(step_result("lint", Status.FAILED))
        seen += read_until(master, "2/3 done")
        reporter.run_finished(run_result(step_result("unit", log=log), step_result("lint", Status.FAILED)))
        seen += read_until(master, "ci failed")
    os.close(master)
    assert "unit output line" in seen
    assert seen.index("unit output line") < seen.rindex("1/3 done")
    assert "2/3 done, 0 running, 1 failed: lint" in seen
    assert "ci failed" in seen


def test_quiet_on_a_terminal_keeps_the_live_view_and_a_line_per_step(tmp_path: Path) -> None:
    master, slave = pty.openpty()
    log = log_file(tmp_path, "unit", "unit output line\n")
    failed_log = log_file(tmp_path, "lint", "E501 line too long\n")
    with os.fdopen(slave, "w", encoding="utf-8") as terminal:
        reporter = ConsoleReporter(terminal, mode=OutputMode.QUIET, environ={"TERM": "xterm"})
        unit, lint = step_result("unit", log=log), step_result("lint", Status.FAILED, log=failed_log)
        reporter.run_started(run_id="run-1", playbook="ci", total=2)
        reporter.step_started(instance_id="unit", attempt=1)
        reporter.step_started(instance_id="lint", attempt=1)
        reporter.step_finished(unit)
        seen = read_until(master, "1/2 done")
        reporter.step_finished(lint)
        reporter.run_finished(run_result(unit, lint))
        seen += read_until(master, "ci failed")
    os.close(master)
    assert "passed    unit" in seen
    assert "unit output line" not in seen
    assert seen.index("failed    lint") < seen.index("E501 line too long")


def test_a_terminal_under_ci_gets_plain_lines() -> None:
    master, slave = pty.openpty()
    with os.fdopen(slave, "w", encoding="utf-8") as terminal:
        play(ConsoleReporter(terminal, environ={"CI": "true"}), [step_result("unit")])
        seen = read_until(master, "ci passed")
    os.close(master)
    assert "done" not in seen
    assert "start" in seen


@pytest.mark.parametrize("mode", list(OutputMode))
def test_rich_is_not_imported_off_a_terminal(mode: OutputMode) -> None:
    code = (
        "import io, sys\n"
        "from ci_orchestrator.reporters.console import FAILURE_LINES, ConsoleReporter\n"
        "from ci_orchestrator.output.mode import OutputMode\n"
        f"r = ConsoleReporter(io.StringIO(), mode=OutputMode('{mode.value}'), environ={{}})\n"
        "r.run_started(run_id='x', playbook='ci', total=0)\n"
        "assert 'rich' not in sys.modules, 'rich imported'\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    subprocess.run([sys.executable, "-c", code], check=True, env=env)


def test_start_lines_reach_a_piped_console_while_the_step_runs(workdir: Path) -> None:
    """Off a terminal the lines are written in batches, yet each batch reaches the reader before
    the run waits: `start slow` shows while `slow` is still running."""
    (workdir / "ci.yml").write_text(
        "name: ci\nsteps:\n  - id: quick\n    run: echo hi\n  - id: slow\n    run: sleep 5\n"
    )
    env = {k: v for k, v in cli_environment(workdir, CI="true").items() if k != "PYTHONUNBUFFERED"}
    process = start_cli(
        workdir,
        "run",
        "ci.yml",
        "--output",
        "grouped",
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    assert process.stdout is not None
    seen = b""
    deadline = time.monotonic() + 30
    try:
        while b"start     slow" not in seen and time.monotonic() < deadline:
            ready, _, _ = select.select([process.stdout], [], [], 1.0)
            if ready:
                seen += os.read(process.stdout.fileno(), 4096)
        assert b"start     slow" in seen
        assert b"passed    slow" not in seen  # seen while it runs, not with its end
        assert b"passed    quick" in seen
    finally:
        process.terminate()  # the run stops its step and writes its reports
        process.wait(timeout=30)
