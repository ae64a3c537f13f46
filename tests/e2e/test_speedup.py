"""The speed-up figure as a user reads it on the console's last line, in the summary and in
run.json: said for what it is (an upper bound), and left out where it means nothing."""

from __future__ import annotations

import json
import textwrap
from typing import TYPE_CHECKING, Any

from tests.helpers import run_cli

if TYPE_CHECKING:
    from pathlib import Path


def run(work: Path, steps: str) -> tuple[str, str, dict[str, Any]]:
    """Runs a playbook of these steps: the console's last line, the summary, run.json's stats."""
    (work / "playbooks").mkdir()
    (work / "playbooks" / "ci.yml").write_text("name: ci\nexecution: parallel\n" + textwrap.dedent(steps))
    done = run_cli(work, "run", "--concurrency", "4", "--output", "grouped")
    assert done.returncode == 0, done.stdout + done.stderr
    reports = work / ".ci-orchestrator" / "reports"
    stats = json.loads((reports / "run.json").read_text())["stats"]
    return done.stdout.strip().splitlines()[-1], (reports / "summary.md").read_text(), stats


def test_a_run_of_steps_side_by_side_says_its_speed_up_is_at_most_that(tmp_path: Path) -> None:
    last, summary, stats = run(
        tmp_path,
        """
        steps:
          - {id: a, run: sleep 2.5}
          - {id: b, run: sleep 2.5}
        """,
    )
    assert stats["serial_duration"] >= 5.0
    assert 1.0 <= stats["speedup"] <= stats["max_concurrency_seen"] == 2
    # An upper bound: the steps' durations were measured while they shared the machine.
    assert f"at most {stats['speedup']:.2f}x faster than one after another" in last, last
    assert "the steps' durations add up to" in last
    assert f"at most **{stats['speedup']:.2f}×** faster than one after another" in summary


def test_a_tiny_run_says_no_speed_up(tmp_path: Path) -> None:
    # Steps that took next to nothing, one after another: the wall time is mostly the run's own.
    last, summary, stats = run(
        tmp_path,
        """
        steps:
          - {id: a, run: "true"}
          - {id: b, needs: [a], run: "true"}
          - {id: c, needs: [b], run: "true"}
        """,
    )
    assert stats["speedup"] is None and "serial_duration" in stats
    for text in (last, summary):
        assert "speed-up" not in text and "faster" not in text and "one after another" not in text
    assert last.startswith("ci passed in ")


def test_one_step_says_no_speed_up(tmp_path: Path) -> None:
    last, summary, stats = run(tmp_path, "steps:\n  - {id: a, run: sleep 1.2}\n")
    assert stats["speedup"] is None
    assert "faster" not in last and "faster" not in summary
