"""The `cache` commands: looking after the step cache (stats, clear, prune), and asking it why a
step would run or be taken from it (explain)."""

from __future__ import annotations

import dataclasses
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from ci_orchestrator import notices, units
from ci_orchestrator.errors import UsageError, did_you_mean
from ci_orchestrator.options import RunOptions, Selection, cache_directory
from ci_orchestrator.pipeline import open_cache, prepare
from ci_orchestrator.playbook import lookup
from ci_orchestrator.settings import reading

if TYPE_CHECKING:
    from collections.abc import Iterator

    from ci_orchestrator.cache.step_cache import CacheKey, StepCache
    from ci_orchestrator.settings.model import Settings


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
    if lookup.look(directory).kind is lookup.Kind.MISSING:  # a question does not make the cache
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


def cache_explain_words(args: list[str], selection: Selection, cache_dir: str | None) -> str:
    """`cache explain [PLAYBOOK] STEP`, with the other options in `selection`."""
    if len(args) > 2:
        raise UsageError("cache explain takes [PLAYBOOK] STEP")
    playbook, step = (None, args[0]) if len(args) == 1 else (args[0], args[1])
    return cache_explain(dataclasses.replace(selection, playbook=playbook), step, cache_dir)


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
            if key is not None and instance.known_at_start:
                lines.append(
                    f"{instance.id}: its key holds values known only as it starts (steps, needs, hashFiles)"
                )
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
