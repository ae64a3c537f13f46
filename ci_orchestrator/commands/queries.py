"""The read-only commands: list, validate, cache upkeep and explain, history, config get."""

from __future__ import annotations

import os
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from ci_orchestrator import notices, units
from ci_orchestrator.errors import OrchestratorError, UsageError, did_you_mean
from ci_orchestrator.matrix import expansion
from ci_orchestrator.options import (
    STATE_DIR,
    RunOptions,
    Selection,
    apply_step_defaults,
    cache_directory,
)
from ci_orchestrator.pipeline import open_cache, prepare
from ci_orchestrator.plan.ordering import build_plan
from ci_orchestrator.playbook import loader, paths
from ci_orchestrator.playbook.model import Instance
from ci_orchestrator.settings import reading

if TYPE_CHECKING:
    from collections.abc import Iterator

    from ci_orchestrator.cache.step_cache import CacheKey, StepCache
    from ci_orchestrator.errors import Problem
    from ci_orchestrator.playbook.model import Playbook, Step
    from ci_orchestrator.settings.model import Settings


def _table(rows: list[list[str]]) -> list[str]:
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    return [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in rows
    ]


def _mode(step: Step, playbook: Playbook) -> str:
    if step.allow_parallel is False:
        return "exclusive"
    if step.group is not None:
        return f"group {step.group}"
    if step.parallel:
        return "parallel"
    block = next((group for group in playbook.groups if group.name == step.block), None)
    execution = block.execution if block else playbook.execution
    return execution.value


def list_text(selection: Selection) -> str:
    """The steps with id, number, name, stage, tags, parallel mode and needs; then the groups."""
    root = Path.cwd()
    config = reading.read_settings(
        root, config=Path(selection.config) if selection.config else None, profile=selection.profile
    )
    playbook = apply_step_defaults(
        loader.load_playbook(loader.find_playbook(selection.playbook, root=root)), config
    )
    rows = [["ID", "NUMBER", "NAME", "STAGE", "TAGS", "MODE", "NEEDS"]]
    for step in playbook.steps:
        rows.append(
            [
                step.id,
                step.number or "-",
                step.name,
                step.stage or "-",
                ",".join(step.tags) or "-",
                _mode(step, playbook),
                ",".join(step.needs) or "-",
            ]
        )
    lines = [f"{playbook.name}: {len(playbook.steps)} steps ({playbook.execution.value})", *_table(rows)]
    if playbook.groups:
        lines.append("")
        group_rows = []
        for group in playbook.groups:
            flags = [group.execution.value] + (["stop-on-error"] if group.stop_on_error else [])
            count = len(group.step_ids)
            group_rows.append([group.name, f"[{', '.join(flags)}]", f"{count} step{'s' * (count != 1)}"])
        lines.extend(_table(group_rows))
    return "\n".join(lines)


def validate_one(name: str) -> str:
    """Load, expand and plan one playbook; success says what was checked.

    Matrix and expression problems and graph problems (needs, pools, cycles) are raised
    together, so one pass over a file shows everything wrong with it.
    """
    root = Path.cwd()
    playbook = loader.load_playbook(loader.find_playbook(name, root=root))
    failures: list[OrchestratorError] = []
    try:
        instances = expansion.expand(playbook)
    except OrchestratorError as error:
        failures.append(error)
        # The graph depends on steps, not on their matrix values: one plain instance per
        # step still finds every unknown need, pool too small and cycle.
        instances = [Instance.as_written(step) for step in playbook.steps]
    try:
        build_plan(playbook, instances)
    except OrchestratorError as error:
        failures.append(error)
    if failures:
        problems = sorted((problem for failure in failures for problem in failure.problems), key=_place)
        raise type(failures[0]).from_problems(problems)
    steps, count = len(playbook.steps), len(instances)
    return f"{playbook.path}: valid ({_counted(steps, 'step')}, {_counted(count, 'instance')})"


def _counted(count: int, noun: str) -> str:
    return f"{count} {noun}{'s' * (count != 1)}"


def _place(problem: Problem) -> tuple[int, int]:
    return (problem.location.line, problem.location.column) if problem.location else (0, 0)


def _settings(choice: Selection) -> Settings:
    """The settings of `choice`'s file and profile, in the current folder."""
    config = Path(choice.config) if choice.config else None
    return reading.read_settings(Path.cwd(), config=config, profile=choice.profile)


@contextmanager
def _cache(cache_dir: str | None, settings: Settings) -> Iterator[StepCache]:
    """The step cache `run` would use with these options (`--cache-dir`, else the environment,
    else the settings), open for the block. Its warnings are not said: the answer names what
    makes the cache unusable, and a question does not warn about the steps it looks at."""
    with notices.sent_to(_unsaid):
        cache = open_cache(RunOptions(cache_dir=cache_dir), settings, root=Path.cwd())
        assert cache is not None  # only `--no-cache` gives None
        with cache:
            yield cache


def _unsaid(_message: str) -> None:
    pass


def _size(size: int) -> str:
    """`1.5 MiB (1572864 bytes)`: readable, and exact for scripts."""
    value, unit = float(size), "B"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            break
        value /= 1024
    shown = f"{size} B" if unit == "B" else f"{value:.1f} {unit}"
    return f"{shown} ({size} bytes)" if unit != "B" else shown


def cache_stats(cache_dir: str | None, *, choice: Selection) -> str:
    """Entries, bytes on disk, and the hits and misses of the recent runs."""
    from ci_orchestrator.cache.store import RECENT_RUNS

    settings = _settings(choice)
    directory = cache_directory(RunOptions(cache_dir=cache_dir), settings, root=Path.cwd())
    if paths.look(directory).kind is paths.Kind.MISSING:  # a question does not make the cache
        return f"cache    {directory}\nentries  0 (no run has stored anything there yet)"
    with _cache(cache_dir, settings) as cache:
        problem = cache.unusable
        stats = cache.stats()
        directory = cache.directory
    if problem is not None:
        return f"{problem}\n(`cache clear` starts it afresh)"
    ratio = f" ({stats.hits / (stats.hits + stats.misses):.0%} hits)" if stats.hits + stats.misses else ""
    return "\n".join(
        [
            f"cache    {directory}",
            f"entries  {stats.entries}",
            f"size     {_size(stats.size)}",
            f"hits     {stats.hits}",
            f"misses   {stats.misses}{ratio}",
            f"runs     {stats.runs} (the most recent, up to {RECENT_RUNS}, are counted)",
        ]
    )


def cache_clear(cache_dir: str | None, *, choice: Selection) -> str:
    """Removes every stored result; a damaged cache is removed whole, so the next run starts afresh."""
    from ci_orchestrator.cache.store import STORES

    with _cache(cache_dir, _settings(choice)) as cache:
        if cache.enabled:
            entries = cache.stats().entries
            cache.clear()
            return f"cache cleared: {entries} entries removed from {cache.directory}"
        directory = cache.directory
    # Only the cache's own stores: the folder itself may be one the user named, holding more.
    for store in STORES:
        shutil.rmtree(directory / store, ignore_errors=True)
    return f"cache cleared: the damaged cache at {directory} was removed"


def cache_prune(cache_dir: str | None, max_size: str | None, *, choice: Selection) -> str:
    """Evicts least recently used results until the cache takes at most `max_size` on disk (by
    default the settings' `cache-size`)."""
    settings = _settings(choice)
    try:
        limit = settings.cache_size if max_size is None else units.parse_size(max_size)
    except ValueError as error:
        raise UsageError(f"--max-size {max_size!r}: {error}") from None
    with _cache(cache_dir, settings) as cache:
        problem = cache.unusable
        if problem is not None:
            raise UsageError(f"{problem}; `cache clear` starts it afresh")
        removed = cache.prune(limit)
        stats = cache.stats()
    return (
        f"evicted {_entries(removed)} (limit {_size(limit)}); "
        f"{_entries(stats.entries)} left, {_size(stats.size)} on disk"
    )


def _entries(count: int) -> str:
    return f"{count} entry" if count == 1 else f"{count} entries"


def cache_explain(selection: Selection, step_id: str, cache_dir: str | None) -> str:
    """Why each instance of a step would run, or be taken from the cache."""
    prepared = prepare(selection)
    plan = prepared.plan
    wanted = {instance.id for instance in plan.instances if step_id in (instance.id, instance.step.id)}
    if not wanted:
        names = sorted({instance.step.id for instance in plan.instances})
        hint = did_you_mean(step_id, names) or f"; its steps: {', '.join(names)}"
        raise UsageError(f"no step {step_id!r} in {prepared.playbook.path}{hint}")
    lines: list[str] = []
    with _cache(cache_dir, prepared.settings) as cache:
        problem = cache.unusable
        if problem is not None:
            return f"{problem}: every step would run"
        # Every key up to the last wanted instance: a key is built on those of what it waits for.
        last = max(index for index, instance in enumerate(plan.instances) if instance.id in wanted)
        keys: dict[str, CacheKey | None] = {}
        for instance in plan.instances[: last + 1]:
            key = cache.key_in_plan(plan, keys, instance)
            if instance.id not in wanted:
                continue
            if key is None:
                why = "`cache: false`" if instance.step.cache is False else "no inputs and no `cache: true`"
                lines.append(f"{instance.id}: not cacheable ({why}): it always runs")
                continue
            reasons = cache.explain(instance, key)
            if not reasons:
                lines.append(f"{instance.id}: cached, nothing changed since its last stored success")
            else:
                lines.append(f"{instance.id}: will run")
                lines.extend(f"  - {reason}" for reason in reasons)
    return "\n".join(lines)


def _history_path() -> Path:
    return Path.cwd() / STATE_DIR / "history.db"


def history_list(limit: int) -> str:
    from ci_orchestrator.history.database import History

    if limit < 1:
        raise UsageError(f"--limit must be at least 1, got {limit}")
    if not _history_path().is_file():  # a question does not make the database
        return "no runs recorded yet"
    with History.open(_history_path()) as history:
        runs = history.runs(limit)
    if not runs:
        return "no runs recorded yet"
    rows = [["RUN", "PLAYBOOK", "STATUS", "STARTED", "DURATION", "STEPS"]]
    for run in runs:
        counts = ", ".join(f"{count} {status.value}" for status, count in run.counts.items() if count)
        rows.append(
            [
                run.run_id,
                run.playbook,
                run.status.value,
                run.started.strftime("%Y-%m-%d %H:%M:%S"),
                f"{run.duration:.1f}s" if run.duration is not None else "-",
                counts or f"{run.total} planned",
            ]
        )
    return "\n".join(_table(rows))


def history_show(run_id: str) -> str:
    from ci_orchestrator.history.database import History

    detail = None
    if _history_path().is_file():
        with History.open(_history_path()) as history:
            detail = history.run(run_id)
    if detail is None:
        raise UsageError(f"no run {run_id!r} in the history")
    rows = [["STEP", "STATUS", "EXIT", "ATTEMPTS", "DURATION", "REASON"]]
    for step in detail.steps:
        rows.append(
            [
                step.id,
                step.status.value,
                "-" if step.exit_code is None else str(step.exit_code),
                str(step.attempts),
                f"{step.duration:.2f}s",
                step.reason or "",
            ]
        )
    run = detail.summary
    head = f"run {run.run_id}  {run.playbook}  {run.status.value}"
    return "\n".join([head, *_table(rows)])


def config_get(key: str, *, profile: str | None, config: str | None) -> str:
    """`concurrency = 4  (profile ci, ci-orchestrator.toml:7)`."""
    loaded = reading.read_settings(
        Path.cwd(), config=Path(config) if config else None, profile=profile, environ=os.environ
    )
    setting = loaded.get(key)
    return f"{setting.key} = {setting.text}  ({setting.origin})"
