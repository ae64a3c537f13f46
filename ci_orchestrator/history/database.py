"""The local run database: every run and each of its steps, kept in SQLite for `history`, for the
scheduler's priorities and for balancing shards.

Several processes may write at once (WAL journal, a busy timeout, one short transaction per
write), and a process killed in the middle of a write leaves the database whole: SQLite's commit
is atomic. A run that was started and never finished reads back as `interrupted`.

Every failure (a damaged or unreadable file, a schema from a newer version, a disk that is full)
is raised as `HistoryError`, from `History.open` or from the call that met it. The history is an
aid, not the run: callers turn the error into a warning and go on without it.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

from ci_orchestrator.errors import EXIT_FAILED, Location, OrchestratorError, UsageError
from ci_orchestrator.history.runs import (
    RunDetail,
    RunSummary,
    parse_time,
    run_summary,
    step_record,
    still_running,
)
from ci_orchestrator.history.test_rows import tests_row
from ci_orchestrator.results import Status, iso_time

if TYPE_CHECKING:
    from collections.abc import Collection, Iterator, Sequence
    from datetime import datetime
    from types import TracebackType

    from ci_orchestrator.results import RunResult, StepResult

DEFAULT_PATH = Path(".ci-orchestrator/history.db")
SCHEMA_VERSION = 3
BUSY_TIMEOUT = 30.0  # seconds a writer waits for another process's transaction
KEEP_RUNS = 500  # older runs are dropped when a run finishes

_SCHEMA = """
CREATE TABLE runs (
    run_id TEXT PRIMARY KEY,
    playbook TEXT NOT NULL,
    playbook_path TEXT NOT NULL,
    started TEXT NOT NULL,
    finished TEXT,
    status TEXT,
    total INTEGER NOT NULL,
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    branch TEXT,
    commit_sha TEXT,
    select_expr TEXT,
    shard TEXT,
    matrix_filters TEXT
);
CREATE INDEX runs_by_start ON runs (started);
CREATE INDEX runs_by_playbook ON runs (playbook, started);
CREATE TABLE steps (
    run_id TEXT NOT NULL,
    id TEXT NOT NULL,
    step TEXT NOT NULL,
    matrix TEXT NOT NULL,
    status TEXT NOT NULL,
    exit_code INTEGER,
    attempts INTEGER NOT NULL,
    started TEXT,
    finished TEXT,
    duration REAL NOT NULL,
    cached INTEGER NOT NULL,
    reason TEXT,
    log TEXT,
    tests TEXT,
    PRIMARY KEY (run_id, id)
);
"""
# The rows `durations` reads (steps that passed or failed, not cached). A warm run's steps are all
# cached: without this index, finding the others meant reading every step of every kept run (20 ms
# with 500 runs of 200 steps). Made on opening, so that a database of an older version gets it too;
# SQLite uses a partial index only for a query that repeats its condition, as `durations` does.
# What each schema added to the one before: to a run (2), what it tested and which part of its
# playbook it ran; to a step (3), its tests.
_UPGRADES = {
    2: tuple(
        f"ALTER TABLE runs ADD COLUMN {column} TEXT"
        for column in ("branch", "commit_sha", "select_expr", "shard", "matrix_filters")
    ),
    3: ("ALTER TABLE steps ADD COLUMN tests TEXT",),
}
_TIMED_INDEX = (
    "CREATE INDEX IF NOT EXISTS steps_timed ON steps (run_id)"
    " WHERE status IN ('passed', 'failed') AND NOT cached"
)
# `json.dumps` given an option builds a new encoder at each call: for each step, here.
_matrix_json = json.JSONEncoder(default=str).encode


class HistoryError(OrchestratorError):
    """The run database cannot be opened, read or written (exit 1 if it ever ends a command)."""

    exit_code = EXIT_FAILED


class History:
    """A connection to the run database. Open with `History.open`; usable as a context manager.

    Safe to call from several threads of one process (calls are serialised).
    """

    def __init__(self, connection: sqlite3.Connection, path: Path) -> None:
        self._connection = connection
        self._path = path
        self._lock = threading.Lock()

    @classmethod
    def open(cls, path: Path = DEFAULT_PATH) -> History:
        """Open (creating it and its folder if needed) the database at `path`; HistoryError if not."""
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            connection = sqlite3.connect(
                path, timeout=BUSY_TIMEOUT, isolation_level=None, check_same_thread=False
            )
        except (OSError, sqlite3.Error) as error:
            raise _error(path, error) from None
        connection.row_factory = sqlite3.Row
        history = cls(connection, path)
        try:
            history._prepare()
        except HistoryError:
            connection.close()
            raise
        return history

    def _prepare(self) -> None:
        with self._guard():
            # WAL lets readers and one writer work at once; NORMAL sync loses nothing when a
            # process is killed, only (at worst) the last commits on a power cut.
            self._switch_to_wal()
            self._connection.execute("PRAGMA synchronous=NORMAL")
        with self._write():
            version = self._connection.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise HistoryError(
                    f"written by a newer ci-orchestrator (schema {version}); not touched",
                    location=Location(file=str(self._path)),
                )
            if version == 0:
                statements = [statement for statement in _SCHEMA.split(";") if statement.strip()]
            else:
                statements = [
                    line for later in range(version + 1, SCHEMA_VERSION + 1) for line in _UPGRADES[later]
                ]
            for statement in statements:
                self._connection.execute(statement)
            if version < SCHEMA_VERSION:
                self._connection.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            self._connection.execute(_TIMED_INDEX)

    def _switch_to_wal(self) -> None:
        # Of two processes making the database at once, the one that does not get to switch it
        # is told SQLITE_BUSY at once, without SQLite's busy wait: it waits here instead.
        deadline = time.monotonic() + BUSY_TIMEOUT
        pause = 0.001
        while True:
            try:
                self._connection.execute("PRAGMA journal_mode=WAL")
                return
            except sqlite3.OperationalError as error:
                if error.sqlite_errorcode != sqlite3.SQLITE_BUSY or time.monotonic() > deadline:
                    raise
            time.sleep(pause)
            pause = min(pause * 2, 0.05)

    def close(self) -> None:
        with self._lock:
            self._connection.close()

    def __enter__(self) -> History:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()

    # ------------------------------------------------------------ writing

    def start_run(
        self, *, run_id: str, playbook: str, playbook_path: str, started: datetime, total: int
    ) -> None:
        """Record that a run began; until `finish_run` it reads as running, then interrupted."""
        with self._write():
            self._connection.execute(
                """INSERT INTO runs (run_id, playbook, playbook_path, started, total, host, pid)
                   VALUES (?, ?, ?, ?, ?, ?, ?)
                   ON CONFLICT (run_id) DO UPDATE SET playbook = excluded.playbook,
                       playbook_path = excluded.playbook_path, started = excluded.started,
                       total = excluded.total, host = excluded.host, pid = excluded.pid""",
                (
                    run_id,
                    playbook,
                    playbook_path,
                    _iso(started),
                    total,
                    os.uname().nodename,
                    os.getpid(),
                ),
            )

    def record_steps(self, run_id: str, results: Sequence[StepResult]) -> None:
        """Record how these instances ended, in one transaction (again for the same id: the
        later record wins)."""
        with self._write():
            self._insert_steps(run_id, list(results))

    def finish_run(self, result: RunResult, *, steps: Sequence[StepResult] | None = None) -> None:
        """Record the end of a run and its steps (also when `start_run` was never called), then
        drop runs older than the newest `KEEP_RUNS`. `steps` are those not recorded yet: all the
        run's by default. What the run tested (branch, commit) and which part of the playbook it
        ran (select, shard, matrix filters) are the result's."""
        with self._write():
            self._connection.execute(
                """INSERT INTO runs (run_id, playbook, playbook_path, started, finished, status, total,
                                     host, pid, branch, commit_sha, select_expr, shard, matrix_filters)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                   ON CONFLICT (run_id) DO UPDATE SET finished = excluded.finished,
                       status = excluded.status, total = max(runs.total, excluded.total),
                       branch = excluded.branch, commit_sha = excluded.commit_sha,
                       select_expr = excluded.select_expr, shard = excluded.shard,
                       matrix_filters = excluded.matrix_filters""",
                (
                    result.run_id,
                    result.playbook,
                    result.playbook_path,
                    _iso(result.started),
                    _iso(result.finished),
                    result.status.value,
                    len(result.steps),
                    os.uname().nodename,
                    os.getpid(),
                    result.branch,
                    result.commit,
                    result.select,
                    result.shard,
                    _matrix_json(dict(result.matrix_filters)) if result.matrix_filters else None,
                ),
            )
            self._insert_steps(result.run_id, result.steps if steps is None else steps)
            self._drop_old_runs(KEEP_RUNS)

    def _insert_steps(self, run_id: str, results: Sequence[StepResult]) -> None:
        self._connection.executemany(
            """INSERT INTO steps (run_id, id, step, matrix, status, exit_code, attempts, started,
                                  finished, duration, cached, reason, log, tests)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
               ON CONFLICT (run_id, id) DO UPDATE SET step = excluded.step, matrix = excluded.matrix,
                   status = excluded.status, exit_code = excluded.exit_code,
                   attempts = excluded.attempts, started = excluded.started,
                   finished = excluded.finished, duration = excluded.duration,
                   cached = excluded.cached, reason = excluded.reason, log = excluded.log,
                   tests = excluded.tests""",
            [
                (
                    run_id,
                    result.id,
                    result.step,
                    _matrix_json(dict(result.matrix)) if result.matrix else "{}",
                    result.status.value,
                    result.exit_code,
                    result.attempts,
                    _iso(result.started),
                    _iso(result.finished),
                    result.duration,
                    int(result.cached),
                    result.reason,
                    result.log,
                    tests_row(result.tests),
                )
                for result in results
            ],
        )

    # ------------------------------------------------------------ reading

    def durations(
        self, playbook: str, *, last: int = 5, min_total: int = 0, instances: Collection[str] | None = None
    ) -> dict[str, float]:
        """Instance id -> median duration of its `last` most recent runs that passed or failed.

        Cached, skipped, cancelled and timed-out runs say nothing about how long a step takes.
        `min_total` leaves out runs of fewer instances: shards of one split must all see the same
        weights, so the shard runs themselves (smaller than the plan they split) may not count.
        `instances` limits the answer to those ids; reading stops once each has its `last` runs.
        """
        wanted = None if instances is None else set(instances)
        recent: dict[str, list[float]] = {}
        with self._guard():
            rows = self._connection.cursor()
            rows.row_factory = None  # tuples: a Row per step costs more than the query itself
            rows.execute(
                "SELECT steps.id, steps.duration FROM steps JOIN runs USING (run_id)"
                " WHERE runs.playbook = ? AND steps.status IN ('passed', 'failed') AND NOT steps.cached"
                " AND runs.total >= ?"
                " ORDER BY runs.started DESC, runs.rowid DESC",
                (playbook, min_total),
            )
            for instance, duration in rows:
                if wanted is not None and instance not in wanted:
                    continue
                kept = recent.setdefault(instance, [])
                if len(kept) < last:
                    kept.append(duration)
                    if len(kept) == last and wanted is not None:
                        wanted.discard(instance)  # its later rows are passed over from here on
                        if not wanted:
                            break
            rows.close()
        return {instance: _median(values) for instance, values in recent.items()}

    def runs(self, limit: int = 20) -> list[RunSummary]:
        """The most recent runs, newest first."""
        with self._guard():
            rows = self._connection.execute(
                "SELECT * FROM runs ORDER BY started DESC, rowid DESC LIMIT ?", (limit,)
            ).fetchall()
            return [self._summary(row) for row in rows]

    def interrupted_runs(self, limit: int = 20) -> set[str]:
        """The ids of the recent runs left unfinished by a process that is gone."""
        with self._guard():
            rows = self._connection.execute(
                "SELECT run_id, host, pid, started FROM runs WHERE status IS NULL"
                " ORDER BY started DESC, rowid DESC LIMIT ?",
                (limit,),
            ).fetchall()
        return {
            row["run_id"]
            for row in rows
            if not still_running(row["host"], row["pid"], since=parse_time(row["started"]))
        }

    def run(self, run_id: str) -> RunDetail | None:
        """One run and its steps, by its id or an unambiguous prefix of it; None when unknown."""
        with self._guard():
            rows = self._connection.execute("SELECT * FROM runs WHERE run_id = ?", (run_id,)).fetchall()
            if not rows and run_id:
                rows = self._connection.execute(
                    "SELECT * FROM runs WHERE substr(run_id, 1, ?) = ? ORDER BY started DESC",
                    (len(run_id), run_id),
                ).fetchall()
            if len(rows) > 1:
                shown = ", ".join(row["run_id"] for row in rows[:5])
                raise UsageError(f"run id {run_id!r} is ambiguous: it starts {shown}")
            if not rows:
                return None
            steps = self._connection.execute(
                "SELECT * FROM steps WHERE run_id = ? ORDER BY rowid", (rows[0]["run_id"],)
            ).fetchall()
            return RunDetail(summary=self._summary(rows[0]), steps=tuple(step_record(row) for row in steps))

    def _summary(self, row: sqlite3.Row) -> RunSummary:
        counts = dict.fromkeys(Status, 0)
        for name, count in self._connection.execute(
            "SELECT status, count(*) FROM steps WHERE run_id = ? GROUP BY status", (row["run_id"],)
        ):
            counts[Status(name)] += count
        return run_summary(row, counts)

    def read(self, query: str, parameters: Sequence[object] = ()) -> list[sqlite3.Row]:
        """The rows of one query (for the modules that read runs in their own ways)."""
        with self._guard():
            return self._connection.execute(query, parameters).fetchall()

    @contextlib.contextmanager
    def writing(self) -> Iterator[sqlite3.Connection]:
        """One write transaction on the connection, for the modules that write runs in their own
        ways (imported from another database); rolled back when the block raises."""
        with self._write():
            yield self._connection

    def drop_old_runs(self, keep: int = KEEP_RUNS) -> None:
        """Drop every run (and its steps) but the newest `keep`."""
        with self._write():
            self._drop_old_runs(keep)

    def _drop_old_runs(self, keep: int) -> None:
        # The steps of the runs dropped are found through their run ids: asking of every step
        # whether its run is kept reads the whole table (40 ms with 500 runs of 500 steps).
        for table in ("steps", "runs"):
            self._connection.execute(
                f"DELETE FROM {table} WHERE run_id IN "  # noqa: S608 - one of two table names
                "(SELECT run_id FROM runs ORDER BY started DESC, rowid DESC LIMIT -1 OFFSET ?)",
                (keep,),
            )

    # ------------------------------------------------------------ plumbing

    @contextlib.contextmanager
    def _guard(self) -> Iterator[None]:
        """Serialise calls and turn every SQLite failure into a HistoryError."""
        with self._lock:
            try:
                yield
            except sqlite3.Error as error:
                raise _error(self._path, error) from None

    @contextlib.contextmanager
    def _write(self) -> Iterator[None]:
        # IMMEDIATE takes the write lock up front, so the busy timeout applies; a deferred
        # transaction that upgrades later can fail at once when another process wrote meanwhile.
        with self._guard():
            self._connection.execute("BEGIN IMMEDIATE")
            try:
                yield
            except BaseException:
                self._connection.execute("ROLLBACK")
                raise
            self._connection.execute("COMMIT")


def _median(values: Sequence[float]) -> float:
    """`statistics.median`, whose import (fractions, decimal, random) costs ~3 ms of every run."""
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def _error(path: Path, error: BaseException) -> HistoryError:
    detail = str(error) or type(error).__name__
    if isinstance(error, sqlite3.DatabaseError) and "not a database" in detail:
        detail = f"damaged run database ({detail}); delete it to start a new history"
    elif isinstance(error, OSError):
        detail = f"cannot open the run database: {error.strerror or detail}"
    return HistoryError(detail, location=Location(file=str(path)))


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else iso_time(moment)
