"""The command line: typer commands turn options into pipeline calls, and errors into exit codes.

Each command imports the modules it calls (`pipeline`, a module of `commands`) when it runs, so
that start-up, which every CI step waits for, pays only for the command's own path.
"""

from __future__ import annotations

import functools
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from ci_orchestrator import __version__
from ci_orchestrator.errors import EXIT_USAGE, OrchestratorError
from ci_orchestrator.options import RunOptions, Selection
from ci_orchestrator.output import workflow_commands


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
server_app = typer.Typer(help="See or stop this user's run servers.", no_args_is_help=True)
app.add_typer(report_app, name="report")
app.add_typer(cache_app, name="cache")
app.add_typer(config_app, name="config")
app.add_typer(export_app, name="export")
app.add_typer(server_app, name="server")

PlaybookArg = Annotated[
    str | None,
    typer.Argument(
        help="A playbook path, or a name in playbooks/ (default: playbooks/ci.yml).", show_default=False
    ),
]
SelectOpt = Annotated[
    list[str] | None,
    typer.Option("--select", help="Run only these steps (and what they need); repeatable, as one list."),
]
OnlyOpt = Annotated[
    bool, typer.Option("--only", help="With --select: do not add what the selected steps need.")
]
MatrixOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--matrix",
        help="Run a matrix axis with these values only (unlisted ones replace its own): KEY=V1,V2.",
    ),
]
VarOpt = Annotated[list[str] | None, typer.Option("--var", help="Set a playbook variable: KEY=VALUE.")]
ShardOpt = Annotated[str | None, typer.Option("--shard", help="Run only shard I of N: I/N.")]
ConcurrencyOpt = Annotated[
    str | None, typer.Option("-j", "--concurrency", help="Most step processes at once: N or auto.")
]
ProfileOpt = Annotated[str | None, typer.Option("--profile", help="Settings profile.")]
ConfigOpt = Annotated[str | None, typer.Option("--config", help="Settings file.")]
SequentialOpt = Annotated[bool, typer.Option("--sequential", help="One step at a time, in plan order.")]
CacheDirOpt = Annotated[str | None, typer.Option("--cache-dir", help="The step cache folder.")]
TimeoutOpt = Annotated[
    str | None, typer.Option("--timeout", help="Default timeout of each step (90s, 2m, 1h30m).")
]


def _selection(
    playbook: str | None,
    select: list[str] | None,
    only: bool,
    matrix: list[str] | None,
    var: list[str] | None,
    shard: str | None,
    profile: str | None,
    config: str | None,
) -> Selection:
    return Selection(
        playbook=playbook,
        select=",".join(select) if select else None,
        only=only,
        matrix=tuple(matrix or ()),
        variables=tuple(var or ()),
        shard=shard,
        profile=profile,
        config=config,
    )


@app.command()
def run(
    playbook: PlaybookArg = None,
    concurrency: ConcurrencyOpt = None,
    sequential: SequentialOpt = False,
    select: SelectOpt = None,
    only: OnlyOpt = False,
    matrix: MatrixOpt = None,
    var: VarOpt = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show the plan; run nothing.")] = False,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Neither read nor write the cache.")] = False,
    force: Annotated[bool, typer.Option("--force", help="Run every step even if cached.")] = False,
    cache_dir: CacheDirOpt = None,
    timeout: TimeoutOpt = None,
    fail_fast: Annotated[
        bool | None, typer.Option("--fail-fast/--no-fail-fast", help="After a failure, start no new steps.")
    ] = None,
    shard: ShardOpt = None,
    junit: Annotated[str | None, typer.Option("--junit", help="JUnit XML report path.")] = None,
    summary: Annotated[str | None, typer.Option("--summary", help="Markdown summary path.")] = None,
    json_path: Annotated[str | None, typer.Option("--json", help="JSON run record path.")] = None,
    output: Annotated[
        str | None, typer.Option("--output", help="Step output on the console: grouped, stream or quiet.")
    ] = None,
    profile: ProfileOpt = None,
    config: ConfigOpt = None,
    baseline: Annotated[
        str | None, typer.Option("--baseline", help="The run to compare with: RUN.json, auto or none.")
    ] = None,
) -> None:
    """Run the playbook."""
    from ci_orchestrator import pipeline

    selection = _selection(playbook, select, only, matrix, var, shard, profile, config)
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
    fmt: Annotated[str, typer.Option("--format", help="text, json, mermaid or github-matrix.")] = "text",
    shards: Annotated[
        int | None, typer.Option("--shards", help="With github-matrix: one entry per shard.")
    ] = None,
    concurrency: ConcurrencyOpt = None,
    sequential: SequentialOpt = False,
    select: SelectOpt = None,
    only: OnlyOpt = False,
    matrix: MatrixOpt = None,
    var: VarOpt = None,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Do not look at the cache.")] = False,
    cache_dir: CacheDirOpt = None,
    timeout: TimeoutOpt = None,
    shard: ShardOpt = None,
    profile: ProfileOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Show what `run` would do; run nothing."""
    from ci_orchestrator import pipeline

    selection = _selection(playbook, select, only, matrix, var, shard, profile, config)
    options = RunOptions(
        concurrency=concurrency,
        sequential=sequential,
        no_cache=no_cache,
        cache_dir=cache_dir,
        timeout=timeout,
    )
    typer.echo(pipeline.plan_text(selection, options, fmt=fmt, shards=shards))


@app.command(name="list")
def list_steps(playbook: PlaybookArg = None, profile: ProfileOpt = None, config: ConfigOpt = None) -> None:
    """The steps and groups: id, number, name, stage, tags, parallel mode, needs."""
    from ci_orchestrator.commands import listing

    typer.echo(listing.list_text(Selection(playbook=playbook, profile=profile, config=config)))


@app.command()
def validate(
    playbooks: Annotated[list[str], typer.Argument(help="Playbook paths or names.")],
) -> None:
    """Check playbooks: exit 0 when all are valid, 2 otherwise."""
    from ci_orchestrator.commands import validation

    failures = 0
    for name in playbooks:
        try:
            typer.echo(validation.validate_one(name))
        except OrchestratorError as error:  # the next playbook is checked all the same
            failures += 1
            _say(error)
    raise typer.Exit(EXIT_USAGE if failures else 0)


@report_app.command("merge")
def report_merge(
    records: Annotated[list[Path], typer.Argument(help="run.json files to merge.")],
    junit: Annotated[str | None, typer.Option("--junit", help="JUnit XML report path.")] = None,
    summary: Annotated[str | None, typer.Option("--summary", help="Markdown summary path.")] = None,
    json_path: Annotated[str | None, typer.Option("--json", help="JSON run record path.")] = None,
) -> None:
    """Merge run records (from shards) into one JUnit file, one summary and one record."""
    from ci_orchestrator import pipeline

    raise typer.Exit(pipeline.merge(records, RunOptions(junit=junit, summary=summary, json=json_path)))


@report_app.command("compare")
def report_compare(
    base: Annotated[Path, typer.Argument(help="The baseline run.json.")],
    head: Annotated[
        Path | None, typer.Argument(help="The run.json to compare (default: the last run's).")
    ] = None,
    fmt: Annotated[str, typer.Option("--format", help="markdown or json.")] = "markdown",
) -> None:
    """What changed between two runs: new failures, fixes, flaky, slower and faster instances."""
    from ci_orchestrator.commands import compare

    typer.echo(compare.compare_text(base, head, fmt=fmt))


@report_app.command("comment")
def report_comment(
    record: Annotated[Path | None, typer.Argument(help="The run.json (default: the last run's).")] = None,
    mode: Annotated[str, typer.Option("--mode", help="always, failures, changes or off.")] = "always",
    pr: Annotated[int | None, typer.Option("--pr", help="The pull request (default: the event's).")] = None,
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
    max_size: Annotated[
        str | None,
        typer.Option(
            "--max-size", help="Evict least recently used entries down to this size (default: cache-size)."
        ),
    ] = None,
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
    args: Annotated[list[str], typer.Argument(help="[PLAYBOOK] STEP", show_default=False)],
    matrix: MatrixOpt = None,
    var: VarOpt = None,
    cache_dir: CacheDirOpt = None,
    profile: ProfileOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Why a step would run, or be taken from the cache."""
    from ci_orchestrator.commands import cache_upkeep

    if len(args) > 2:
        typer.echo("ci-orchestrator: cache explain takes [PLAYBOOK] STEP", err=True)
        raise typer.Exit(EXIT_USAGE)
    playbook, step = (None, args[0]) if len(args) == 1 else (args[0], args[1])
    typer.echo(
        cache_upkeep.cache_explain(
            Selection(
                playbook=playbook,
                matrix=tuple(matrix or ()),
                variables=tuple(var or ()),
                profile=profile,
                config=config,
            ),
            step,
            cache_dir,
        )
    )


@app.command()
def history(
    args: Annotated[
        list[str] | None, typer.Argument(help="show RUN_ID | import FILE | export FILE", show_default=False)
    ] = None,
    limit: Annotated[
        int | None, typer.Option("--limit", help="How many runs to list (20) or to export (100).")
    ] = None,
) -> None:
    """Past runs and their steps, from the local run database; `import` and `export` carry it
    between machines (a CI cache)."""
    from ci_orchestrator.commands import history_view

    words = args or []
    if not words:
        typer.echo(history_view.history_list(20 if limit is None else limit))
    elif len(words) == 2 and words[0] in ("show", "import", "export"):
        typer.echo(history_view.history_command(words[0], words[1], limit))
    else:
        typer.echo("ci-orchestrator: history [show RUN_ID | import FILE | export FILE]", err=True)
        raise typer.Exit(EXIT_USAGE)


@config_app.command("get")
def config_get(
    key: Annotated[str, typer.Argument(help="A setting name, e.g. concurrency.")],
    profile: ProfileOpt = None,
    config: ConfigOpt = None,
    value: Annotated[
        bool,
        typer.Option("--value", help="Print the value alone, a folder as an absolute path (for scripts)."),
    ] = False,
) -> None:
    """Print one effective setting and the level that set it; with --value, the value alone."""
    from ci_orchestrator.commands import config_view

    typer.echo(config_view.config_get(key, profile=profile, config=config, value_only=value))


@app.command()
def repro(
    record: Annotated[Path, typer.Argument(help="A run.json, e.g. downloaded from a CI run.")],
    instance: Annotated[
        str | None, typer.Argument(help="One instance id (default: every failed one).")
    ] = None,
    concurrency: ConcurrencyOpt = None,
) -> None:
    """Rerun here the failed instances of a recorded run, with its playbook, matrix values and variables."""
    from ci_orchestrator import pipeline

    raise typer.Exit(pipeline.repro(record, instance, RunOptions(concurrency=concurrency)))


@export_app.command("github-workflow")
def export_github_workflow(
    playbook: PlaybookArg = None,
    shards: Annotated[int, typer.Option("--shards", help="Runners to split the run across.")] = 1,
) -> None:
    """Print a GitHub workflow that runs the playbook with the action (schedules, shards)."""
    from ci_orchestrator.commands import export_workflow

    typer.echo(export_workflow.export_workflow(Selection(playbook=playbook), shards=shards))


@export_app.command("playbook-digest")
def export_playbook_digest(playbook: PlaybookArg = None) -> None:
    """Print the SHA-256 of the playbook's file, found as `run` finds it: a key for another system's
    cache of the steps' results (the action's actions/cache key)."""
    from ci_orchestrator.commands import playbook_digest

    typer.echo(playbook_digest.playbook_digest(Selection(playbook=playbook)))


@server_app.command("status")
def server_status() -> None:
    """List this user's run servers: each keeps ci-orchestrator loaded for commands run like this one."""
    from ci_orchestrator.server import control

    found = control.listening()
    for item in found:
        typer.echo(f"{item.key}  pid {item.pid}")
    if not found:
        typer.echo("no run server")


@server_app.command("stop")
def server_stop() -> None:
    """Stop this user's run servers (each once the commands it runs are done)."""
    from ci_orchestrator.server import control

    found = control.listening()
    for item in found:
        control.stop(item)
    typer.echo(f"stopped {len(found)} run server{'' if len(found) == 1 else 's'}")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"ci-orchestrator {__version__}")
        raise typer.Exit


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    """Run a project's CI steps from a YAML playbook, here or in GitHub Actions."""


def main() -> None:
    """The `ci-orchestrator` command. Typer builds every command of an app from its signature
    before it runs one (about 0.7 ms each, paid by every CI step's start-up), so a top-level
    command named first runs from an app that holds only it, with the same settings and root
    options. Help, mistakes and the command groups get the whole app."""
    args = sys.argv[1:]
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
    if info.name:
        return info.name
    return info.callback.__name__.replace("_", "-") if info.callback else None
