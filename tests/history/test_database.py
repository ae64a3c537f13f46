"""The run database: what `history` shows, the durations the scheduler reads, and its safety with
two processes writing at once or a process killed in the middle of a run."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import pytest

from ci_orchestrator.errors import UsageError
from ci_orchestrator.history.database import History, HistoryError
from ci_orchestrator.history.runs import RunState
from ci_orchestrator.results import RunResult, Status
from tests.helpers import REPO, T0, run_result, step_result

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path


def record(history: History, result: RunResult) -> None:
    history.start_run(
        run_id=result.run_id,
        playbook=result.playbook,
        playbook_path=result.playbook_path,
        started=result.started,
        total=len(result.steps),
    )
    history.record_steps(result.run_id, result.steps)
    history.finish_run(result)


@pytest.fixture
def history(tmp_path: Path) -> Iterator[History]:
    with History.open(tmp_path / "state" / "history.db") as opened:
        yield opened


def test_a_finished_run_reads_back_with_its_steps(history: History) -> None:
    steps = [
        step_result("lint", duration=2.5),
        step_result(
            "test (3.12)",
            Status.FAILED,
            duration=4.0,
            exit_code=3,
            reason="exit code 3",
            matrix={"python": "3.12"},
            log=".ci-orchestrator/logs/test.log",
        ),
        step_result("deploy", Status.SKIPPED, reason="needs test (3.12)"),
    ]
    record(history, run_result(*steps, run_id="20260105-100000-abcd", seconds=7.5))

    [summary] = history.runs()
    assert summary.run_id == "20260105-100000-abcd"
    assert summary.status is RunState.FAILED
    assert summary.started == T0
    assert summary.duration == 7.5
    assert summary.total == 3
    assert (summary.counts[Status.PASSED], summary.counts[Status.FAILED], summary.counts[Status.SKIPPED]) == (
        1,
        1,
        1,
    )

    detail = history.run("20260105-100000-abcd")
    assert detail is not None
    assert [one.id for one in detail.steps] == ["lint", "test (3.12)", "deploy"]
    failed = detail.steps[1]
    assert (failed.status, failed.exit_code, failed.reason) == (Status.FAILED, 3, "exit code 3")
    assert failed.matrix == {"python": "3.12"}
    assert failed.log == ".ci-orchestrator/logs/test.log"
    assert failed.finished == T0 + timedelta(seconds=4)
    assert detail.steps[2].exit_code is None


def test_finish_alone_records_everything(history: History) -> None:
    history.finish_run(run_result(step_result("a"), step_result("b"), run_id="only-finish"))
    detail = history.run("only-finish")
    assert detail is not None
    assert detail.summary.status is RunState.PASSED
    assert len(detail.steps) == 2


def test_runs_are_listed_newest_first_and_limited(history: History) -> None:
    for number in range(5):
        record(history, run_result(step_result("a"), run_id=f"run-{number}", offset=60 * number))
    assert [summary.run_id for summary in history.runs(limit=3)] == ["run-4", "run-3", "run-2"]


def test_a_run_id_prefix_finds_the_run(history: History) -> None:
    record(history, run_result(step_result("a"), run_id="20260105-aaaa"))
    record(history, run_result(step_result("a"), run_id="20260105-abbb"))
    found = history.run("20260105-b") or history.run("20260105-aa")
    assert found is not None
    assert found.summary.run_id == "20260105-aaaa"
    assert history.run("nope") is None
    with pytest.raises(UsageError, match="ambiguous"):
        history.run("20260105-a")


def test_durations_are_medians_of_recent_real_runs(history: History) -> None:
    timings = [10.0, 1.0, 2.0, 3.0, 4.0, 5.0]  # the oldest (10 s) falls out of the last five
    for number, seconds in enumerate(timings):
        steps = [
            step_result("build", duration=seconds),
            step_result("test", Status.FAILED if number % 2 else Status.PASSED, duration=seconds * 2),
            step_result("slow", Status.TIMED_OUT, duration=999.0),
            step_result("fetch", Status.CACHED, cached=True),
        ]
        record(history, run_result(*steps, run_id=f"run-{number}", offset=3600 * number))
    record(history, run_result(step_result("build", duration=500.0), run_id="other", playbook="nightly"))

    durations = history.durations("ci")
    assert durations == {"build": 3.0, "test": 6.0}
    assert history.durations("ci", last=2) == {"build": 4.5, "test": 9.0}
    assert history.durations("nightly") == {"build": 500.0}
    assert history.durations("unknown") == {}


def test_durations_of_named_instances_match_the_full_answer(history: History) -> None:
    for number in range(8):
        steps = [step_result("build", duration=number + 1.0), step_result("lint", duration=2.0 * number + 1)]
        if number < 2:  # only in the oldest runs: the reading must go back that far for it
            steps.append(step_result("docs", duration=7.0 + number))
        record(history, run_result(*steps, run_id=f"run-{number}", offset=3600 * number))

    everything = history.durations("ci")
    assert history.durations("ci", instances=["build", "docs"]) == {
        key: everything[key] for key in ("build", "docs")
    }
    assert history.durations("ci", instances=["lint"]) == {"lint": everything["lint"]}
    assert history.durations("ci", instances=["gone"]) == {}


def test_finishing_writes_the_steps_given_and_keeps_those_recorded(history: History) -> None:
    result = run_result(step_result("a"), step_result("b"), step_result("c", Status.SKIPPED), run_id="r")
    history.start_run(run_id="r", playbook="ci", playbook_path="playbooks/ci.yml", started=T0, total=3)
    history.record_steps("r", result.steps[:2])
    history.finish_run(result, steps=result.steps[2:])
    detail = history.run("r")
    assert detail is not None
    assert [(one.id, one.status) for one in detail.steps] == [
        ("a", Status.PASSED),
        ("b", Status.PASSED),
        ("c", Status.SKIPPED),
    ]


def test_runs_past_the_limit_leave_with_their_steps(
    history: History, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("ci_orchestrator.history.database.KEEP_RUNS", 3)
    for number in range(5):
        record(
            history,
            run_result(step_result("a"), step_result("b"), run_id=f"run-{number}", offset=3600 * number),
        )
    assert [summary.run_id for summary in history.runs()] == ["run-4", "run-3", "run-2"]
    with sqlite3.connect(tmp_path / "state" / "history.db") as database:
        kept = {row[0] for row in database.execute("SELECT run_id FROM steps")}
    assert kept == {"run-4", "run-3", "run-2"}


def test_an_unfinished_run_of_a_live_process_is_running(history: History) -> None:
    now = datetime.now(UTC)
    history.start_run(run_id="live", playbook="ci", playbook_path="playbooks/ci.yml", started=now, total=4)
    history.record_steps("live", [step_result("a")])
    [summary] = history.runs()
    assert summary.status is RunState.RUNNING
    assert summary.duration is None
    assert summary.counts[Status.PASSED] == 1


CHILD = textwrap.dedent(
    """
    import sys
    from datetime import UTC, datetime
    from ci_orchestrator.history.database import History
    from tests.helpers import step_result

    path, run_id, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    history = History.open(__import__("pathlib").Path(path))
    history.start_run(
        run_id=run_id, playbook="ci", playbook_path="ci.yml", started=datetime.now(UTC), total=count
    )
    print("started", flush=True)
    sys.stdin.readline()  # the go-ahead, so that writers really overlap
    number = 0
    while count < 0 or number < count:
        result = step_result(f"step-{number}", duration=0.01, matrix={"n": number}, reason="x" * 2000)
        history.record_steps(run_id, [result])
        number += 1
        if number == 20:
            print("writing", flush=True)
    """
)


def child(path: Path, run_id: str, count: int) -> subprocess.Popen[str]:
    environment = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, str(path), run_id, str(count)],
        stdout=subprocess.PIPE,
        stdin=subprocess.PIPE,
        text=True,
        env=environment,
    )


def go(writer: subprocess.Popen[str]) -> None:
    """Wait until the child has opened the database and started its run, then let it write."""
    assert writer.stdout is not None
    assert writer.stdin is not None
    assert writer.stdout.readline().strip() == "started"
    writer.stdin.write("go\n")
    writer.stdin.flush()


def test_a_recycled_pid_does_not_make_a_dead_run_look_alive(history: History) -> None:
    # The run says it began long before this process (which now holds its pid) started.
    history.start_run(run_id="old", playbook="ci", playbook_path="playbooks/ci.yml", started=T0, total=1)
    [summary] = history.runs()
    assert summary.status is RunState.INTERRUPTED


def test_two_processes_write_at_once(tmp_path: Path) -> None:
    path = tmp_path / "history.db"
    writers = [child(path, f"writer-{number}", 1000) for number in range(2)]
    for writer in writers:
        assert writer.stdout is not None
        assert writer.stdout.readline().strip() == "started"
    for writer in writers:
        assert writer.stdin is not None
        writer.stdin.write("go\n")
        writer.stdin.flush()
    for writer in writers:
        writer.communicate(timeout=60)
        assert writer.returncode == 0
    with History.open(path) as history:
        for number in range(2):
            detail = history.run(f"writer-{number}")
            assert detail is not None
            assert len(detail.steps) == 1000
            assert detail.summary.status is RunState.INTERRUPTED  # never finished: the child just exits


def test_a_run_killed_mid_write_reads_back_as_interrupted(tmp_path: Path) -> None:
    path = tmp_path / "history.db"
    writer = child(path, "killed", -1)  # writes steps until it is killed
    go(writer)
    assert writer.stdout is not None
    assert writer.stdout.readline().strip() == "writing"
    writer.send_signal(signal.SIGKILL)
    writer.wait(timeout=30)
    assert writer.returncode == -signal.SIGKILL

    with History.open(path) as history:
        detail = history.run("killed")
        assert detail is not None
        assert detail.summary.status is RunState.INTERRUPTED
        assert len(detail.steps) >= 20
        assert all(one.status is Status.PASSED for one in detail.steps)
        newest = (datetime.now(UTC) - T0).total_seconds()
        record(history, run_result(step_result("a"), run_id="after", offset=newest))
        assert history.runs()[0].run_id == "after"
    with sqlite3.connect(path) as check:
        assert check.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_a_damaged_database_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "history.db"
    path.write_bytes(b"this is not a database at all, just some bytes" * 100)
    with pytest.raises(HistoryError, match="damaged run database") as caught:
        History.open(path)
    assert caught.value.exit_code == 1
    assert str(path) in str(caught.value)


def test_a_database_from_a_newer_version_is_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "history.db"
    with sqlite3.connect(path) as newer:
        newer.execute("PRAGMA user_version=99")
    with pytest.raises(HistoryError, match="newer"):
        History.open(path)


def test_a_folder_that_cannot_be_created_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x", encoding="utf-8")
    with pytest.raises(HistoryError, match="cannot open"):
        History.open(blocker / "history.db")


def test_reopening_keeps_what_was_written(tmp_path: Path) -> None:
    path = tmp_path / "history.db"
    with History.open(path) as first:
        record(first, run_result(step_result("a", duration=2.0), run_id="kept"))
    with History.open(path) as second:
        assert [summary.run_id for summary in second.runs()] == ["kept"]
        assert second.durations("ci") == {"a": 2.0}
