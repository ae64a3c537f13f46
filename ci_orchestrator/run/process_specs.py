"""How one instance becomes a process: its argv, environment, log file and deadline."""

from __future__ import annotations

import functools
import os
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ci_orchestrator.run.argv import build_argv
from ci_orchestrator.run.events import ProcessSpec

if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path

    from ci_orchestrator.playbook.model import Instance

_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


@dataclass(frozen=True, slots=True, kw_only=True)
class RunContext:
    """Where a run lives: its id, the workspace, the log folder, and what to mask."""

    run_id: str
    workspace: Path
    log_dir: Path
    secrets: tuple[str, ...] = ()
    durations: Mapping[str, float] = field(default_factory=dict)


@functools.cache  # asked for each start of each instance
def log_name(instance_id: str) -> str:
    """A file name for an instance id: `test (3.12)` -> `test_3.12`."""
    return _UNSAFE.sub("_", instance_id).strip("_") or "step"


def log_path(context: RunContext, instance_id: str, attempt: int = 1) -> Path:
    suffix = "" if attempt == 1 else f".attempt{attempt}"
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
) -> dict[str, str]:
    """The machine's environment (`base_env`, read once per run), the playbook's and step's
    `env`, `MATRIX_*`, and ours."""
    env = dict(os.environ if base_env is None else base_env)
    env.update(instance.env)
    env.update(
        CI_ORCHESTRATOR="true",
        CI_ORCHESTRATOR_RUN_ID=context.run_id,
        CI_ORCHESTRATOR_STEP_ID=instance.id,
        CI_ORCHESTRATOR_PARALLEL="true" if parallel else "false",
        CI_ORCHESTRATOR_NONINTERACTIVE="true",
        CI_ORCHESTRATOR_JOBS=str(max(1, jobs)),
    )
    return env


def process_spec(
    instance: Instance,
    context: RunContext,
    *,
    attempt: int,
    timeout: float | None,
    parallel: bool,
    jobs: int,
    base_env: Mapping[str, str] | None = None,
) -> ProcessSpec:
    step = instance.step
    cwd = _directory(context.workspace, instance.working_directory)
    env = step_environment(instance, context, parallel=parallel, jobs=jobs, base_env=base_env)
    # As a shell sets it, so that a step started without one sees its own directory there too.
    env["PWD"] = str(cwd)
    try:
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
    except OSError as error:
        # Reported by the supervisor as a step that cannot start, with this reason.
        argv = ("/nonexistent/cannot-prepare", str(error))
    return ProcessSpec(
        key=instance.id,
        argv=argv,
        cwd=cwd,
        env=env,
        log_path=log_path(context, instance.id, attempt),
        timeout=timeout,
        masks=context.secrets,
    )
