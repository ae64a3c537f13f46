"""How one instance becomes a process: its argv, environment, log file and deadline."""

from __future__ import annotations

import functools
import hashlib
import os
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ci_orchestrator.run.argv import build_argv
from ci_orchestrator.run.events import ProcessSpec
from ci_orchestrator.run.file_commands import with_path

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from pathlib import Path

    from ci_orchestrator.playbook.model import Instance

_PLAIN = re.compile(r"[a-z0-9_.-]+")
_UNSAFE = re.compile(r"[^a-z0-9_.-]+")
_MAX_STEM = 100
"""Characters of an id kept in its log name: with the hash and an attempt suffix, far below the
255 bytes a file name may have."""


@dataclass(frozen=True, slots=True, kw_only=True)
class RunContext:
    """Where a run lives: its id, the workspace, the log folder, and what to mask."""

    run_id: str
    workspace: Path
    log_dir: Path
    secrets: tuple[str, ...] = ()
    durations: Mapping[str, float] = field(default_factory=dict)
    # What a job's steps read as `vars`, `inputs`, `github.*` and `secrets` (names), when it runs.
    variables: Mapping[str, str] = field(default_factory=dict)
    secret_names: tuple[str, ...] = ()


@functools.cache  # asked for each start of each instance
def log_name(instance_id: str) -> str:
    """The file name (without extension) of an instance's log, one per id: a plain lower-case id
    is its own name (`lint`); any other gets a readable part and a hash of the exact id
    (`test (3.12)` -> `test_3.12+1c8f4a2b9e`), so that ids alike once made safe (`build (c)`,
    `build (c++)`, `Build`) never share a file, even on a file system blind to case.

    No step id holds a `+`: a plain name is never one of the hashed ones, nor an attempt's.
    """
    if _PLAIN.fullmatch(instance_id) and len(instance_id) <= _MAX_STEM:
        return instance_id
    readable = _UNSAFE.sub("_", instance_id.lower())[:_MAX_STEM].strip("_")
    # surrogatepass: an id may hold what a non-UTF-8 `--matrix` value brought in.
    digest = hashlib.sha256(instance_id.encode("utf-8", "surrogatepass")).hexdigest()[:10]
    return f"{readable}+{digest}"


def log_path(context: RunContext, instance_id: str, attempt: int = 1) -> Path:
    suffix = "" if attempt == 1 else f"+attempt{attempt}"
    return context.log_dir / f"{log_name(instance_id)}{suffix}.log"


@functools.cache  # the same few folders for every start
def _directory(workspace: Path, working_directory: str) -> Path:
    return workspace / working_directory


def step_environment(
    instance: Instance,
    context: RunContext,
    *,
    parallel: bool,
    jobs: int,
    base_env: Mapping[str, str] | None = None,
    files: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The machine's environment (`base_env`, read once per run), the playbook's and step's
    `env` (with what GITHUB_ENV files set before), `MATRIX_*`, the GITHUB_PATH folders before
    `PATH`, and ours: the step's own GitHub files (`files`) among them."""
    env = dict(os.environ if base_env is None else base_env)
    # The job's GITHUB_STATE belongs to the action that runs us; the other files are replaced.
    env.pop("GITHUB_STATE", None)
    env.update(instance.env)
    if instance.path:
        env["PATH"] = with_path(env, instance.path)
    env.update(files or {})
    env.update(
        CI_ORCHESTRATOR="true",
        CI_ORCHESTRATOR_RUN_ID=context.run_id,
        CI_ORCHESTRATOR_STEP_ID=instance.id,
        CI_ORCHESTRATOR_PARALLEL="true" if parallel else "false",
        CI_ORCHESTRATOR_NONINTERACTIVE="true",
        CI_ORCHESTRATOR_JOBS=str(max(1, jobs)),
    )
    return env


def unpassable(argv: Sequence[str], cwd: Path, env: Mapping[str, str]) -> str:
    """Why the system cannot be handed a process's values, which Python refuses before trying:
    a NUL character (a C string ends there), or text no file name encoding takes."""
    named = [("the working directory", str(cwd))]
    named += [(f"argument {index}", word) for index, word in enumerate(argv)]
    named += [(f"environment variable {name}", f"{name}={value}") for name, value in env.items()]
    for what, text in named:
        if "\0" in text:
            return f"cannot start: {what} holds a NUL character, which no process can be given"
        try:
            os.fsencode(text)
        except UnicodeEncodeError:
            return f"cannot start: {what} holds text that is not valid Unicode"
    return "cannot start: a value cannot be passed to a process"


def process_spec(
    instance: Instance,
    context: RunContext,
    *,
    attempt: int,
    timeout: float | None,
    parallel: bool,
    jobs: int,
    base_env: Mapping[str, str] | None = None,
    files: Mapping[str, str] | None = None,
) -> ProcessSpec:
    step = instance.step
    cwd = _directory(context.workspace, instance.working_directory)
    env = step_environment(instance, context, parallel=parallel, jobs=jobs, base_env=base_env, files=files)
    # As a shell sets it, so that a step started without one sees its own directory there too.
    env["PWD"] = str(cwd)
    error = None
    written = "the job's steps" if step.steps else "the step's script"
    try:
        if step.steps:
            argv = _job_argv(instance, context, attempt=attempt)
        else:
            argv = build_argv(
                run=instance.run,
                command=instance.command,
                script=step.script,
                args=instance.args,
                shell=step.shell,
                scratch_dir=context.log_dir / "scripts",
                name=log_name(instance.id),
                env=env,
            )
    except OSError as problem:  # the `run:` script file, or the job's steps, could not be written
        argv, error = (), f"cannot write {written}: {problem.strerror or problem}"
    except UnicodeEncodeError:  # a `run:` text holding what no file can (from a fromJSON value)
        argv, error = (), f"cannot write {written}: its text is not valid Unicode"
    return ProcessSpec(
        key=instance.id,
        argv=argv,
        error=error,
        cwd=cwd,
        env=env,
        log_path=log_path(context, instance.id, attempt),
        timeout=timeout,
        masks=context.secrets,
    )


def _job_argv(instance: Instance, context: RunContext, *, attempt: int) -> tuple[str, ...]:
    """A job instance's command: its steps run in order by `job_runner` in one process tree."""
    from ci_orchestrator.run.job_spec import job_argv

    return job_argv(
        instance,
        variables=context.variables,
        secrets=context.secret_names,
        workspace=context.workspace,
        scratch_dir=context.log_dir / "scripts",
        name=log_name(instance.id),
        record=log_path(context, instance.id, attempt).with_suffix(".steps.json"),
    )
