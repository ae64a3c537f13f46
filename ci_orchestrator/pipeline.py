"""The spine: each command's calls in order — read, expand, plan, select, run, report. No logic of its own."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from ci_orchestrator import notices
from ci_orchestrator.errors import EXIT_FAILED, EXIT_OK, OrchestratorError, UsageError, signal_exit_code
from ci_orchestrator.history.recorder import HistoryRecorder
from ci_orchestrator.options import (
    STATE_DIR,
    RunOptions,
    Selection,
    apply_step_defaults,
    asked_concurrency,
    cache_directory,
    concurrency_set,
    default_timeout,
    fail_fast,
    new_run_id,
    output_mode,
    parse_pairs,
    report_files,
)
from ci_orchestrator.plan import selectors
from ci_orchestrator.plan.checking import checked_plan
from ci_orchestrator.playbook import loader, lookup
from ci_orchestrator.results import Observers
from ci_orchestrator.settings import reading
from ci_orchestrator.workflows import generated

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from ci_orchestrator.cache.step_cache import CacheKey, StepCache
    from ci_orchestrator.plan.ordering import Plan
    from ci_orchestrator.playbook.model import Playbook
    from ci_orchestrator.reporters.writing import ReportPaths
    from ci_orchestrator.results import RunResult
    from ci_orchestrator.run.scheduler import Limits
    from ci_orchestrator.settings.model import Settings


@dataclass(frozen=True, slots=True, kw_only=True)
class Prepared:
    playbook: Playbook
    settings: Settings
    plan: Plan
    variables: Mapping[str, str] = field(default_factory=dict)
    matrix_filters: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    shard: str | None = None  # `I/N` of a `--shard` run, as run.json records it
    select: str | None = None  # the `--select` expression
    # Every instance of the playbook before `--select` and `--shard` chose among them: one that a
    # baseline run has and this plan has not was left out, not removed.
    planned: frozenset[str] = frozenset()


def prepare(selection: Selection, *, root: Path | None = None) -> Prepared:
    """Read the playbook and settings, expand, plan, select and shard."""
    root = root or Path.cwd()
    config = reading.read_settings(
        root, config=Path(selection.config) if selection.config else None, profile=selection.profile
    )
    # Read as far as it can be: every problem, of reading or of a later stage, is reported at once.
    playbook, problems = loader.read_playbook(
        generated.playbook_file(selection.playbook, root=root, options=selection.workflow_options())
    )
    playbook = apply_step_defaults(playbook, config)
    variables = {**playbook.vars, **parse_pairs(selection.variables, option="--var")}
    filters = {
        key: tuple(value.split(","))
        for key, value in parse_pairs(selection.matrix, option="--matrix").items()
    }
    whole = checked_plan(playbook, problems, matrix_filters=filters, variables=variables)
    plan = selectors.select(whole, selection.select, only=selection.only)
    if selection.instances:
        plan = selectors.select_exact(plan, selection.instances, only=selection.only)
    shard = None
    if selection.shard_instances is not None and not selection.shard:
        raise UsageError("--shard-instances goes with --shard I/N: the shard those instances are")
    if selection.shard:
        from ci_orchestrator.commands import sharding

        plan, shard = sharding.shard_plan(
            plan, selection.shard, root=root, instances=selection.shard_instances
        )
    return Prepared(
        playbook=playbook,
        settings=config,
        plan=plan,
        variables=variables,
        matrix_filters=filters,
        shard=shard,
        # A repro's exact instances are a selection too: its record must not read as a run of the
        # whole playbook (the next run's baseline would count the rest as added).
        select=", ".join(selection.instances) if selection.instances else selection.select,
        planned=frozenset(instance.id for instance in whole.instances),
    )


def exit_code(result: RunResult) -> int:
    if result.interrupted_by is not None:
        return signal_exit_code(result.interrupted_by)
    return EXIT_OK if result else EXIT_FAILED


def run(selection: Selection, options: RunOptions, *, root: Path | None = None) -> int:
    """Run the selected plan, write every report, and return the exit code.

    A signal that comes once the plan is made waits until the reports are written (while steps
    run, the run's supervisor takes it over and interrupts them), then gives the exit code.
    """
    from ci_orchestrator.run.interrupts import Held

    root = root or Path.cwd()
    prepared = prepare(selection, root=root)
    with Held() as held:
        code = run_prepared(prepared, options, root=root)
    return code if held.signum is None else signal_exit_code(held.signum)


def run_prepared(prepared: Prepared, options: RunOptions, *, root: Path) -> int:
    """Run a prepared plan, write every report, and return the exit code."""
    from ci_orchestrator.commands import baseline as baselines
    from ci_orchestrator.history import revision as revisions
    from ci_orchestrator.output.masking import MIN_LENGTH
    from ci_orchestrator.reporters.console import ConsoleReporter
    from ci_orchestrator.reporters.logs import with_tails
    from ci_orchestrator.run import scheduler
    from ci_orchestrator.run.log_retention import prune_logs
    from ci_orchestrator.run.process_specs import RunContext
    from ci_orchestrator.run.process_tree import terminate_runs
    from ci_orchestrator.run.secret_values import secret_values

    # First: a baseline record that cannot be read is a usage error before anything runs.
    choice = baselines.choose(options.baseline, prepared.playbook.name)
    limits = run_limits(prepared, options)
    # Over this process's environment, as the scheduler builds each step's: the values the steps get.
    run_secrets = secret_values(prepared.plan, base_env=os.environ)
    secrets = run_secrets.masks
    for name in run_secrets.too_short:
        notices.warn(
            f"secret {name} is shorter than {MIN_LENGTH} characters: not masked, it would hide ordinary text"
        )
    mode = output_mode(options, prepared.settings)
    console = ConsoleReporter(mode=mode, secrets=secrets)
    cache = open_cache(options, prepared.settings, root=root)
    run_id = new_run_id()
    revision = revisions.current(root)

    def label(result: RunResult) -> RunResult:
        """What the run was of: its part of the playbook, its branch and commit."""
        return dataclasses.replace(
            result,
            matrix_filters=prepared.matrix_filters,
            shard=prepared.shard,
            select=prepared.select,
            branch=revision.branch,
            commit=revision.commit,
        )

    recorder = HistoryRecorder.open(
        root / STATE_DIR / "history.db", prepared.playbook, label=label, secrets=secrets
    )
    choice = baselines.from_history(
        choice, recorder.history, prepared.playbook.name, revision, before=datetime.now(UTC)
    )
    interrupted = recorder.interrupted_runs()
    if interrupted and (count := terminate_runs(interrupted, grace=1.0)):
        notices.warn(f"stopped {count} process(es) left running by an interrupted run")
    context = RunContext(
        run_id=run_id,
        workspace=root,
        log_dir=root / STATE_DIR / "logs" / run_id,
        secrets=secrets,
        durations=recorder.durations(prepared.plan.order),
        variables=prepared.variables,
        secret_names=prepared.playbook.secrets,
    )
    # What goes wrong while steps run (an entry refused or damaged, the history lost) is said
    # once the run's output is done: a live view of the running steps is not broken into.
    with notices.held():
        try:
            result = scheduler.execute(
                prepared.plan,
                limits=limits,
                context=context,
                cache=cache,
                observer=Observers(console, recorder),
            )
        finally:
            console.close()
            recorder.close()
            if cache is not None:
                cache.close()
    # Its secrets hold what the steps announced with `::add-mask::` too (run/handover).
    result = label(result)
    result = dataclasses.replace(
        result, comparison=baselines.compared(choice, result, planned=prepared.planned)
    )
    # The one time a report looks at a log: the run's own, read here. A record is never read so.
    write_reports(with_tails(result), options, root=root)
    prune_logs(context.log_dir.parent, current=run_id)
    return exit_code(result)


def run_limits(prepared: Prepared, options: RunOptions) -> Limits:
    """The scheduler's limits: each level may lower concurrency (the smallest limit wins); the
    command line wins for the rest."""
    from ci_orchestrator.cpus import available_cpus
    from ci_orchestrator.output.mode import OutputMode
    from ci_orchestrator.run.scheduler import Limits

    cpus = available_cpus()
    return Limits(
        concurrency=concurrency_set(prepared.playbook, prepared.settings, options) or cpus,
        cpus=cpus,
        sequential=options.sequential,
        fail_fast=fail_fast(prepared.playbook, prepared.settings, options),
        default_timeout=default_timeout(options, prepared.settings),
        stream_output=output_mode(options, prepared.settings) is OutputMode.STREAM,
    )


def open_cache(options: RunOptions, config: Settings, *, root: Path) -> StepCache | None:
    """The step cache the options ask for; None with `--no-cache`."""
    if options.no_cache:
        return None
    from ci_orchestrator.cache.step_cache import StepCache

    return StepCache.open(
        cache_directory(options, config, root=root),
        workspace=root,
        size_limit=config.cache_size,
        read=not options.force,
        write=True,
        fresh=frozenset(options.fresh),
    )


def report_paths(options: RunOptions, *, root: Path) -> ReportPaths:
    from ci_orchestrator.reporters.writing import ReportPaths

    junit, summary, record = report_files(options, root=root)
    return ReportPaths(junit=junit, summary=summary, json=record)


def write_reports(result: RunResult, options: RunOptions, *, root: Path) -> None:
    from ci_orchestrator.reporters import github, writing

    paths = report_paths(options, root=root)
    try:
        summary = writing.write_all(result, paths)
    except writing.ReportError as error:
        for line in error.lines():
            notices.warn(line)
        summary = error.summary
    if github.active():
        github.publish(result, summary_text=summary, paths=paths)


def plan_text(selection: Selection, options: RunOptions, *, fmt: str, shards: int | None = None) -> str:
    """What `run` would do, in one of the plan formats; runs nothing."""
    from ci_orchestrator.plan import views

    try:
        kind = views.PlanFormat(fmt)
    except ValueError:
        choices = ", ".join(item.value for item in views.PlanFormat)
        raise UsageError(f"--format {fmt!r}: expected one of {choices}") from None
    if shards is not None and kind is not views.PlanFormat.GITHUB_MATRIX:
        raise UsageError("--shards goes with --format github-matrix")
    asked_concurrency(options)  # checked as `run` checks it
    root = Path.cwd()
    prepared = prepare(selection, root=root)
    plan = prepared.plan
    timeout = default_timeout(options, prepared.settings)
    if kind is views.PlanFormat.MERMAID:
        return views.render_mermaid(plan)
    if kind is views.PlanFormat.GITHUB_MATRIX:
        from ci_orchestrator.commands import sharding

        parts = None if shards is None else sharding.matrix_shards(plan, shards, root=root).shards
        return views.render_github_matrix(plan, shards=parts)
    status: dict[str, str | None] = {}
    cache = open_cache(options, prepared.settings, root=root)
    if cache is not None:
        with cache:
            status = cache_status(plan, cache)
    if kind is views.PlanFormat.JSON:
        return views.render_json(plan, cache_status=status, default_timeout=timeout)
    # What the user set, not the CPUs of the machine planning: the same plan text anywhere.
    at_once = 1 if options.sequential else concurrency_set(prepared.playbook, prepared.settings, options)
    return views.render_text(plan, cache_status=status, default_timeout=timeout, at_once=at_once)


def cache_status(plan: Plan, cache: StepCache) -> dict[str, str | None]:
    """instance id -> `hit`, `miss`, or None when not cacheable, as if run now."""
    keys: dict[str, CacheKey | None] = {}
    status: dict[str, str | None] = {}
    for instance in plan.instances:
        key = cache.key_in_plan(plan, keys, instance)
        # A deferred instance's key holds values known only as it starts (`steps`, `hashFiles`).
        unknown = key is None or instance.known_at_start
        status[instance.id] = None if unknown else ("hit" if key and cache.lookup(key) else "miss")
    return status


def merge(records: Sequence[Path], options: RunOptions) -> int:
    """Join run records into one set of reports, and record the merged run in the run history
    (a run of the whole plan: its durations balance later splits, and later runs compare with
    it); exit as a run with those results would. A folder stands for every `run.json` in it."""
    from ci_orchestrator.reporters.merging import merge_results
    from ci_orchestrator.reporters.run_record import read_run_record

    if not records:
        raise UsageError("report merge needs at least one run record")
    files = [found for path in records for found in record_files(path)]
    result = merge_results([read_run_record(path) for path in files])
    for note in result.notes:
        notices.warn(note)
    root = Path.cwd()
    record_merged(result, root=root)
    write_reports(result, options, root=root)
    return exit_code(result)


def record_files(path: Path) -> list[Path]:
    """`path`, or the `run.json` files in the folder it names (at any depth, in name order; a
    folder of shard artifacts as `actions/download-artifact` lays them out)."""
    if lookup.look(path).kind is not lookup.Kind.FOLDER:
        return [path]  # a device or a FIFO: the record reader refuses it unread
    found = sorted(Path(folder) / "run.json" for folder, _, names in os.walk(path) if "run.json" in names)
    files = [file for file in found if lookup.look(file).kind is lookup.Kind.FILE]
    if not files:
        raise UsageError(f"{path}: no run.json in this folder")
    return files


def record_merged(result: RunResult, *, root: Path) -> None:
    """The merged run into the run history; one that cannot be written is a warning."""
    from ci_orchestrator.history.database import History

    try:
        with History.open(root / STATE_DIR / "history.db") as history:
            history.finish_run(result)
    except OrchestratorError as error:
        notices.warn(f"the merged run is not in the run history: {error}")
