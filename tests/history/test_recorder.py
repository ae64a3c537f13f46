"""The history recorder: steps written as the run goes, and at its end only what is not written yet."""

from __future__ import annotations

import dataclasses
import json
from typing import TYPE_CHECKING

from ci_orchestrator.errors import Location
from ci_orchestrator.history.database import History
from ci_orchestrator.history.recorder import HistoryRecorder
from ci_orchestrator.playbook.model import Playbook
from ci_orchestrator.results import RunResult, Status, TestCaseResult, TestOutcome, TestResults
from tests.helpers import run_result, step_result

if TYPE_CHECKING:
    from pathlib import Path


def test_the_end_of_a_run_records_what_changed_or_never_finished(tmp_path: Path, warned: list[str]) -> None:
    path = tmp_path / "history.db"
    playbook = Playbook(name="ci", path="playbooks/ci.yml", location=Location(file="playbooks/ci.yml"))
    recorder = HistoryRecorder.open(path, playbook)
    recorder.run_started(run_id="r", playbook="ci", total=3)
    first, second = step_result("a"), step_result("b", duration=2.0)
    recorder.step_finished(first)
    recorder.step_finished(second)
    recorder.flush()
    # `b` ends up recorded otherwise than it was reported; `c` never ran, so it was never reported.
    final = [first, dataclasses.replace(second, reason="rerun"), step_result("c", Status.SKIPPED)]
    recorder.run_finished(run_result(*final, run_id="r"))
    recorder.close()

    with History.open(path) as history:
        detail = history.run("r")
    assert detail is not None
    assert [(one.id, one.status, one.reason) for one in detail.steps] == [
        ("a", Status.PASSED, None),
        ("b", Status.PASSED, "rerun"),
        ("c", Status.SKIPPED, None),
    ]
    assert warned == []


def test_what_the_history_keeps_is_labelled_and_masked(tmp_path: Path) -> None:
    """The history travels to other machines (GitHub's cache): secret values stay out of it, as
    they stay out of run.json."""
    path = tmp_path / "history.db"
    playbook = Playbook(name="ci", path="playbooks/ci.yml", location=Location(file="playbooks/ci.yml"))
    secret = "hunter2-secret"

    def label(result: RunResult) -> RunResult:
        return dataclasses.replace(result, branch="main", commit="c0ffee", select=f"deploy ({secret})")

    recorder = HistoryRecorder.open(path, playbook, label=label, secrets=(secret,))
    recorder.run_started(run_id="r", playbook="ci", total=2)
    early = step_result(f"deploy ({secret})", matrix={"target": secret}, log=f"logs/deploy ({secret}).log")
    recorder.step_finished(early)
    recorder.flush()
    named = TestCaseResult(classname=f"tests.{secret}", name="test_login", outcome=TestOutcome.FAILED)
    late = step_result(
        "notify", Status.FAILED, reason=f"could not reach {secret}", tests=TestResults.of([named])
    )
    recorder.run_finished(run_result(early, late, run_id="r"))
    recorder.close()

    data = path.read_bytes() + b"".join(other.read_bytes() for other in tmp_path.glob("history.db-*"))
    assert secret.encode() not in data
    with History.open(path) as history:
        detail = history.run("r")
        row = history.read("SELECT branch, commit_sha, select_expr FROM runs")[0]
        tests = history.read("SELECT tests FROM steps WHERE id = 'notify'")[0]["tests"]
    assert detail is not None
    assert [(one.id, one.reason) for one in detail.steps] == [
        ("deploy (***)", None),
        ("notify", "could not reach ***"),
    ]
    assert tuple(row) == ("main", "c0ffee", "deploy (***)")
    assert json.loads(tests)["failing"] == ["tests.***.test_login"]
