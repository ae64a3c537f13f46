"""Run histories carried from one machine to another (GitHub's cache between workflow runs): a
compact copy of the newest runs written out (`history export`), and the runs of such a copy
added to the history here (`history import`).

A copy that comes back is untrusted (any workflow run of the branch may have written the cache
entry): it is opened read-only, and only finished runs whose every value has the form the
history writes are taken; runs already here are kept as they are.
"""

from __future__ import annotations

import json
import math
import sqlite3
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from ci_orchestrator.errors import Location
from ci_orchestrator.history.database import KEEP_RUNS, SCHEMA_VERSION, HistoryError
from ci_orchestrator.history.test_rows import read_tests_row
from ci_orchestrator.results import RunStatus, Status, iso_time

if TYPE_CHECKING:
    from pathlib import Path

    from ci_orchestrator.history.database import History

EXPORT_RUNS = 100  # runs a copy keeps: durations take the last 5, a comparison one
_RUN_STATUSES = frozenset(status.value for status in RunStatus)
_STEP_STATUSES = frozenset(status.value for status in Status)
_RUN_COLUMNS = (
    "run_id", "playbook", "playbook_path", "started", "finished", "status", "total", "host", "pid",
    "branch", "commit_sha", "select_expr", "shard", "matrix_filters",
)  # fmt: skip
_STEP_COLUMNS = (
    "run_id", "id", "step", "matrix", "status", "exit_code", "attempts", "started", "finished",
    "duration", "cached", "reason", "log", "tests",
)  # fmt: skip


def export_runs(history: History, target: Path, *, keep: int = EXPORT_RUNS) -> int:
    """Write to `target` a compact copy of the history: its newest `keep` finished runs, without
    what only this machine needs. Returns how many runs it holds."""
    temporary = target.with_name(f".{target.name}.tmp")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary.unlink(missing_ok=True)
        # A consistent copy at once (VACUUM INTO only reads the history; it takes no transaction).
        history.read("VACUUM INTO ?", (str(temporary),))
        copy = sqlite3.connect(temporary, isolation_level=None)
        try:
            copy.execute("PRAGMA journal_mode=DELETE")  # one file, whatever the history's journal
            copy.execute("BEGIN")
            copy.execute("DELETE FROM runs WHERE status IS NULL")
            copy.execute(
                "DELETE FROM runs WHERE run_id IN (SELECT run_id FROM runs"
                " ORDER BY started DESC, rowid DESC LIMIT -1 OFFSET ?)",
                (keep,),
            )
            copy.execute("DELETE FROM steps WHERE run_id NOT IN (SELECT run_id FROM runs)")
            # What durations and comparisons read stays; the log paths (files of this machine) and
            # each step's clock times (its duration says how long it took) go.
            copy.execute("UPDATE steps SET log = NULL, started = NULL, finished = NULL")
            copy.execute("COMMIT")
            copy.execute("VACUUM")
            count = int(copy.execute("SELECT count(*) FROM runs").fetchone()[0])
        finally:
            copy.close()
        temporary.replace(target)
    except (OSError, sqlite3.Error) as error:
        temporary.unlink(missing_ok=True)
        raise HistoryError(
            f"cannot export the run history: {error}", location=Location(file=str(target))
        ) from None
    return count


def import_runs(history: History, source: Path) -> tuple[int, int]:
    """Add the finished runs of the run database at `source` that this history lacks (its newest
    `KEEP_RUNS`), then keep the newest `KEEP_RUNS` of all. Returns (runs added, runs passed
    over: already here, unfinished, or not of the history's form)."""
    where = Location(file=str(source))
    if not source.is_file():
        raise HistoryError("no run database there", location=where)
    try:
        # immutable: read as it is, no lock or journal made beside it (a cache entry is a copy).
        other = sqlite3.connect(f"file:{quote(str(source.resolve()))}?immutable=1", uri=True)
    except sqlite3.Error as error:
        raise HistoryError(f"cannot open the run database: {error}", location=where) from None
    added = 0
    try:
        runs, passed_over = _runs(other, where)
        here = {row["run_id"] for row in history.read("SELECT run_id FROM runs")}
        with history.writing() as connection:
            for run in runs:
                steps = None if run["run_id"] in here else _steps(other, run["run_id"])
                if steps is None:
                    passed_over += 1
                    continue
                inserted = connection.execute(
                    # OR IGNORE: another process may have written the same run meanwhile.
                    f"INSERT OR IGNORE INTO runs ({', '.join(_RUN_COLUMNS)})"  # noqa: S608 - our column names
                    f" VALUES ({', '.join('?' * len(_RUN_COLUMNS))})",
                    [run[column] for column in _RUN_COLUMNS],
                )
                if inserted.rowcount != 1:
                    passed_over += 1
                    continue
                connection.executemany(
                    f"INSERT INTO steps ({', '.join(_STEP_COLUMNS)})"  # noqa: S608 - our column names
                    f" VALUES ({', '.join('?' * len(_STEP_COLUMNS))})",
                    [[step[column] for column in _STEP_COLUMNS] for step in steps],
                )
                added += 1
        history.drop_old_runs(KEEP_RUNS)
    except sqlite3.Error as error:
        raise HistoryError(f"not a run database this version reads: {error}", location=where) from None
    finally:
        other.close()
    return added, passed_over


def _runs(other: sqlite3.Connection, where: Location) -> tuple[list[dict[str, Any]], int]:
    """The other database's newest finished runs that have the history's form, and how many
    of its runs were passed over."""
    version = other.execute("PRAGMA user_version").fetchone()[0]
    if not 1 <= version <= SCHEMA_VERSION:
        raise HistoryError(f"run database of schema {version}: not read", location=where)
    other.row_factory = sqlite3.Row
    columns = {row["name"] for row in other.execute("PRAGMA table_info(runs)")}
    rows = other.execute(
        "SELECT * FROM runs ORDER BY started DESC, rowid DESC LIMIT ?", (KEEP_RUNS,)
    ).fetchall()
    runs = []
    for row in rows:
        run = {column: row[column] if column in columns else None for column in _RUN_COLUMNS}
        if _valid_run(run):
            # Written as this history writes times, so that they sort with its own.
            run["started"], run["finished"] = (_as_written(str(run[key])) for key in ("started", "finished"))
            runs.append(run)
    return runs, len(rows) - len(runs)


def _steps(other: sqlite3.Connection, run_id: str) -> list[sqlite3.Row] | None:
    """The steps of one run, or None when one of them is not of the history's form."""
    # A column an older schema lacks reads as NULL.
    present = {row["name"] for row in other.execute("PRAGMA table_info(steps)")}
    columns = ", ".join(column if column in present else f"NULL AS {column}" for column in _STEP_COLUMNS)
    steps = other.execute(
        f"SELECT {columns} FROM steps WHERE run_id = ? ORDER BY rowid",  # noqa: S608 - our column names
        (run_id,),
    ).fetchall()
    return steps if all(_valid_step(step) for step in steps) else None


def _valid_run(run: dict[str, Any]) -> bool:
    texts = ("run_id", "playbook", "playbook_path", "started", "finished", "host")
    optional = ("branch", "commit_sha", "select_expr", "shard")
    return (
        all(isinstance(run[key], str) for key in texts)
        and all(run[key] is None or isinstance(run[key], str) for key in optional)
        and run["status"] in _RUN_STATUSES
        and all(_integer(run[key]) for key in ("total", "pid"))
        and _time(run["started"])
        and _time(run["finished"])
        and (run["matrix_filters"] is None or _json_object(run["matrix_filters"], of_lists=True))
    )


def _valid_step(step: sqlite3.Row) -> bool:
    return (
        all(isinstance(step[key], str) for key in ("id", "step"))
        and step["status"] in _STEP_STATUSES
        and _json_object(step["matrix"])
        and (step["exit_code"] is None or _integer(step["exit_code"]))
        and _integer(step["attempts"])
        and step["cached"] in (0, 1)
        and isinstance(step["duration"], int | float)
        and math.isfinite(step["duration"])
        and step["duration"] >= 0
        and all(step[key] is None or _time(step[key]) for key in ("started", "finished"))
        and all(step[key] is None or isinstance(step[key], str) for key in ("reason", "log"))
        and _tests(step["tests"])
    )


def _tests(text: Any) -> bool:
    try:
        read_tests_row(text)
    except ValueError:
        return False
    return True


def _as_written(text: str) -> str:
    """A valid ISO 8601 time as `iso_time` writes it (UTC, microseconds, `Z`)."""
    return iso_time(datetime.fromisoformat(text))


def _integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _time(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        datetime.fromisoformat(value)
    except ValueError:
        return False
    return True


def _json_object(text: Any, *, of_lists: bool = False) -> bool:
    if not isinstance(text, str):
        return False
    try:
        value = json.loads(text)
    except ValueError:
        return False
    if not isinstance(value, dict):
        return False
    return not of_lists or all(
        isinstance(items, list) and all(isinstance(item, str) for item in items) for items in value.values()
    )
