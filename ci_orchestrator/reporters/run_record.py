"""The run record (`run.json`): a finished run as JSON, read back, and shard records merged into one.

The keys of SPEC's run record keep their meaning; the extra keys (`version`, `playbook_path`,
`vars`, `matrix_filters`, `shard`, `select`, and per step `name`, `stage`, `group`, `continue_on_error`,
a failed step's `log_tail`, and each failing test's `text`, `file` and `line`) are what `repro`
and `report merge` need to rebuild the run; a merge with shards missing or repeated says so
under `notes`. Secret values are masked, never
written. A record read back is untrusted (another job's artifact): what it holds is text to show,
and the files it names (`log`) are never opened.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ci_orchestrator.errors import Location, UsageError
from ci_orchestrator.output.masking import mask
from ci_orchestrator.reporters.comparison import comparison_record, merge_comparisons, read_comparison
from ci_orchestrator.reporters.logs import last_lines, step_tail
from ci_orchestrator.reporters.test_records import read_tests, tests_record
from ci_orchestrator.reporters.writing import write_atomic
from ci_orchestrator.results import (
    NO_FILES,
    RunResult,
    RunStats,
    RunStatus,
    Status,
    StepFiles,
    StepResult,
    iso_time,
    speedup,
    text_mapping,
)

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

RECORD_VERSION = 1
TAIL_BYTES = 16 * 1024  # of each failed step's log tail kept in the record
_SHARD = re.compile(r"([1-9]\d*)/([1-9]\d*)")


def write_run_record(result: RunResult, path: Path | str) -> None:
    """Write `result` as run.json to `path` (atomically, UTF-8): one key per line and one line
    per step — readable and greppable, and written by the C encoder (indenting is pure Python,
    ten times slower on a large run)."""
    data = record(result)
    # One encoder for every line: `json.dumps` with options builds a new one per call.
    dump = json.JSONEncoder(ensure_ascii=False, default=str).encode
    lines = []
    for key, value in data.items():
        if key == "steps" and value:
            steps = ",\n".join(f"    {dump(step)}" for step in value)
            lines.append(f'  "steps": [\n{steps}\n  ]')
        else:
            lines.append(f"  {dump(key)}: {dump(value)}")
    write_atomic(path, "{\n" + ",\n".join(lines) + "\n}\n")


def record(result: RunResult) -> dict[str, Any]:
    """`result` as the JSON-ready object written to run.json."""
    secrets = result.secrets
    stats = result.stats
    notes = {"notes": [mask(note, secrets) for note in result.notes]} if result.notes else {}
    return {
        "version": RECORD_VERSION,
        "run_id": result.run_id,
        "playbook": result.playbook,
        "playbook_path": result.playbook_path,
        "status": result.status.value,
        "started": iso_time(result.started),
        "finished": iso_time(result.finished),
        "branch": result.branch,
        "commit": result.commit,
        "interrupted_by": result.interrupted_by,
        "shard": result.shard,
        "select": mask(result.select, secrets) if result.select is not None else None,
        **notes,
        "vars": {key: mask(value, secrets) for key, value in result.vars.items()},
        "matrix_filters": {
            key: [mask(value, secrets) for value in values] for key, values in result.matrix_filters.items()
        },
        "comparison": comparison_record(result.comparison, secrets),
        "steps": [_step_record(step, secrets) for step in result.steps],
        "stats": {
            "max_concurrency_seen": stats.max_concurrency_seen,
            "resource_utilization": dict(stats.resource_utilization),
            "critical_path": [mask(step_id, secrets) for step_id in stats.critical_path],
            "serial_duration": stats.serial_duration,
            "speedup": stats.speedup,
        },
    }


def _step_record(step: StepResult, secrets: Sequence[str]) -> dict[str, Any]:
    # An instance's id, name, log file and matrix hold its matrix values: a secret may be one.
    record: dict[str, Any] = {
        "id": mask(step.id, secrets),
        "step": step.step,
        "name": mask(step.name, secrets),
        "matrix": {
            key: mask(value, secrets) if isinstance(value, str) else value
            for key, value in step.matrix.items()
        },
        "status": step.status.value,
        "exit_code": step.exit_code,
        "started": iso_time(step.started) if step.started else None,
        "finished": iso_time(step.finished) if step.finished else None,
        "duration": float(step.duration),
        "attempts": step.attempts,
        "cached": step.cached,
        "reason": mask(step.reason, secrets) if step.reason is not None else None,
        "log": mask(step.log, secrets) if step.log is not None else None,
        "continue_on_error": step.continue_on_error,
        "stage": step.stage,
        "group": step.group,
        "tests": tests_record(step, secrets),
        "outputs": {name: mask(value, secrets) for name, value in step.files.outputs.items()},
    }
    # Why it failed travels with the record: a merge may run where the log is not, and never
    # opens the file a record names. "" says the step printed nothing.
    if step.status.is_failure and step.log_tail is not None:
        record["log_tail"] = last_lines(step_tail(step, secrets=secrets), max_bytes=TAIL_BYTES)
    return record


def read_run_record(path: Path | str) -> RunResult:
    """The run recorded in a run.json file; a missing or invalid file is a `UsageError` naming it."""
    where = Location(file=str(path))
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UsageError("run record not found", location=where) from None
    except (OSError, UnicodeDecodeError) as error:
        raise UsageError(f"cannot read run record: {error}", location=where) from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        place = Location(file=str(path), line=error.lineno, column=error.colno)
        raise UsageError(f"not a run record: invalid JSON ({error.msg})", location=place) from None
    return _Reader(where).run(data)


class _Reader:
    """Turns run.json data back into a `RunResult`, naming the key path of anything wrong."""

    def __init__(self, where: Location) -> None:
        self.where = where

    def fail(self, key: str, message: str) -> UsageError:
        return UsageError(message, location=self.where, path=key)

    def field(self, data: Mapping[str, Any], key: str, kind: type | tuple[type, ...], at: str) -> Any:
        if key not in data:
            raise self.fail(at, f"missing key {key!r}")
        value = data[key]
        if not isinstance(value, kind) or (isinstance(value, bool) and bool not in _kinds(kind)):
            raise self.fail(f"{at}.{key}" if at else key, f"unexpected value {value!r}")
        return value

    def optional(self, data: Mapping[str, Any], key: str, kind: type | tuple[type, ...], at: str) -> Any:
        return None if data.get(key) is None else self.field(data, key, kind, at)

    def time(self, value: str, at: str) -> datetime:
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            raise self.fail(at, f"not an ISO 8601 time: {value!r}") from None
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)

    def run(self, data: Any) -> RunResult:
        if not isinstance(data, dict):
            raise self.fail("", "not a run record: expected a JSON object")
        version = data.get("version", RECORD_VERSION)
        if not isinstance(version, int) or version > RECORD_VERSION:
            raise self.fail("version", f"run record version {version!r} is newer than this tool reads")
        status = self.field(data, "status", str, "")
        if status not in {member.value for member in RunStatus}:
            raise self.fail("status", f"unknown run status {status!r}")
        steps = self.field(data, "steps", list, "")
        stats = self.optional(data, "stats", dict, "") or {}
        playbook = self.field(data, "playbook", str, "")
        variables = self.optional(data, "vars", dict, "") or {}
        return RunResult(
            run_id=self.field(data, "run_id", str, ""),
            playbook=playbook,
            playbook_path=self.optional(data, "playbook_path", str, "") or playbook,
            status=RunStatus(status),
            started=self.time(self.field(data, "started", str, ""), "started"),
            finished=self.time(self.field(data, "finished", str, ""), "finished"),
            steps=tuple(self.step(step, f"steps[{index}]") for index, step in enumerate(steps)),
            stats=self.stats(stats),
            vars={str(key): str(value) for key, value in variables.items()},
            matrix_filters={
                str(key): tuple(str(value) for value in values)
                for key, values in (self.optional(data, "matrix_filters", dict, "") or {}).items()
            },
            interrupted_by=self.optional(data, "interrupted_by", int, ""),
            shard=self.shard(self.optional(data, "shard", str, "")),
            notes=tuple(str(note) for note in self.optional(data, "notes", list, "") or ()),
            select=self.optional(data, "select", str, ""),
            branch=self.optional(data, "branch", str, ""),
            commit=self.optional(data, "commit", str, ""),
            comparison=read_comparison(data.get("comparison"), self.where),
        )

    def shard(self, value: str | None) -> str | None:
        match = _SHARD.fullmatch(value) if value is not None else None
        if value is not None and (match is None or int(match[1]) > int(match[2])):
            raise self.fail("shard", f"not a shard I/N: {value!r}")
        return value

    def step(self, data: Any, at: str) -> StepResult:
        if not isinstance(data, dict):
            raise self.fail(at, "expected an object")
        status = self.field(data, "status", str, at)
        if status not in {member.value for member in Status}:
            raise self.fail(f"{at}.status", f"unknown step status {status!r}")
        started = self.optional(data, "started", str, at)
        finished = self.optional(data, "finished", str, at)
        step_id = self.field(data, "id", str, at)
        return StepResult(
            id=step_id,
            step=self.field(data, "step", str, at),
            name=self.optional(data, "name", str, at) or step_id,
            matrix=self.optional(data, "matrix", dict, at) or {},
            status=Status(status),
            exit_code=self.optional(data, "exit_code", int, at),
            started=self.time(started, f"{at}.started") if started else None,
            finished=self.time(finished, f"{at}.finished") if finished else None,
            duration=float(self.optional(data, "duration", (int, float), at) or 0.0),
            attempts=self.optional(data, "attempts", int, at) or 0,
            cached=bool(self.optional(data, "cached", bool, at)),
            reason=self.optional(data, "reason", str, at),
            log=self.optional(data, "log", str, at),
            continue_on_error=bool(self.optional(data, "continue_on_error", bool, at)),
            stage=self.optional(data, "stage", str, at),
            group=self.optional(data, "group", str, at),
            log_tail=self.log_tail(self.optional(data, "log_tail", str, at)),
            tests=read_tests(data.get("tests"), instance=step_id, at=f"{at}.tests", fail=self.fail),
            files=self.outputs(data.get("outputs"), f"{at}.outputs"),
        )

    def outputs(self, value: Any, at: str) -> StepFiles:
        """A step's `outputs` (absent in a record of an older version: none)."""
        if value is None:
            return NO_FILES
        outputs = text_mapping(value)
        if outputs is None:
            raise self.fail(at, "expected an object of names to strings")
        return StepFiles(outputs=outputs)

    def log_tail(self, value: str | None) -> str | None:
        """A record's tail held to what a tail read here holds: another job's record may carry
        any amount of text."""
        return None if value is None else last_lines(value, max_bytes=TAIL_BYTES)

    def stats(self, data: Mapping[str, Any]) -> RunStats:
        at = "stats"
        ratio = self.optional(data, "speedup", (int, float), at)  # null where it means nothing
        utilization = self.optional(data, "resource_utilization", dict, at) or {}
        return RunStats(
            max_concurrency_seen=self.optional(data, "max_concurrency_seen", int, at) or 0,
            resource_utilization={str(pool): float(value) for pool, value in utilization.items()},
            critical_path=tuple(str(step) for step in self.optional(data, "critical_path", list, at) or ()),
            serial_duration=float(self.optional(data, "serial_duration", (int, float), at) or 0.0),
            speedup=None if ratio is None else float(ratio),
        )


def _kinds(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)


def merge_results(results: Sequence[RunResult]) -> RunResult:
    """One run from shard records: each instance once, the one that finished last for the same
    id (a rerun), whatever the order of the records.

    Status and stats are recomputed: wall time from the first start to the last finish, serial
    duration the sum of the instances kept, the longest critical path, the highest concurrency,
    and pool utilization weighted by each record's wall time. The merged run id is the records'
    own when they share one, else derived from all of them. Shards of a set of N missing fail the
    merged run (their steps are in no record); a shard given twice is a note.
    """
    if not results:
        raise UsageError("no run records to merge")
    names = sorted({result.playbook for result in results})
    if len(names) > 1:
        raise UsageError(f"run records of different playbooks cannot be merged: {', '.join(names)}")
    steps: dict[str, StepResult] = {}
    ends: dict[str, datetime] = {}
    for result in results:
        for step in result.steps:
            # A step that never ran ended with its run. A tie goes to the later record; the first
            # position stays.
            end = step.finished or result.finished
            if step.id not in ends or end >= ends[step.id]:
                steps[step.id] = step
                ends[step.id] = end
    first = results[0]
    started = min(result.started for result in results)
    finished = max(result.finished for result in results)
    interrupted_by = next((r.interrupted_by for r in reversed(results) if r.interrupted_by is not None), None)
    merged_steps = tuple(steps.values())
    missing, notes = _shard_notes(results)
    status = RunStatus.of(merged_steps, interrupted=interrupted_by is not None)
    return RunResult(
        run_id=_merged_run_id(results),
        playbook=first.playbook,
        playbook_path=first.playbook_path,
        status=RunStatus.FAILED if missing and status is RunStatus.PASSED else status,
        started=started,
        finished=finished,
        steps=merged_steps,
        stats=_merged_stats(results, steps, wall=(finished - started).total_seconds()),
        vars={key: value for result in results for key, value in result.vars.items()},
        matrix_filters={key: value for result in results for key, value in result.matrix_filters.items()},
        interrupted_by=interrupted_by,
        secrets=tuple(dict.fromkeys(secret for result in results for secret in result.secrets)),
        notes=tuple(notes),
        select=first.select,
        branch=first.branch,
        commit=first.commit,
        comparison=merge_comparisons(results),
    )


def _shard_notes(results: Sequence[RunResult]) -> tuple[bool, list[str]]:
    """Whether shards are missing, and a note for each set of N with shards missing or repeated.

    Records without a shard (whole runs, or written before shards were recorded) are not checked.
    """
    seen: dict[int, dict[int, int]] = {}
    for result in results:
        if result.shard is not None and (match := _SHARD.fullmatch(result.shard)):
            index, count = int(match[1]), int(match[2])
            counted = seen.setdefault(count, {})
            counted[index] = counted.get(index, 0) + 1
    missing = False
    notes = []
    for count, indexes in sorted(seen.items()):
        absent = [f"{index}/{count}" for index in range(1, count + 1) if index not in indexes]
        if absent:
            missing = True
            which = (
                f"shard {absent[0]} is missing: its"
                if len(absent) == 1
                else f"shards {', '.join(absent)} are missing: their"
            )
            notes.append(f"{which} steps are in none of the merged records")
        for index, times in sorted(indexes.items()):
            if times > 1:
                notes.append(
                    f"shard {index}/{count} was given {times} times: each instance is taken from the"
                    " record that finished it last"
                )
    return missing, notes


def _merged_run_id(results: Sequence[RunResult]) -> str:
    ids = list(dict.fromkeys(result.run_id for result in results))
    if len(ids) == 1:
        return ids[0]
    import hashlib  # only merges need it; OpenSSL's hashes take ~3 ms to load

    digest = hashlib.sha256("\n".join(ids).encode("utf-8")).hexdigest()[:12]
    return f"merged-{digest}"


def _merged_stats(results: Sequence[RunResult], steps: Mapping[str, StepResult], *, wall: float) -> RunStats:
    serial = sum(step.duration for step in steps.values())

    def path_length(path: Sequence[str]) -> float:
        return sum(steps[step_id].duration for step_id in path if step_id in steps)

    critical = max((result.stats.critical_path for result in results), key=path_length, default=())
    weights = [max(result.wall_time, 0.0) for result in results]
    total_weight = sum(weights)
    utilization: dict[str, float] = {}
    for pool in dict.fromkeys(pool for result in results for pool in result.stats.resource_utilization):
        shares = [
            (result.stats.resource_utilization.get(pool, 0.0), weight)
            for result, weight in zip(results, weights, strict=True)
        ]
        if total_weight > 0:
            utilization[pool] = sum(value * weight for value, weight in shares) / total_weight
        else:
            utilization[pool] = max(value for value, _ in shares)
    return RunStats(
        max_concurrency_seen=max(result.stats.max_concurrency_seen for result in results),
        resource_utilization=utilization,
        critical_path=tuple(critical),
        serial_duration=serial,
        speedup=speedup(steps.values(), wall),
    )
