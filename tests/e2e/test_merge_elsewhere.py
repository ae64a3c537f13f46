"""A run record merged on another machine (a merge job of sharded CI) still says why its steps
failed: each failed step's log tail travels in run.json."""

from __future__ import annotations

import json
import shutil
import textwrap
from typing import TYPE_CHECKING

from tests.helpers import run_cli

if TYPE_CHECKING:
    from pathlib import Path

PLAYBOOK = textwrap.dedent(
    """
    name: shards
    execution: parallel
    secrets: [TOKEN]
    env: {TOKEN: tok-9f8e7d}
    steps:
      - id: fine
        run: echo all good
      - id: broken
        run: |
          echo "compiling"
          echo "error: undefined reference to frobnicate (token $TOKEN)"
          exit 3
    """
)


def test_a_merged_record_shows_failure_tails_without_the_logs(tmp_path: Path) -> None:
    runner = tmp_path / "shard-runner"
    runner.mkdir()
    (runner / "ci.yml").write_text(PLAYBOOK, encoding="utf-8")
    assert run_cli(runner, "run", "ci.yml").returncode == 1

    merger = tmp_path / "merge-job"  # only the record is downloaded there, no logs
    merger.mkdir()
    shutil.copy(runner / ".ci-orchestrator" / "reports" / "run.json", merger / "run-1.json")
    shutil.rmtree(runner)

    record = json.loads((merger / "run-1.json").read_text(encoding="utf-8"))
    tails = {step["id"]: step.get("log_tail") for step in record["steps"]}
    assert tails["fine"] is None  # only failed steps carry one
    assert "undefined reference to frobnicate (token ***)" in tails["broken"]

    merged = run_cli(merger, "report", "merge", "run-1.json")
    assert merged.returncode == 1, merged.stderr
    reports = merger / ".ci-orchestrator" / "reports"
    summary = (reports / "summary.md").read_text(encoding="utf-8")
    junit = (reports / "junit.xml").read_text(encoding="utf-8")
    for text in (summary, junit):
        assert "undefined reference to frobnicate (token ***)" in text
        assert "tok-9f8e7d" not in text
    again = json.loads((reports / "run.json").read_text(encoding="utf-8"))
    assert {step["id"]: step.get("log_tail") for step in again["steps"]} == tails
