"""The run record (`run.json`): a finished run as JSON, and read back (shard records are merged
into one by `merging`).

The keys of SPEC's run record keep their meaning; the extra keys (`version`, `playbook_path`,
`vars`, `matrix_filters`, `shard`, `select`, and per step `name`, `stage`, `group`, `continue_on_error`,
a failed step's `log_tail`, and each failing test's `text`, `file` and `line`) are what `repro`
and `report merge` need to rebuild the run (`merging`); a merge with shards missing or repeated
says so under `notes`. Secret values are masked, never
written. A record read back is untrusted (another job's artifact): what it holds is text to show,
and the files it names (`log`) are never opened.
"""

from __future__ import annotations

import json
import signal
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from ci_orchestrator import notices
from ci_orchestrator.errors import Location, UsageError
from ci_orchestrator.output.masking import mask
from ci_orchestrator.output.untrusted import MAX_FILE_BYTES, NotJson, Unreadable, read_json_file
from ci_orchestrator.reporters.comparison import comparison_record, read_comparison
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
    text_mapping,
)
from ci_orchestrator.units import parse_shard

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from pathlib import Path

RECORD_VERSION = 1
TAIL_BYTES = 16 * 1024  # of each failed step's log tail kept in the record
# What a record's numbers may be, read back: what a run here writes, with room to spare. A
# number read drives no loop nor any allocation past these.
_EXIT_CODES = (0, 255)
_COUNT = (0, 2**31 - 1)  # attempts, concurrency
_SECONDS = (0, 10**9)  # a duration: some 31 years
_RATIO = (0, 10**9)  # pool utilization, speed-up


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
    text = "{\n" + ",\n".join(lines) + "\n}\n"
    write_atomic(path, text)
    # Four bytes a character at most: most records are not measured.
    if len(text) * 4 > MAX_FILE_BYTES and (size := len(text.encode("utf-8"))) > MAX_FILE_BYTES:
        notices.warn(
            f"{path}: {size:,} bytes, more than the {MAX_FILE_BYTES >> 20} MiB that report merge, repro"
            " and report compare read of a run record"
        )


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
        "shard": "all" if step.shard_all else None,
        "tests": tests_record(step, secrets),
        "outputs": {name: mask(value, secrets) for name, value in step.files.outputs.items()},
    }
    # Why it failed travels with the record: a merge may run where the log is not, and never
    # opens the file a record names. "" says the step printed nothing.
    if step.status.is_failure and step.log_tail is not None:
        record["log_tail"] = last_lines(step_tail(step, secrets=secrets), max_bytes=TAIL_BYTES)
    return record


def read_run_record(path: Path | str) -> RunResult:
    """The run recorded in a run.json file; a missing or invalid file is a `UsageError` naming it.

    A record is untrusted (another job's artifact): at most `MAX_FILE_BYTES` are read (64 MiB,
    as of a JUnit file), its JSON read strictly (no lone surrogate, NaN or Infinity), and every
    value checked, numbers held to what a run here writes."""
    where = Location(file=str(path))
    try:
        data = read_json_file(path)
    except Unreadable as why:
        if why.missing:
            raise UsageError("run record not found", location=where) from None
        raise UsageError(f"cannot read run record: {why.message}", location=where) from None
    except NotJson as why:
        place = Location(file=str(path), line=why.line, column=why.column)
        raise UsageError(f"not a run record: {why.message}", location=place) from None
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

    def number(
        self, data: Mapping[str, Any], key: str, at: str, bounds: tuple[int, int], *, whole: bool = True
    ) -> Any:
        """An optional number within `bounds` (a whole one unless not `whole`): a count or a time
        a record holds, never one that would make a reader loop or allocate without end."""
        value = self.optional(data, key, int if whole else (int, float), at)
        if value is not None and not bounds[0] <= value <= bounds[1]:
            shown = value if len(str(value)) <= 40 else f"{str(value)[:37]}..."
            raise self.fail(
                f"{at}.{key}" if at else key, f"{shown} is not from {bounds[0]:,} to {bounds[1]:,}"
            )
        return value

    def time(self, value: str, at: str) -> datetime:
        try:
            moment = datetime.fromisoformat(value)
            return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
        except (ValueError, OverflowError):  # not a time, or one that in UTC is past year 1 or 9999
            raise self.fail(at, f"not an ISO 8601 time: {value[:40]!r}") from None

    def run(self, data: Any) -> RunResult:
        if not isinstance(data, dict):
            raise self.fail("", "not a run record: expected a JSON object")
        version = data.get("version", RECORD_VERSION)
        if not isinstance(version, int) or isinstance(version, bool) or not 1 <= version <= RECORD_VERSION:
            shown = version if isinstance(version, int) and version > RECORD_VERSION else None
            why = "newer than this tool reads" if shown is not None else "unknown"
            raise self.fail("version", f"run record version {str(version)[:20]} is {why}")
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
            vars=self.texts(variables, "vars"),
            matrix_filters=self.matrix_filters(self.optional(data, "matrix_filters", dict, "") or {}),
            # A signal's number: the exit code of the merged run is 128 + it.
            interrupted_by=self.number(data, "interrupted_by", "", (1, signal.NSIG - 1)),
            shard=self.shard(self.optional(data, "shard", str, "")),
            notes=tuple(
                self.texts(dict(enumerate(self.optional(data, "notes", list, "") or ())), "notes").values()
            ),
            select=self.optional(data, "select", str, ""),
            branch=self.optional(data, "branch", str, ""),
            commit=self.optional(data, "commit", str, ""),
            comparison=read_comparison(data.get("comparison"), self.where),
        )

    def shard(self, value: str | None) -> str | None:
        """`I/N` as a run writes it: N at most `MAX_SHARDS` (a merge counts the shards of a set)."""
        if value is None:
            return None
        try:
            index, count = parse_shard(value)
        except ValueError as error:
            raise self.fail("shard", str(error)) from None
        return f"{index}/{count}"

    def texts(self, data: Mapping[Any, Any], at: str) -> dict[str, str]:
        """Text values, as a run writes them (another value would be turned into text here)."""
        for key, value in data.items():
            if not isinstance(value, str):
                raise self.fail(f"{at}[{key}]" if isinstance(key, int) else f"{at}.{key}", "expected text")
        return {str(key): value for key, value in data.items()}

    def matrix_filters(self, data: Mapping[str, Any]) -> dict[str, tuple[str, ...]]:
        filters = {}
        for key, values in data.items():
            if not isinstance(values, list) or not all(isinstance(value, str) for value in values):
                raise self.fail(f"matrix_filters.{key}", "expected a list of values")
            filters[str(key)] = tuple(values)
        return filters

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
            # Nested no deeper than a playbook's values: the reader refuses JSON past 100 levels.
            matrix=self.optional(data, "matrix", dict, at) or {},
            status=Status(status),
            exit_code=self.number(data, "exit_code", at, _EXIT_CODES),
            started=self.time(started, f"{at}.started") if started else None,
            finished=self.time(finished, f"{at}.finished") if finished else None,
            duration=float(self.number(data, "duration", at, _SECONDS, whole=False) or 0.0),
            attempts=self.number(data, "attempts", at, _COUNT) or 0,
            cached=bool(self.optional(data, "cached", bool, at)),
            reason=self.optional(data, "reason", str, at),
            log=self.optional(data, "log", str, at),
            continue_on_error=bool(self.optional(data, "continue_on_error", bool, at)),
            stage=self.optional(data, "stage", str, at),
            group=self.optional(data, "group", str, at),
            shard_all=self.shard_all(data, at),
            log_tail=self.log_tail(self.optional(data, "log_tail", str, at)),
            tests=read_tests(data.get("tests"), instance=step_id, at=f"{at}.tests", fail=self.fail),
            files=self.outputs(data.get("outputs"), f"{at}.outputs"),
        )

    def shard_all(self, data: Mapping[str, Any], at: str) -> bool:
        """A step's `shard`: "all" for a `shard: all` step, else null."""
        value: str | None = self.optional(data, "shard", str, at)
        if value not in (None, "all"):
            raise self.fail(f"{at}.shard", f"expected 'all' or null, not {value!r}")
        return value == "all"

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
        ratio = self.number(data, "speedup", at, _RATIO, whole=False)  # null where it means nothing
        utilization = self.optional(data, "resource_utilization", dict, at) or {}
        return RunStats(
            max_concurrency_seen=self.number(data, "max_concurrency_seen", at, _COUNT) or 0,
            resource_utilization={
                str(pool): float(
                    self.number(utilization, pool, f"{at}.resource_utilization", _RATIO, whole=False) or 0.0
                )
                for pool in utilization
            },
            critical_path=tuple(
                self.texts(
                    dict(enumerate(self.optional(data, "critical_path", list, at) or ())),
                    f"{at}.critical_path",
                ).values()
            ),
            serial_duration=float(self.number(data, "serial_duration", at, _SECONDS, whole=False) or 0.0),
            speedup=None if ratio is None else float(ratio),
        )


def _kinds(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)
