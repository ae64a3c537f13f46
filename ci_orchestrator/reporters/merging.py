"""`report merge`: the records of a run's shards (or of reruns) joined into one run: each
instance once, status and stats recomputed, shards missing or given twice said in `notes`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ci_orchestrator.errors import UsageError
from ci_orchestrator.reporters.comparison import merge_comparisons
from ci_orchestrator.results import RunResult, RunStats, RunStatus, StepResult, speedup
from ci_orchestrator.units import parse_shard

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from datetime import datetime


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
        if result.shard is not None:
            # At most MAX_SHARDS: a record read back says so (`_Reader.shard`), a run makes no more.
            index, count = parse_shard(result.shard)
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
