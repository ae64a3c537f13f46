"""The spine: each command's calls in order — read, expand, plan, select, run, report. No logic of its own."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import secrets as random_tokens
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ci_orchestrator import loader, matrix, selectors, settings
from ci_orchestrator.errors import EXIT_FAILED, EXIT_OK, OrchestratorError, UsageError
from ci_orchestrator.plan import Plan, build_plan
from ci_orchestrator.results import Observers

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    from ci_orchestrator.cache import CacheKey, StepCache
    from ci_orchestrator.history import History
    from ci_orchestrator.playbook import Playbook, Step
    from ci_orchestrator.reporters import ReportPaths
    from ci_orchestrator.results import RunResult, StepResult
    from ci_orchestrator.scheduler import Limits
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
    playbook = apply_step_defaults(
        loader.load_playbook(loader.find_playbook(selection.playbook, root=root)), config
    )
    variables = {**playbook.vars, **parse_pairs(selection.variables, option="--var")}
    filters = {
        key: tuple(value.split(","))
        for key, value in parse_pairs(selection.matrix, option="--matrix").items()
    }
    instances = matrix.expand(playbook, matrix_filters=filters, variables=variables)
    plan = selectors.select(
        build_plan(playbook, instances, variables=variables), selection.select, only=selection.only
    )
    if selection.shard:
        plan = shard_plan(plan, selection.shard, root=root)
    return Prepared(
        playbook=playbook, settings=config, plan=plan, variables=variables, matrix_filters=filters
    )


def apply_step_defaults(playbook: Playbook, config: Settings) -> Playbook:
    """Settings defaults by number range or selector go under what the step itself says; the
    parallel permission takes the most restrictive level. The settings' `execution` is the
    default of a playbook that does not write its own."""
    if "execution" not in playbook.key_locations and config.execution is not None:
        playbook = dataclasses.replace(playbook, execution=config.execution)
    if not config.step_defaults and config.allow_parallel:
        return playbook
    steps: list[Step] = []
    for step in playbook.steps:
        defaults = config.defaults_for(step.id, number=step.number, tags=step.tags, stage=step.stage)
        changes: dict[str, Any] = {}
        if not settings.most_restrictive(step.allow_parallel, defaults.allow_parallel, config.allow_parallel):
            changes["allow_parallel"] = False
        if defaults.timeout is not None and step.timeout is None:
            changes["timeout"] = defaults.timeout
        if defaults.retry is not None and not step.retry:
            changes["retry"] = defaults.retry
        if defaults.tags:
            changes["tags"] = tuple(dict.fromkeys([*step.tags, *defaults.tags]))
        steps.append(dataclasses.replace(step, **changes) if changes else step)
    return dataclasses.replace(playbook, steps=tuple(steps))


def shard_plan(plan: Plan, shard: str, *, root: Path) -> Plan:
    from ci_orchestrator import shard as sharding

    index, count = sharding.parse_shard(shard)
    parts = sharding.assign_shards(plan.waits_for, shard_weights(plan, root=root), count)
    return plan.subset(parts[index - 1])


def shard_weights(plan: Plan, *, root: Path) -> dict[str, float]:
    """Durations from runs of the whole plan only: a shard run must not change the split that
    the other shards of its set (run after it, here) compute."""
    return known_durations(plan.playbook.name, root=root, min_total=len(plan.instances))


def known_durations(playbook_name: str, *, root: Path, min_total: int = 0) -> dict[str, float]:
    from ci_orchestrator.history import History

    try:
        with History.open(root / STATE_DIR / "history.db") as history:
            return history.durations(playbook_name, min_total=min_total)
    except Exception:
        return {}


def new_run_id() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S") + "-" + random_tokens.token_hex(3)


def open_cache(options: RunOptions, config: Settings, *, root: Path) -> StepCache | None:
    if options.no_cache:
        return None
    from ci_orchestrator.cache import StepCache

    directory = (
        options.cache_dir
        or os.environ.get("CI_ORCHESTRATOR_CACHE_DIR")
        or config.get("cache-dir").value
        or str(STATE_DIR / "cache")
    )
    return StepCache.open(
        root / str(directory),
        workspace=root,
        size_limit=config.cache_size,
        read=not options.force,
        write=True,
    )


def exit_code(result: RunResult) -> int:
    from ci_orchestrator.scheduler import interrupt_exit_code

    code = interrupt_exit_code(result.interrupted_by)
    if code is not None:
        return code
    return EXIT_OK if result else EXIT_FAILED


def resolve_limits(prepared: Prepared, options: RunOptions) -> Limits:
    """Each level may lower concurrency (the smallest limit wins); the command line wins for the rest."""
    from ci_orchestrator.scheduler import Limits

    config = prepared.settings
    cpus = settings.available_cpus()
    asked = None
    if options.concurrency and options.concurrency != "auto":
        try:
            asked = int(options.concurrency)
        except ValueError:
            raise UsageError(f"--concurrency {options.concurrency!r}: expected a number or 'auto'") from None
        if asked < 1:
            raise UsageError("--concurrency must be at least 1")
    concurrency = settings.smallest_limit(asked, prepared.playbook.concurrency, config.concurrency) or cpus
    fail_fast = options.fail_fast
    if fail_fast is None:
        set_in_file = config.get("fail-fast").origin != "default"
        fail_fast = config.fail_fast if set_in_file else prepared.playbook.fail_fast
    timeout = settings.parse_duration(options.timeout) if options.timeout else config.timeout
    output = options.output or config.output.value
    return Limits(
        concurrency=concurrency,
        cpus=cpus,
        sequential=options.sequential,
        fail_fast=fail_fast,
        default_timeout=timeout,
        stream_output=output == "stream",
    )


def secret_values(playbook: Playbook) -> tuple[str, ...]:
    """The values of the env names listed in `secrets`, longest first (so none is half-masked)."""
    values = {os.environ.get(name) or playbook.env.get(name) or "" for name in playbook.secrets}
    return tuple(sorted((value for value in values if value), key=len, reverse=True))


def report_paths(options: RunOptions, *, root: Path) -> ReportPaths:
    from ci_orchestrator.reporters import ReportPaths

    return ReportPaths(
        junit=root / (options.junit or REPORTS_DIR / "junit.xml"),
        summary=root / (options.summary or REPORTS_DIR / "summary.md"),
        json=root / (options.json or REPORTS_DIR / "run.json"),
    )


def run(selection: Selection, options: RunOptions, *, root: Path | None = None) -> int:
    """Run the selected plan, write every report, and return the exit code."""
    from ci_orchestrator import scheduler
    from ci_orchestrator.launch import RunContext
    from ci_orchestrator.reporters.console import ConsoleReporter, OutputMode

    root = root or Path.cwd()
    prepared = prepare(selection, root=root)
    limits = resolve_limits(prepared, options)
    secrets = secret_values(prepared.playbook)
    mode = OutputMode(options.output or prepared.settings.output.value)
    console = ConsoleReporter(mode=mode, secrets=secrets)
    warn = _warn
    cache = open_cache(options, prepared.settings, root=root)
    opened_with = list(cache.warnings) if cache else []
    for warning in opened_with:
        warn(warning)
    run_id = new_run_id()
    recorder = HistoryRecorder.open(root / STATE_DIR / "history.db", prepared.playbook, warn=warn)
    recorder.reap_interrupted()
    context = RunContext(
        run_id=run_id,
        workspace=root,
        log_dir=root / STATE_DIR / "logs" / run_id,
        secrets=secrets,
        durations=recorder.durations(),
    )
    try:
        result = scheduler.execute(
            prepared.plan, limits=limits, context=context, cache=cache, observer=Observers(console, recorder)
        )
    finally:
        console.close()
        recorder.close()
        if cache is not None:
            # Entries refused or damaged during the run: each said once, after the run's output.
            for warning in cache.warnings[len(opened_with) :]:
                warn(warning)
            cache.close()
    result = dataclasses.replace(result, matrix_filters=prepared.matrix_filters)
    write_reports(result, options, root=root, warn=warn)
    return exit_code(result)


def _warn(message: str) -> None:
    print(f"ci-orchestrator: warning: {message}", file=sys.stderr)


def write_reports(result: RunResult, options: RunOptions, *, root: Path, warn: Callable[[str], None]) -> None:
    from ci_orchestrator import reporters
    from ci_orchestrator.reporters import github

    paths = report_paths(options, root=root)
    try:
        summary = reporters.write_all(result, paths)
    except reporters.ReportError as error:
        for line in error.lines():
            warn(line)
        summary = error.summary
    if github.active():
        github.publish(result, summary_text=summary, paths=paths)


def plan_text(selection: Selection, options: RunOptions, *, fmt: str, shards: int | None = None) -> str:
    """What `run` would do, in one of the plan formats; runs nothing."""
    from ci_orchestrator import planview

    try:
        kind = planview.PlanFormat(fmt)
    except ValueError:
        choices = ", ".join(item.value for item in planview.PlanFormat)
        raise UsageError(f"--format {fmt!r}: expected one of {choices}") from None
    root = Path.cwd()
    prepared = prepare(selection, root=root)
    plan = prepared.plan
    if kind is planview.PlanFormat.MERMAID:
        return planview.render_mermaid(plan)
    if kind is planview.PlanFormat.GITHUB_MATRIX:
        parts = None
        if shards:
            from ci_orchestrator import shard as sharding

            parts = sharding.assign_shards(plan.waits_for, shard_weights(plan, root=root), shards)
        return planview.render_github_matrix(plan, shards=parts)
    cache = open_cache(options, prepared.settings, root=root)
    status = cache_status(plan, cache) if cache else {}
    timeout = settings.parse_duration(options.timeout) if options.timeout else prepared.settings.timeout
    render = planview.render_json if kind is planview.PlanFormat.JSON else planview.render_text
    return render(plan, cache_status=status, default_timeout=timeout)


def cache_status(plan: Plan, cache: StepCache) -> dict[str, str | None]:
    """instance id -> `hit`, `miss`, or None when not cacheable, as if run now."""
    from ci_orchestrator.scheduler import cache_key

    keys: dict[str, CacheKey | None] = {}
    status: dict[str, str | None] = {}
    for instance in plan.instances:
        key = keys[instance.id] = cache_key(plan, cache, keys, instance)
        status[instance.id] = None if key is None else ("hit" if cache.lookup(key) else "miss")
    return status


def merge(records: Sequence[Path], options: RunOptions) -> int:
    """Join run records into one set of reports; exit as a run with those results would."""
    from ci_orchestrator.reporters.runrecord import merge_results, read_run_record

    if not records:
        raise UsageError("report merge needs at least one run record")
    result = merge_results([read_run_record(path) for path in records])
    write_reports(result, options, root=Path.cwd(), warn=_warn)
    return exit_code(result)


def repro(record: Path, instance: str | None, options: RunOptions) -> int:
    """Rerun here the failed instances of a recorded run (or the one named), as they ran."""
    from ci_orchestrator.reporters.runrecord import read_run_record

    recorded = read_run_record(record)
    if instance is not None:
        if instance not in {step.id for step in recorded.steps}:
            raise UsageError(f"{record}: no instance {instance!r} in this run")
        wanted = [instance]
    else:
        wanted = [step.id for step in recorded.steps if step.status.is_failure]
        if not wanted:
            raise UsageError(f"{record}: nothing failed in run {recorded.run_id}")
    selection = Selection(
        playbook=recorded.playbook_path,
        select=",".join(wanted),
        variables=tuple(f"{key}={value}" for key, value in recorded.vars.items()),
    )
    # Every failure named is to be seen again: one failing first must not skip the others.
    fail_fast = False if options.fail_fast is None else options.fail_fast
    return run(selection, dataclasses.replace(options, no_cache=True, fail_fast=fail_fast))


class HistoryRecorder:
    """Records the run in the local run database as it goes; a database that cannot be opened
    or written (damaged, full disk) is one warning, and the run goes on without it."""

    def __init__(
        self, history: History | None, playbook: Playbook, *, warn: Callable[[str], None] = _warn
    ) -> None:
        self.history = history
        self.playbook = playbook
        self.run_id = ""
        self.warn = warn

    @classmethod
    def open(cls, path: Path, playbook: Playbook, *, warn: Callable[[str], None]) -> HistoryRecorder:
        from ci_orchestrator.history import History

        try:
            return cls(History.open(path), playbook, warn=warn)
        except OrchestratorError as error:
            warn(f"run history unavailable: {error}")
            return cls(None, playbook, warn=warn)

    def _write(self, action: Callable[[History], object]) -> None:
        if self.history is None:
            return
        try:
            action(self.history)
        except OrchestratorError as error:
            self.warn(f"run history not written from here on: {error}")
            with contextlib.suppress(OrchestratorError):
                self.history.close()
            self.history = None

    def durations(self) -> dict[str, float]:
        if self.history is None:
            return {}
        try:
            return self.history.durations(self.playbook.name)
        except OrchestratorError:
            return {}

    def reap_interrupted(self) -> None:
        """Stops what runs killed before they could clean up (SIGKILL, a lost machine) left
        behind: processes that still carry the id of a run recorded as interrupted."""
        from ci_orchestrator.history import RunState
        from ci_orchestrator.processes import terminate_runs

        if self.history is None:
            return
        try:
            runs = self.history.runs(limit=20)
        except OrchestratorError:
            return
        interrupted = {run.run_id for run in runs if run.status is RunState.INTERRUPTED}
        if interrupted and (count := terminate_runs(interrupted, grace=1.0)):
            self.warn(f"stopped {count} process(es) left running by an interrupted run")

    def run_started(self, *, run_id: str, playbook: str, total: int) -> None:
        self.run_id = run_id
        self._write(
            lambda history: history.start_run(
                run_id=run_id,
                playbook=playbook,
                playbook_path=self.playbook.path,
                started=datetime.now(UTC),
                total=total,
            )
        )

    def step_started(self, *, instance_id: str, attempt: int) -> None:
        pass

    def step_output(self, *, instance_id: str, chunk: bytes) -> None:
        pass

    def step_finished(self, result: StepResult) -> None:
        self._write(lambda history: history.record_step(self.run_id, result))

    def run_finished(self, result: RunResult) -> None:
        self._write(lambda history: history.finish_run(result))

    def close(self) -> None:
        if self.history:
            with contextlib.suppress(OrchestratorError):
                self.history.close()
