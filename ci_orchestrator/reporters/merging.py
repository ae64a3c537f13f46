"""`report merge`: the records of a run's shards (or of reruns) joined into one run: each
instance once, status and stats recomputed, shards missing or given twice said in `notes`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ci_orchestrator.errors import UsageError
from ci_orchestrator.reporters.comparison import merge_comparisons
from ci_orchestrator.results import RunResult, RunStats, RunStatus, StepResult, speedup
from ci_orchestrator.units import parse_shard

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from datetime import datetime

_LISTED = 5  # instances a note names, at most


def merge_results(results: Sequence[RunResult]) -> RunResult:
    """One run from shard records: each instance once (see `_kept_steps`), whatever the order of
    the records.

    Status and stats are recomputed: wall time from the first start to the last finish, serial
    duration the sum of the instances kept, the longest critical path, the highest concurrency,
    and pool utilization weighted by each record's wall time. The merged run id is the records'
    own when they share one, else derived from all of them. Shards of a set of N missing fail the
    merged run (their steps are in no record), and so does an instance that two shards of a set
    both ran (they split different plans: what one ran twice another may have left out); a
    shard given twice is a note.
    """
    if not results:
        raise UsageError("no run records to merge")
    names = sorted({result.playbook for result in results})
    if len(names) > 1:
        raise UsageError(f"run records of different playbooks cannot be merged: {', '.join(names)}")
    steps, split_twice = _kept_steps(results)
    first = results[0]
    started = min(result.started for result in results)
    finished = max(result.finished for result in results)
    interrupted_by = next((r.interrupted_by for r in reversed(results) if r.interrupted_by is not None), None)
    merged_steps = tuple(steps.values())
    missing, notes = _shard_notes(results)
    # An instance in two shards of a set given once each: the shards split different plans, and
    # what one ran twice another may have left out, so the merge fails. Where a shard of the set
    # was given again (the set run again, maybe split otherwise), the later copy is a rerun.
    given_again = {count for count, indexes in _shards_given(results).items() if max(indexes.values()) > 1}
    inconsistent = any(
        copy.shard is not None and copy.shard[1] not in given_again
        for found in split_twice.values()
        for copy in found
    )
    notes += _split_notes(split_twice, fails=inconsistent)
    status = RunStatus.of(merged_steps, interrupted=interrupted_by is not None)
    return RunResult(
        run_id=_merged_run_id(results),
        playbook=first.playbook,
        playbook_path=first.playbook_path,
        status=RunStatus.FAILED if (missing or inconsistent) and status is RunStatus.PASSED else status,
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


@dataclass(frozen=True, slots=True)
class _Copy:
    """One record's result of an instance, when it ended, and the shard (I, N) of its record."""

    step: StepResult
    end: datetime
    shard: tuple[int, int] | None

    def replaces(self, kept: _Copy) -> bool:
        """Whether this copy is kept rather than `kept`. Copies of a `shard: all` step that
        shards of one set ran side by side: a failed one (a failure must show), else the longest.
        Otherwise a rerun (a shard run again, or shards that split another plan): the one that
        ended last, a failed one of two that ended together."""
        if self.side_by_side(kept) and self.step.shard_all and kept.step.shard_all:
            mine = (self.step.status.is_failure, self.step.duration, self.end)
            return mine > (kept.step.status.is_failure, kept.step.duration, kept.end)
        return (self.end, self.step.status.is_failure) >= (kept.end, kept.step.status.is_failure)

    def side_by_side(self, other: _Copy) -> bool:
        """Whether different shards of one set ran both copies (an instance another split put on
        another shard is a rerun, as in one shard)."""
        shards = self.shard, other.shard
        return (
            shards[0] is not None
            and shards[1] is not None
            and shards[0][1] == shards[1][1]
            and shards[0][0] != shards[1][0]
        )


def _kept_steps(results: Sequence[RunResult]) -> tuple[dict[str, StepResult], dict[str, list[_Copy]]]:
    """Each instance once, at the place it first has in the records (see `_Copy.replaces`); and
    the instances, other than `shard: all` steps, that different shards of one set both ran.

    A shard's own reruns are settled first: a rerun that passed replaces the failure of its own
    shard's copy.
    """
    position: dict[str, int] = {}
    latest: dict[tuple[int, int] | None, dict[str, _Copy]] = {}
    for result in results:
        shard = _shard_label(result.shard)
        chosen = latest.setdefault(shard, {})
        for step in result.steps:
            position.setdefault(step.id, len(position))
            # A step that never ran ended with its run.
            copy = _Copy(step, step.finished or result.finished, shard)
            if step.id not in chosen or copy.replaces(chosen[step.id]):
                chosen[step.id] = copy
    kept: dict[str, _Copy] = {}
    split_twice: dict[str, list[_Copy]] = {}
    for chosen in latest.values():
        for instance, copy in chosen.items():
            if instance in kept and copy.side_by_side(kept[instance]) and not copy.step.shard_all:
                split_twice.setdefault(instance, [kept[instance]]).append(copy)
            if instance not in kept or copy.replaces(kept[instance]):
                kept[instance] = copy
    ordered = sorted(kept, key=position.__getitem__)
    return {instance: kept[instance].step for instance in ordered}, split_twice


def _split_notes(split_twice: Mapping[str, Sequence[_Copy]], *, fails: bool) -> list[str]:
    """A note for the instances that shards of one set both ran, naming the first few."""
    if not split_twice:
        return []
    shown = [
        f"{instance!r} ({', '.join(sorted({f'{c.shard[0]}/{c.shard[1]}' for c in found if c.shard}))})"
        for instance, found in list(split_twice.items())[:_LISTED]
    ]
    more = f" and {len(split_twice) - _LISTED} more" if len(split_twice) > _LISTED else ""
    return [
        f"{'an instance ran' if len(split_twice) == 1 else f'{len(split_twice)} instances ran'} in"
        f" more than one shard of a set: {', '.join(shown)}{more}; the shards split different plans"
        " (each job split its own playbook or history): the copy that ended last is kept, and what"
        " one ran twice another may have left out" + (": the merged run fails" if fails else "")
    ]


def _shard_label(shard: str | None) -> tuple[int, int] | None:
    """`I/N` as (I, N), N at most `MAX_SHARDS` (a record read back is held to it, and a merge
    counts the shards of a set); None for a record of no shard (or an unreadable label)."""
    if shard is None:
        return None
    try:
        return parse_shard(shard)
    except ValueError:
        return None


def _shards_given(results: Sequence[RunResult]) -> dict[int, dict[int, int]]:
    """For each set of N shards, how many times each shard's record was given."""
    seen: dict[int, dict[int, int]] = {}
    for result in results:
        if (label := _shard_label(result.shard)) is not None:
            index, count = label
            counted = seen.setdefault(count, {})
            counted[index] = counted.get(index, 0) + 1
    return seen


def _shard_notes(results: Sequence[RunResult]) -> tuple[bool, list[str]]:
    """Whether shards are missing, and a note for each set of N with shards missing or repeated.

    Records without a shard (whole runs, or written before shards were recorded) are not checked.
    """
    seen = _shards_given(results)
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
