"""The run history carried between machines: a compact copy written out (`history export`), its
runs added to another history (`history import`), a database of the first schema upgraded, and
a copy that is not of the history's form read as the untrusted file it is."""

from __future__ import annotations

import json
import sqlite3
from datetime import timedelta
from typing import TYPE_CHECKING

import pytest

from ci_orchestrator.history import transfer
from ci_orchestrator.history.database import SCHEMA_VERSION, History, HistoryError
from ci_orchestrator.results import Status, TestCaseResult, TestOutcome, TestResults
from tests.helpers import T0, cli_environment, run_cli, run_result, step_result

if TYPE_CHECKING:
    from pathlib import Path


BROKEN = TestResults.of([TestCaseResult(classname="suite", name="test_x", outcome=TestOutcome.FAILED)])


def fill(path: Path, runs: int, *, prefix: str = "run") -> list[str]:
    ids = []
    with History.open(path) as history:
        for index in range(runs):
            run_id = f"{prefix}-{index:03d}"
            steps = [
                step_result("lint", log=f".ci-orchestrator/logs/{run_id}/lint.log", duration=1.0 + index),
                step_result("test", Status.FAILED, reason="exit code 1", tests=BROKEN),
            ]
            history.finish_run(
                run_result(*steps, run_id=run_id, offset=index * 60.0, branch="main", commit="c")
            )
            ids.append(run_id)
    return ids


def run_ids(path: Path) -> list[str]:
    with History.open(path) as history:
        return [run.run_id for run in history.runs(limit=1000)]


def test_an_export_keeps_the_newest_finished_runs_and_what_comparisons_read(tmp_path: Path) -> None:
    source = tmp_path / "a" / "history.db"
    ids = fill(source, 8)
    with History.open(source) as history:
        history.start_run(
            run_id="unfinished", playbook="ci", playbook_path="p", started=T0 + timedelta(days=1), total=1
        )
        assert transfer.export_runs(history, tmp_path / "out" / "history.db", keep=5) == 5
    copy = tmp_path / "out" / "history.db"
    assert sorted(path.name for path in copy.parent.iterdir()) == ["history.db"]  # one file
    assert run_ids(copy) == list(reversed(ids[-5:]))
    with History.open(copy) as history:
        detail = history.run(ids[-1])
        assert detail is not None
        assert [(step.id, step.status, step.duration) for step in detail.steps] == [
            ("lint", Status.PASSED, 8.0),
            ("test", Status.FAILED, 2.0),
        ]
        assert all(step.log is None and step.started is None for step in detail.steps)
        assert history.durations("ci") == {"lint": 6.0, "test": 2.0}
        # The tests a comparison reads travel too.
        (kept,) = history.read("SELECT tests FROM steps WHERE run_id = ? AND id = 'test'", (ids[-1],))
    assert json.loads(kept["tests"]) == {
        "total": 1,
        "passed": 0,
        "failed": 1,
        "skipped": 0,
        "failing": ["suite.test_x"],
    }


def test_an_import_adds_the_runs_this_history_lacks(tmp_path: Path) -> None:
    other = tmp_path / "other.db"
    fill(other, 3, prefix="there")
    here = tmp_path / "here" / "history.db"
    fill(here, 2, prefix="here")
    with History.open(here) as history:
        assert transfer.import_runs(history, other) == (3, 0)
        assert transfer.import_runs(history, other) == (0, 3)  # once only
    assert len(run_ids(here)) == 5


def test_a_history_of_the_first_schema_is_upgraded_and_imported(tmp_path: Path) -> None:
    old = tmp_path / "old.db"
    connection = sqlite3.connect(old)
    connection.executescript(
        """
        CREATE TABLE runs (run_id TEXT PRIMARY KEY, playbook TEXT NOT NULL, playbook_path TEXT NOT NULL,
            started TEXT NOT NULL, finished TEXT, status TEXT, total INTEGER NOT NULL, host TEXT NOT NULL,
            pid INTEGER NOT NULL);
        CREATE TABLE steps (run_id TEXT NOT NULL, id TEXT NOT NULL, step TEXT NOT NULL, matrix TEXT NOT NULL,
            status TEXT NOT NULL, exit_code INTEGER, attempts INTEGER NOT NULL, started TEXT, finished TEXT,
            duration REAL NOT NULL, cached INTEGER NOT NULL, reason TEXT, log TEXT, PRIMARY KEY (run_id, id));
        INSERT INTO runs VALUES ('r1', 'ci', 'p', '2026-01-01T00:00:00.000000Z',
            '2026-01-01T00:01:00.000000Z', 'passed', 1, 'h', 1);
        INSERT INTO steps VALUES ('r1', 'lint', 'lint', '{}', 'passed', 0, 1, NULL, NULL, 2.0, 0, NULL, NULL);
        PRAGMA user_version = 1;
        """
    )
    connection.close()
    here = tmp_path / "here.db"
    with History.open(here) as history:
        assert transfer.import_runs(history, old) == (1, 0)
    with History.open(here) as history:  # its steps had no tests: none are known
        assert history.read("SELECT tests FROM steps")[0]["tests"] is None
    with History.open(old) as history:  # opened here: upgraded in place, its run kept
        history.finish_run(run_result(step_result("lint", tests=BROKEN), run_id="r2", branch="main"))
        assert [run.run_id for run in history.runs()] == ["r2", "r1"]
        assert history.read("SELECT tests FROM steps WHERE run_id = 'r2'")[0]["tests"] is not None
    assert sqlite3.connect(old).execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


@pytest.mark.parametrize(
    "damage",
    [
        "UPDATE steps SET status = 'exploded' WHERE id = 'lint'",
        "UPDATE steps SET duration = 'long' WHERE id = 'lint'",
        "UPDATE steps SET matrix = '[1]' WHERE id = 'lint'",
        "UPDATE runs SET started = 'yesterday'",
        "UPDATE runs SET matrix_filters = '{\"a\": 1}'",
        "UPDATE runs SET status = NULL",
        "UPDATE steps SET tests = '{\"total\": \"many\"}' WHERE id = 'test'",
        "UPDATE steps SET tests = '[' || replace(hex(zeroblob(5000)), '00', '[') || ']' WHERE id = 'test'",
    ],
)
def test_runs_not_of_the_historys_form_are_passed_over(tmp_path: Path, damage: str) -> None:
    other = tmp_path / "other.db"
    fill(other, 1)
    connection = sqlite3.connect(other)
    connection.execute(damage)
    connection.commit()
    connection.close()
    with History.open(tmp_path / "here.db") as history:
        assert transfer.import_runs(history, other) == (0, 1)
        assert history.runs() == []


@pytest.mark.parametrize("content", [b"not a database at all" * 100, b""])
def test_a_file_that_is_no_run_database_is_a_clear_error(tmp_path: Path, content: bytes) -> None:
    other = tmp_path / "other.db"
    other.write_bytes(content)
    with History.open(tmp_path / "here.db") as history, pytest.raises(HistoryError) as caught:
        transfer.import_runs(history, other)
    assert str(other) in str(caught.value)


def test_the_history_travels_from_one_folder_to_another(tmp_path: Path) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    for work in (first, second):
        (work / "playbooks").mkdir(parents=True)
        (work / "playbooks" / "ci.yml").write_text("name: demo\nsteps:\n  - id: a\n    run: 'true'\n")
    assert run_cli(first, "run").returncode == 0
    exported = run_cli(first, "history", "export", str(tmp_path / "carried" / "history.db"))
    assert exported.returncode == 0, exported.stderr
    assert exported.stdout.startswith("exported 1 run to ")

    imported = run_cli(second, "history", "import", str(tmp_path / "carried" / "history.db"))
    assert imported.returncode == 0, imported.stderr
    assert imported.stdout.strip() == f"imported 1 run from {tmp_path / 'carried' / 'history.db'}"
    assert run_cli(second, "run").returncode == 0
    before = json.loads((first / ".ci-orchestrator/reports/run.json").read_text(encoding="utf-8"))
    after = json.loads((second / ".ci-orchestrator/reports/run.json").read_text(encoding="utf-8"))
    assert after["comparison"]["baseline"]["run_id"] == before["run_id"]

    garbage = tmp_path / "garbage.db"
    garbage.write_text("nothing\n" * 200)
    refused = run_cli(second, "history", "import", str(garbage), env=cli_environment(second))
    assert refused.returncode == 1
    assert "Traceback" not in refused.stderr
    assert f"{garbage}: not a run database this version reads" in refused.stderr


def test_imported_times_are_written_as_this_history_writes_them(tmp_path: Path) -> None:
    other = tmp_path / "other.db"
    fill(other, 1)
    connection = sqlite3.connect(other)
    connection.execute(
        "UPDATE runs SET started = '2026-01-01T11:00:00+01:00', finished = '2026-01-01T10:00:05'"
    )
    connection.commit()
    connection.close()
    with History.open(tmp_path / "here.db") as history:
        assert transfer.import_runs(history, other) == (1, 0)
        row = history.read("SELECT started, finished FROM runs")[0]
    assert tuple(row) == ("2026-01-01T10:00:00.000000Z", "2026-01-01T10:00:05.000000Z")
