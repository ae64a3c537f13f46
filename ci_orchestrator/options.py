"""The effective options of a command: what the command line, the settings file and the
playbook say, merged level by level into plain values (the pipeline builds the scheduler's
limits, the cache and the reports from them)."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ci_orchestrator import units
from ci_orchestrator.errors import UsageError
from ci_orchestrator.output.mode import OutputMode
from ci_orchestrator.settings.model import most_restrictive, smallest_limit

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from ci_orchestrator.playbook.model import Playbook, Step
    from ci_orchestrator.settings.model import Settings
    from ci_orchestrator.workflows.playbook_text import ImportOptions

STATE_DIR = Path(".ci-orchestrator")
REPORTS_DIR = STATE_DIR / "reports"


@dataclass(frozen=True, slots=True, kw_only=True)
class Selection:
    """What to plan: the playbook and the options that shape its plan."""

    playbook: str | None = None
    select: str | None = None
    only: bool = False
    instances: tuple[str, ...] = ()  # exact instance ids, as `repro` asks for them: no selector syntax
    matrix: tuple[str, ...] = ()  # KEY=V1,V2
    variables: tuple[str, ...] = ()  # KEY=VALUE
    shard: str | None = None
    shard_instances: str | None = None  # `--shard-instances`: a JSON list, as a github-matrix entry has it
    profile: str | None = None
    config: str | None = None
    # A GitHub workflow run as a playbook: its event, inputs (KEY=VALUE), secrets' names, jobs.
    event: str | None = None
    inputs: tuple[str, ...] = ()
    secrets: tuple[str, ...] = ()
    jobs: tuple[str, ...] = ()

    def workflow_options(self) -> ImportOptions:
        """How a GitHub workflow it names becomes a playbook: its event, inputs, secrets, jobs."""
        from ci_orchestrator.workflows.playbook_text import ImportOptions

        inputs = parse_pairs(self.inputs, option="--input")
        return ImportOptions(jobs=self.jobs, event=self.event, inputs=inputs, secrets=self.secrets)


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
    baseline: str | None = None  # `--baseline`: a run.json, `auto` (None) or `none`
    fresh: tuple[str, ...] = ()  # instance ids never taken from the cache (those `repro` reruns)


def command_line_selection(
    playbook: str | None,
    select: Sequence[str] | None,
    only: bool,
    matrix: Sequence[str] | None,
    variables: Sequence[str] | None,
    shard: str | None,
    profile: str | None,
    config: str | None,
    shard_instances: str | None = None,
) -> Selection:
    """The selection that `run` and `plan` options give (`--select` may be given more than once)."""
    return Selection(
        playbook=playbook,
        select=",".join(select) if select else None,
        only=only,
        matrix=tuple(matrix or ()),
        variables=tuple(variables or ()),
        shard=shard,
        shard_instances=shard_instances,
        profile=profile,
        config=config,
    )


def not_unicode(texts: Iterable[str]) -> str | None:
    """The first of `texts` that is not valid Unicode, as a message may show it, or None.

    Python hands bytes that are not UTF-8 (in arguments, file names) on as lone surrogates, as
    JSON's `\\udXXX` escapes read; no report, database, step script or console can hold them.
    """
    for text in texts:
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            try:
                shown = os.fsencode(text).decode("utf-8", "backslashreplace")  # the bytes given
            except UnicodeEncodeError:
                shown = text.encode("utf-8", "backslashreplace").decode("ascii")
            return shown if len(shown) <= 60 else f"{shown[:57]}..."
    return None


def undecodable_argument(args: Sequence[str]) -> str | None:
    """What is wrong with the first argument that is not UTF-8 text, or None: a value or file
    name has to be text, and is refused before a command reads it."""
    shown = not_unicode(args)
    return None if shown is None else f"argument '{shown}' is not UTF-8 text: values and file names must be"


def parse_pairs(pairs: Sequence[str], *, option: str) -> dict[str, str]:
    values: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"{option} {pair!r}: expected KEY=VALUE")
        values[key.strip()] = value
    return values


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
        if not most_restrictive(step.allow_parallel, defaults.allow_parallel, config.allow_parallel):
            changes["allow_parallel"] = False
        if defaults.timeout is not None and step.timeout is None:
            changes["timeout"] = defaults.timeout
        if defaults.retry is not None and not step.retry:
            changes["retry"] = defaults.retry
        if defaults.tags:
            changes["tags"] = tuple(dict.fromkeys([*step.tags, *defaults.tags]))
        steps.append(dataclasses.replace(step, **changes) if changes else step)
    return dataclasses.replace(playbook, steps=tuple(steps))


def fail_fast(playbook: Playbook, config: Settings, options: RunOptions) -> bool:
    """`--fail-fast` / `--no-fail-fast`, else the settings file where it sets it, else the playbook."""
    if options.fail_fast is not None:
        return options.fail_fast
    set_in_file = config.get("fail-fast").origin != "default"
    return config.fail_fast if set_in_file else playbook.fail_fast


def concurrency_set(playbook: Playbook, config: Settings, options: RunOptions) -> int | None:
    """The smallest concurrency a level sets (command line, playbook, settings); None for `auto`."""
    return smallest_limit(asked_concurrency(options), playbook.concurrency, config.concurrency)


def asked_concurrency(options: RunOptions) -> int | None:
    """`--concurrency` as a number; None for `auto` or when not given."""
    if not options.concurrency or options.concurrency == "auto":
        return None
    text = options.concurrency.strip()
    if text.isascii() and text.isdigit() and len(text.lstrip("0")) > 18:
        return 10**18  # as good as no limit; int() refuses thousands of digits
    try:
        asked = int(text)
    except ValueError:
        shown = text if len(text) <= 40 else f"{text[:37]}..."
        raise UsageError(f"--concurrency {shown!r}: expected a number or 'auto'") from None
    if asked < 1:
        raise UsageError("--concurrency must be at least 1")
    return asked


def default_timeout(options: RunOptions, config: Settings) -> float | None:
    """Each step's timeout when neither it nor the playbook sets one: `--timeout`, else settings."""
    if not options.timeout:
        return config.timeout
    try:
        return units.parse_duration(options.timeout)
    except ValueError as error:
        raise UsageError(f"--timeout: {error}") from None


def output_mode(options: RunOptions, config: Settings) -> OutputMode:
    """`--output`, else the settings' output mode."""
    if not options.output:
        return config.output
    try:
        return OutputMode(options.output)
    except ValueError:
        choices = ", ".join(mode.value for mode in OutputMode)
        raise UsageError(f"--output {options.output!r}: expected one of {choices}") from None


def cache_directory(options: RunOptions, config: Settings, *, root: Path) -> Path:
    """The step cache folder: `--cache-dir`, `$CI_ORCHESTRATOR_CACHE_DIR`, the settings, the default."""
    directory = (
        options.cache_dir
        or os.environ.get("CI_ORCHESTRATOR_CACHE_DIR")
        or config.get("cache-dir").value
        or str(STATE_DIR / "cache")
    )
    return root / str(directory)


def report_files(options: RunOptions, *, root: Path) -> tuple[Path, Path, Path]:
    """The JUnit file, the summary and the run record: the options', else the defaults."""
    return (
        root / (options.junit or REPORTS_DIR / "junit.xml"),
        root / (options.summary or REPORTS_DIR / "summary.md"),
        root / (options.json or REPORTS_DIR / "run.json"),
    )


def new_run_id() -> str:
    # os.urandom is what secrets.token_hex reads; `secrets` would import hmac and random for it.
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S") + "-" + os.urandom(3).hex()
