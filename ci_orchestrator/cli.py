"""The command line: typer commands turn options into pipeline calls, and errors into exit codes.

Each command imports the modules it calls (`pipeline`, a module of `commands`) when it runs, so
that start-up, which every CI step waits for, pays only for the command's own path.
"""

from __future__ import annotations

import functools
import sys
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any

import typer

from ci_orchestrator import __version__
from ci_orchestrator.commands.option_help import ARGUMENTS, COMMANDS, OPTIONS
from ci_orchestrator.errors import EXIT_USAGE, OrchestratorError
from ci_orchestrator.options import RunOptions, Selection, command_line_selection, undecodable_argument
from ci_orchestrator.output import workflow_commands
from ci_orchestrator.units import MAX_COUNT, MAX_SHARDS


class _Commands(typer.core.TyperGroup):
    """The app's commands, and the one place an `OrchestratorError` ends one: its lines on stderr,
    its exit code. The commands of the groups (`cache`, `config`, ...) run inside this `invoke`."""

    def invoke(self, ctx: Any) -> Any:  # Any: the parent takes the click context typer keeps private
        try:
            return super().invoke(ctx)
        except OrchestratorError as error:
            _say(error)
            raise typer.Exit(error.exit_code) from None


def _say(error: OrchestratorError) -> None:
    for line in error.lines():
        typer.echo(workflow_commands.printable(f"ci-orchestrator: {line}"), err=True)  # quotes any value


_APP_SETTINGS: dict[str, Any] = {
    "cls": _Commands,
    "name": "ci-orchestrator",
    "help": "Run a project's CI steps from a YAML playbook, here or in GitHub Actions.",
    "no_args_is_help": True,
    "pretty_exceptions_show_locals": False,
    "add_completion": False,
    "rich_markup_mode": None,
}
app = typer.Typer(**_APP_SETTINGS)

report_app = typer.Typer(help="Work with run records.", no_args_is_help=True)
cache_app = typer.Typer(help="Look after the step cache.", no_args_is_help=True)
config_app = typer.Typer(help="Read the effective settings.", no_args_is_help=True)
export_app = typer.Typer(help="Export the playbook for other systems.", no_args_is_help=True)
server_app = typer.Typer(help="See or stop run servers (ci-orchestrator kept loaded).", no_args_is_help=True)
import_app = typer.Typer(help="Turn other systems' CI files into playbooks.", no_args_is_help=True)
app.add_typer(report_app, name="report")
app.add_typer(cache_app, name="cache")
app.add_typer(config_app, name="config")
app.add_typer(export_app, name="export")
app.add_typer(import_app, name="import")
app.add_typer(server_app, name="server")


def _option(*names: str, key: str | None = None, **extra: Any) -> Any:
    """The option `names`, with the metavar and help `option_help` gives it (by its last name).
    A whole number (`N`) is held from 1 to `MAX_COUNT` unless said otherwise: click refuses one
    out of range (exit 2) before a command could hand it to SQLite or a loop."""
    metavar, text = OPTIONS[key or names[-1]]
    if metavar == "N":
        extra = {"min": 1, "max": MAX_COUNT, **extra}
    return typer.Option(*names, metavar=metavar, help=text, **extra)


def _argument(key: str) -> Any:
    """The argument `key` names in `option_help`, shown by its metavar (`PLAYBOOK`, `RUN.json`)."""
    metavar, text = ARGUMENTS[key]
    return typer.Argument(metavar=metavar, help=text, show_default=False)


PlaybookArg = Annotated[str | None, _argument("playbook")]
SelectOpt = Annotated[list[str] | None, _option("--select")]
OnlyOpt = Annotated[bool, _option("--only")]
MatrixOpt = Annotated[list[str] | None, _option("--matrix")]
VarOpt = Annotated[list[str] | None, _option("--var")]
ShardOpt = Annotated[str | None, _option("--shard")]
ShardInstancesOpt = Annotated[str | None, _option("--shard-instances")]
ConcurrencyOpt = Annotated[str | None, _option("-j", "--concurrency")]
ProfileOpt = Annotated[str | None, _option("--profile")]
ConfigOpt = Annotated[str | None, _option("--config")]
SequentialOpt = Annotated[bool, _option("--sequential")]
CacheDirOpt = Annotated[str | None, _option("--cache-dir")]
TimeoutOpt = Annotated[str | None, _option("--timeout")]
JunitOpt = Annotated[str | None, _option("--junit")]
SummaryOpt = Annotated[str | None, _option("--summary")]
JsonOpt = Annotated[str | None, _option("--json")]
OutputOpt = Annotated[str | None, _option("--output")]


@app.command(help=COMMANDS["run"])
def run(
    playbook: PlaybookArg = None,
    concurrency: ConcurrencyOpt = None,
    sequential: SequentialOpt = False,
    select: SelectOpt = None,
    only: OnlyOpt = False,
    matrix: MatrixOpt = None,
    var: VarOpt = None,
    dry_run: Annotated[bool, _option("--dry-run")] = False,
    no_cache: Annotated[bool, _option("--no-cache")] = False,
    force: Annotated[bool, _option("--force")] = False,
    cache_dir: CacheDirOpt = None,
    timeout: TimeoutOpt = None,
    fail_fast: Annotated[bool | None, _option("--fail-fast/--no-fail-fast")] = None,
    shard: ShardOpt = None,
    shard_instances: ShardInstancesOpt = None,
    junit: JunitOpt = None,
    summary: SummaryOpt = None,
    json_path: JsonOpt = None,
    output: OutputOpt = None,
    profile: ProfileOpt = None,
    config: ConfigOpt = None,
    baseline: Annotated[str | None, _option("--baseline")] = None,
    event: Annotated[str | None, _option("--event")] = None,
    input: Annotated[list[str] | None, _option("--input")] = None,
    secret: Annotated[list[str] | None, _option("--secret")] = None,
) -> None:
    from ci_orchestrator import pipeline

    selection = command_line_selection(
        playbook, select, only, matrix, var, shard, profile, config, shard_instances
    )
    selection = replace(selection, event=event, inputs=tuple(input or ()), secrets=tuple(secret or ()))
    options = RunOptions(
        concurrency=concurrency,
        sequential=sequential,
        no_cache=no_cache,
        force=force,
        cache_dir=cache_dir,
        timeout=timeout,
        fail_fast=fail_fast,
        junit=junit,
        summary=summary,
        json=json_path,
        output=output,
        baseline=baseline,
    )
    if dry_run:
        typer.echo(pipeline.plan_text(selection, options, fmt="text"))
        return
    raise typer.Exit(pipeline.run(selection, options))


@app.command()
def plan(
    playbook: PlaybookArg = None,
    fmt: Annotated[str, _option("--format")] = "text",
    shards: Annotated[int | None, _option("--shards", key="plan --shards")] = None,
    concurrency: ConcurrencyOpt = None,
    sequential: SequentialOpt = False,
    select: SelectOpt = None,
    only: OnlyOpt = False,
    matrix: MatrixOpt = None,
    var: VarOpt = None,
    no_cache: Annotated[bool, _option("--no-cache", key="plan --no-cache")] = False,
    cache_dir: CacheDirOpt = None,
    timeout: TimeoutOpt = None,
    shard: ShardOpt = None,
    shard_instances: ShardInstancesOpt = None,
    profile: ProfileOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Show what `run` would do; run nothing."""
    from ci_orchestrator import pipeline

    selection = command_line_selection(
        playbook, select, only, matrix, var, shard, profile, config, shard_instances
    )
    options = RunOptions(
        concurrency=concurrency,
        sequential=sequential,
        no_cache=no_cache,
        cache_dir=cache_dir,
        timeout=timeout,
    )
    typer.echo(pipeline.plan_text(selection, options, fmt=fmt, shards=shards))


@app.command(name="list", help=COMMANDS["list"])
def list_steps(playbook: PlaybookArg = None, profile: ProfileOpt = None, config: ConfigOpt = None) -> None:
    from ci_orchestrator.commands import listing

    typer.echo(listing.list_text(Selection(playbook=playbook, profile=profile, config=config)))


@app.command()
def validate(
    playbooks: Annotated[list[str] | None, _argument("playbooks")] = None,
    var: VarOpt = None,
) -> None:
    """Check playbooks (default: playbooks/ci.yml): exit 0 when all are valid, 2 otherwise."""
    from ci_orchestrator.commands import validation

    failures = 0
    names: list[str | None] = [*playbooks] if playbooks else [None]  # None: playbooks/ci.yml
    for name in names:
        try:
            typer.echo(validation.validate_one(name, var or ()))
        except OrchestratorError as error:  # the next playbook is checked all the same
            failures += 1
            _say(error)
    raise typer.Exit(EXIT_USAGE if failures else 0)


@report_app.command("merge", help=COMMANDS["report merge"])
def report_merge(
    records: Annotated[list[Path], _argument("records")],
    junit: JunitOpt = None,
    summary: SummaryOpt = None,
    json_path: JsonOpt = None,
) -> None:
    from ci_orchestrator import pipeline

    raise typer.Exit(pipeline.merge(records, RunOptions(junit=junit, summary=summary, json=json_path)))


@report_app.command("compare")
def report_compare(
    base: Annotated[Path, _argument("base")],
    head: Annotated[Path | None, _argument("head")] = None,
    fmt: Annotated[str, _option("--format", key="compare --format")] = "markdown",
) -> None:
    """What changed between two runs: new failures, fixes, flaky, slower and faster instances."""
    from ci_orchestrator.commands import compare

    typer.echo(compare.compare_text(base, head, fmt=fmt))


@report_app.command("comment")
def report_comment(
    record: Annotated[Path | None, _argument("comment record")] = None,
    mode: Annotated[str, _option("--mode")] = "always",
    pr: Annotated[int | None, _option("--pr")] = None,
) -> None:
    """Post or update this playbook's one comment on the pull request (a problem is a warning)."""
    from ci_orchestrator.commands import pr_comment

    typer.echo(pr_comment.comment(record, mode=mode, number=pr))


@cache_app.command("stats")
def cache_stats(cache_dir: CacheDirOpt = None, profile: ProfileOpt = None, config: ConfigOpt = None) -> None:
    """Entries, size, and the hits and misses of recent runs."""
    from ci_orchestrator.commands import cache_upkeep

    typer.echo(cache_upkeep.cache_stats(cache_dir, choice=Selection(profile=profile, config=config)))


@cache_app.command("clear")
def cache_clear(cache_dir: CacheDirOpt = None, profile: ProfileOpt = None, config: ConfigOpt = None) -> None:
    """Remove every cache entry."""
    from ci_orchestrator.commands import cache_upkeep

    typer.echo(cache_upkeep.cache_clear(cache_dir, choice=Selection(profile=profile, config=config)))


@cache_app.command("prune")
def cache_prune(
    max_size: Annotated[str | None, _option("--max-size")] = None,
    cache_dir: CacheDirOpt = None,
    profile: ProfileOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Evict least recently used entries until the cache fits."""
    from ci_orchestrator.commands import cache_upkeep

    typer.echo(
        cache_upkeep.cache_prune(cache_dir, max_size, choice=Selection(profile=profile, config=config))
    )


@cache_app.command("explain")
def cache_explain(
    args: Annotated[list[str], _argument("explain")],
    matrix: MatrixOpt = None,
    var: VarOpt = None,
    cache_dir: CacheDirOpt = None,
    profile: ProfileOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Why a step would run, or be taken from the cache."""
    from ci_orchestrator.commands import cache_upkeep

    selection = Selection(
        matrix=tuple(matrix or ()), variables=tuple(var or ()), profile=profile, config=config
    )
    typer.echo(cache_upkeep.cache_explain_words(args, selection, cache_dir))


@app.command(help=COMMANDS["history"])
def history(
    args: Annotated[list[str] | None, _argument("history")] = None,
    limit: Annotated[int | None, _option("--limit")] = None,
) -> None:
    from ci_orchestrator.commands import history_view

    typer.echo(history_view.history_words(args or [], limit))


@config_app.command("get")
def config_get(
    key: Annotated[str, _argument("key")],
    profile: ProfileOpt = None,
    config: ConfigOpt = None,
    value: Annotated[bool, _option("--value")] = False,
) -> None:
    """Print one effective setting and the level that set it; with --value, the value alone."""
    from ci_orchestrator.commands import config_view

    typer.echo(config_view.config_get(key, profile=profile, config=config, value_only=value))


@app.command(help=COMMANDS["repro"])
def repro(
    record: Annotated[Path, _argument("record")],
    instance: Annotated[str | None, _argument("instance")] = None,
    concurrency: ConcurrencyOpt = None,
    no_cache: Annotated[bool, _option("--no-cache", key="repro --no-cache")] = False,
    cache_dir: CacheDirOpt = None,
    junit: JunitOpt = None,
    summary: SummaryOpt = None,
    json_path: JsonOpt = None,
    output: OutputOpt = None,
    playbook: Annotated[str | None, _option("--playbook", key="repro --playbook")] = None,
    matrix: Annotated[list[str] | None, _option("--matrix", key="repro --matrix")] = None,
    var: Annotated[list[str] | None, _option("--var", key="repro --var")] = None,
) -> None:
    from ci_orchestrator.commands import repro as reproducing

    options = RunOptions(
        concurrency=concurrency,
        no_cache=no_cache,
        cache_dir=cache_dir,
        junit=junit,
        summary=summary,
        json=json_path,
        output=output,
    )
    given = Selection(playbook=playbook, matrix=tuple(matrix or ()), variables=tuple(var or ()))
    done = reproducing.repro(record, instance, options, given=given)
    typer.echo(done.where)
    raise typer.Exit(done.code)


@export_app.command("github-workflow")
def export_github_workflow(
    playbook: PlaybookArg = None,
    shards: Annotated[int, _option("--shards", key="export --shards", max=MAX_SHARDS)] = 1,
) -> None:
    """Print a GitHub workflow that runs the playbook with the action (schedules, shards)."""
    from ci_orchestrator.commands import export_workflow

    typer.echo(export_workflow.export_workflow(Selection(playbook=playbook), shards=shards))


@import_app.command("github-workflow")
def import_github_workflow(
    workflow: Annotated[str, _argument("workflow")],
    job: Annotated[list[str] | None, _option("--job")] = None,
    event: Annotated[str | None, _option("--event")] = None,
    input: Annotated[list[str] | None, _option("--input")] = None,
    secret: Annotated[list[str] | None, _option("--secret")] = None,
) -> None:
    """Print a playbook that runs a GitHub workflow's jobs here."""
    from ci_orchestrator.commands import workflow_import

    typer.echo(workflow_import.import_text(workflow, job, event, input, secret), nl=False)


@export_app.command("playbook-digest", help=COMMANDS["export playbook-digest"])
def export_playbook_digest(playbook: PlaybookArg = None) -> None:
    from ci_orchestrator.commands import playbook_digest

    typer.echo(playbook_digest.playbook_digest(Selection(playbook=playbook)))


@server_app.command("status", help=COMMANDS["server status"])
def server_status() -> None:
    from ci_orchestrator.server import control

    typer.echo(control.status_text())


@server_app.command("stop", help=COMMANDS["server stop"])
def server_stop(every: Annotated[bool, _option("--all", key="server stop --all")] = False) -> None:
    from ci_orchestrator.server import control

    typer.echo(control.stop_servers(every=every))


def _version(value: bool) -> None:
    if value:
        typer.echo(f"ci-orchestrator {__version__}")
        raise typer.Exit


@app.callback()
def _root(
    version: Annotated[bool, _option("--version", callback=_version, is_eager=True)] = False,
) -> None:
    """Run a project's CI steps from a YAML playbook, here or in GitHub Actions."""


def main() -> None:
    """The `ci-orchestrator` command. Typer builds every command of an app from its signature
    before it runs one (about 0.7 ms each, paid by every CI step's start-up), so a top-level
    command named first runs from an app that holds only it, with the same settings and root
    options. Help, mistakes and the command groups get the whole app."""
    args = sys.argv[1:]
    if (problem := undecodable_argument(args)) is not None:
        typer.echo(f"ci-orchestrator: {problem}", err=True)
        raise SystemExit(EXIT_USAGE)
    names = {_command_name(info) for info in app.registered_commands}
    _click_command(args[0] if args and args[0] in names else None)(prog_name="ci-orchestrator")


def build_commands() -> None:
    """Build the click command of each top-level command and of the whole app now, for the
    commands this process will run (a run server's workers)."""
    for info in app.registered_commands:
        _click_command(_command_name(info))
    _click_command(None)


@functools.cache
def _click_command(name: str | None) -> Any:
    """The click command that runs the top-level command `name` (None: the whole app)."""
    if name is None:
        return typer.main.get_command(app)
    single = typer.Typer(**_APP_SETTINGS)
    single.registered_commands = [info for info in app.registered_commands if _command_name(info) == name]
    single.registered_callback = app.registered_callback
    return typer.main.get_command(single)


def _command_name(info: typer.models.CommandInfo) -> str | None:
    return info.name or (info.callback.__name__.replace("_", "-") if info.callback else None)
