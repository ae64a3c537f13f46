"""The spine: each command's calls in order — read, expand, plan, select, run, report. No logic of its own."""

from __future__ import annotations

import dataclasses
import os
import secrets as random_tokens
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from ci_orchestrator import loader, matrix, selectors, settings
from ci_orchestrator.errors import EXIT_FAILED, EXIT_OK, UsageError
from ci_orchestrator.plan import Plan, build_plan

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from ci_orchestrator.cache import StepCache
    from ci_orchestrator.playbook import Playbook, Step
    from ci_orchestrator.results import RunResult
    from ci_orchestrator.settings import Settings

STATE_DIR = Path(".ci-orchestrator")
REPORTS_DIR = STATE_DIR / "reports"


@dataclass(frozen=True, slots=True, kw_only=True)
class Selection:
    """What to plan: the playbook and the options that shape its plan."""

    playbook: str | None = None
    select: str | None = None
    only: bool = False
    matrix: tuple[str, ...] = ()  # KEY=V1,V2
    variables: tuple[str, ...] = ()  # KEY=VALUE
    shard: str | None = None
    profile: str | None = None
    config: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class RunOptions:
    """How to run it."""

    concurrency: str | None = None
    sequential: bool = False
    no_cache: bool = False
    force: bool = False
    cache_dir: str | None = None
    timeout: str | None = None
    fail_fast: bool | None = None
    junit: str | None = None
    summary: str | None = None
    json: str | None = None
    output: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Prepared:
    playbook: Playbook
    settings: Settings
    plan: Plan
    variables: Mapping[str, str] = field(default_factory=dict)
    matrix_filters: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


def parse_pairs(pairs: Sequence[str], *, option: str) -> dict[str, str]:
    values: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"{option} {pair!r}: expected KEY=VALUE")
        values[key.strip()] = value
    return values


def prepare(selection: Selection, *, root: Path | None = None) -> Prepared:
    """Read the playbook and settings, expand, plan, select and shard."""
    root = root or Path.cwd()
    config = settings.load_settings(
        root, config=Path(selection.config) if selection.config else None, profile=selection.profile
    )
    playbook = apply_step_defaults(loader.load_playbook(loader.find_playbook(selection.playbook, root=root)), config)
    variables = {**playbook.vars, **parse_pairs(selection.variables, option="--var")}
    filters = {
        key: tuple(value.split(","))
        for key, value in parse_pairs(selection.matrix, option="--matrix").items()
    }
    instances = matrix.expand(playbook, matrix_filters=filters, variables=variables)
    plan = selectors.select(build_plan(playbook, instances, variables=variables), selection.select,
                            only=selection.only)
    if selection.shard:
        plan = shard_plan(plan, selection.shard, root=root)
    return Prepared(playbook=playbook, settings=config, plan=plan, variables=variables, matrix_filters=filters)


def apply_step_defaults(playbook: Playbook, config: Settings) -> Playbook:
    """Settings defaults by number range or selector, under what the step itself says; the
    parallel permission takes the most restrictive level."""
    if not config.step_defaults and config.get("allow-parallel").value is not False:
        return playbook
    steps: list[Step] = []
    playbook_says = config.get("allow-parallel").value
    for step in playbook.steps:
        changes: dict[str, object] = {}
        allow = [step.allow_parallel, playbook_says if isinstance(playbook_says, bool) else None]
        for defaults in config.step_defaults:
            if not selectors.matches(
                defaults.pattern, step.id, step_id=step.id, number=step.number, stage=step.stage, tags=step.tags
            ):
                continue
            allow.append(defaults.allow_parallel)
            if defaults.timeout is not None and step.timeout is None and "timeout" not in changes:
                changes["timeout"] = defaults.timeout
            if defaults.retry is not None and not step.retry and "retry" not in changes:
                changes["retry"] = defaults.retry
        restrictive = settings.most_restrictive(*allow)
        if restrictive is False:
            changes["allow_parallel"] = False
        steps.append(dataclasses.replace(step, **changes) if changes else step)  # type: ignore[arg-type]
    return dataclasses.replace(playbook, steps=tuple(steps))


def shard_plan(plan: Plan, shard: str, *, root: Path) -> Plan:
    from ci_orchestrator import shard as sharding

    index, count = sharding.parse_shard(shard)
    parts = sharding.assign_shards(plan.waits_for, known_durations(plan.playbook.name, root=root), count)
    return plan.subset(parts[index - 1])


def known_durations(playbook_name: str, *, root: Path) -> dict[str, float]:
    from ci_orchestrator.history import History

    try:
        with History.open(root / STATE_DIR / "history.db") as history:
            return history.durations(playbook_name)
    except Exception:  # noqa: BLE001 - no history is the same as an empty one here
        return {}


def new_run_id() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S") + "-" + random_tokens.token_hex(3)


def open_cache(options: RunOptions, config: Settings, *, root: Path) -> StepCache | None:
    if options.no_cache:
        return None
    from ci_orchestrator.cache import StepCache, parse_size

    directory = (
        options.cache_dir
        or os.environ.get("CI_ORCHESTRATOR_CACHE_DIR")
        or config.get("cache-dir").value
        or str(STATE_DIR / "cache")
    )
    size = config.get("cache-size").value
    return StepCache.open(
        root / str(directory),
        workspace=root,
        size_limit=parse_size(str(size)) if size else 2 * 1024**3,
        read=not options.force,
        write=True,
    )


def exit_code(result: RunResult) -> int:
    from ci_orchestrator.scheduler import interrupt_exit_code

    code = interrupt_exit_code(result.interrupted_by)
    if code is not None:
        return code
    return EXIT_OK if result else EXIT_FAILED
