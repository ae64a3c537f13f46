"""The run a new run is compared with, found in the run history (`--baseline auto`).

Under a pull request it is the newest run of the playbook made on the pull request's base
branch: what the change would be merged into. Elsewhere it is the newest earlier run of the
playbook on the same branch (a folder outside git has no branch: its runs follow each other).
Only runs that ended by themselves count, passed or failed: a cancelled run stopped part way
and an unfinished one never said how it ended, so neither is what "before" looked like.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from ci_orchestrator.history.runs import parse_time
from ci_orchestrator.history.test_rows import read_tests_row
from ci_orchestrator.results import RunResult, RunStatus, Status, StepResult, iso_time

if TYPE_CHECKING:
    import sqlite3
    from datetime import datetime

    from ci_orchestrator.history.database import History
    from ci_orchestrator.history.revision import Revision

_STATUSES = {status.value: status for status in Status}  # a dict lookup: Status(text) costs 4x


def find_baseline(
    history: History, playbook: str, revision: Revision, *, before: datetime
) -> RunResult | None:
    """The baseline of a run of `playbook` at `revision` that starts at `before`; None when the
    history holds no such run. A HistoryError when the history cannot be read."""
    branch = revision.base_branch or revision.branch
    runs = history.read(
        "SELECT * FROM runs WHERE playbook = ? AND branch IS ? AND status IN ('passed', 'failed')"
        " AND started < ? ORDER BY started DESC, rowid DESC LIMIT 1",
        (playbook, branch, iso_time(before)),
    )
    if not runs:
        return None
    # The columns a comparison reads: the rest of each row would cost as much again to read.
    steps = history.read(
        "SELECT id, step, status, exit_code, duration, attempts, cached, reason, tests FROM steps"
        " WHERE run_id = ? ORDER BY rowid",
        (runs[0]["run_id"],),
    )
    return _run(runs[0], steps)


def _run(row: sqlite3.Row, steps: list[sqlite3.Row]) -> RunResult | None:
    started, finished = parse_time(row["started"]), parse_time(row["finished"])
    if started is None or finished is None:
        return None
    filters = json.loads(row["matrix_filters"]) if row["matrix_filters"] else {}
    return RunResult(
        run_id=row["run_id"],
        playbook=row["playbook"],
        playbook_path=row["playbook_path"],
        status=RunStatus(row["status"]),
        started=started,
        finished=finished,
        steps=tuple(_step(step) for step in steps if step["status"] in _STATUSES),
        select=row["select_expr"],
        shard=row["shard"],
        matrix_filters={str(key): tuple(values) for key, values in filters.items()},
        branch=row["branch"],
        commit=row["commit_sha"],
    )


def _step(row: sqlite3.Row) -> StepResult:
    instance, step, status, exit_code, duration, attempts, cached, reason, tests = row
    try:
        known = read_tests_row(tests)
    except ValueError:
        known = None  # nothing known of its tests: no claim is made about them
    return StepResult(
        id=instance,
        step=step,
        name=instance,
        matrix={},  # what a comparison reads is the id, the status, the time taken and the tests
        status=_STATUSES[status],
        exit_code=exit_code,
        duration=float(duration),
        attempts=int(attempts),
        cached=bool(cached),
        reason=reason,
        tests=known,
    )
