"""Old runs' log folders are removed at the end of a run; the newest ones, and anything that is
not a run's folder, stay."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from ci_orchestrator.run.log_retention import KEEP_LOG_RUNS, prune_logs
from tests.helpers import run_cli

if TYPE_CHECKING:
    from pathlib import Path

PLAYBOOK = """\
name: logs
steps:
  - {id: hello, run: echo hello}
"""


def old_run_folder(logs: Path, day: int, number: int) -> Path:
    folder = logs / f"202601{day:02d}T0000{number:02d}-abcdef"
    folder.mkdir(parents=True)
    (folder / "hello.log").write_text("old\n")
    return folder


def test_a_run_keeps_the_newest_runs_logs_and_removes_the_older(tmp_path: Path) -> None:
    logs = tmp_path / ".ci-orchestrator" / "logs"
    old = [old_run_folder(logs, 1 + number // 60, number % 60) for number in range(KEEP_LOG_RUNS + 3)]
    mine = logs / "notes"  # not a run's folder: never touched
    mine.mkdir()
    (tmp_path / "ci.yml").write_text(PLAYBOOK)

    done = run_cli(tmp_path, "run", "ci.yml")

    assert done.returncode == 0, done.stderr
    record = json.loads((tmp_path / ".ci-orchestrator" / "reports" / "run.json").read_text())
    this_run = logs / record["run_id"]
    assert (tmp_path / record["steps"][0]["log"]).read_text() == "hello\n"
    kept = sorted(path for path in logs.iterdir() if path != mine)
    assert kept == [*old[-(KEEP_LOG_RUNS - 1) :], this_run]
    assert mine.is_dir()


def test_the_current_run_is_kept_even_when_it_sorts_first(tmp_path: Path) -> None:
    folders = [old_run_folder(tmp_path, 2, number) for number in range(3)]
    assert prune_logs(tmp_path, current=folders[0].name, keep=1) == 1
    assert sorted(tmp_path.iterdir()) == [folders[0], folders[2]]


def test_a_missing_log_folder_is_nothing_to_prune(tmp_path: Path) -> None:
    assert prune_logs(tmp_path / "absent", current="20260101T000000-abcdef") == 0
