"""How a job instance (a step made of steps) becomes a process: its steps, contexts and outputs
written to a JSON file that `job_runner` reads, run by the current Python."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from pathlib import Path

    from ci_orchestrator.playbook.model import Instance, JobStep


def step_spec(step: JobStep) -> dict[str, Any]:
    """A job's step as the runner reads it (and the cache keys it)."""
    return {
        "id": step.id,
        "title": step.title,
        "run": step.run,
        "uses": step.uses,
        "with": dict(step.with_),
        "shell": step.shell,
        "working-directory": step.working_directory,
        "env": dict(step.env),
        "if": step.condition,
        "continue-on-error": step.continue_on_error,
        "timeout": step.timeout,
    }


def job_spec(
    instance: Instance, *, variables: Mapping[str, str], secrets: Sequence[str], workspace: Path
) -> dict[str, Any]:
    step = instance.step
    return {
        "job": instance.id,
        "steps": [step_spec(one) for one in step.steps],
        "outputs": dict(step.job_outputs),
        "shell": step.shell,
        "working-directory": instance.working_directory,
        "workspace": str(workspace),
        "matrix": dict(instance.matrix),
        "needs": dict(instance.needs),
        "runs-on": list(step.runs_on),
        "env": dict(instance.env),
        "vars": dict(variables),
        "secrets": list(secrets),
    }


def job_argv(
    instance: Instance,
    *,
    variables: Mapping[str, str],
    secrets: Sequence[str],
    workspace: Path,
    scratch_dir: Path,
    name: str,
    record: Path,
) -> tuple[str, ...]:
    """Writes the job's spec next to the run's scripts; the argv that runs it. The job writes
    how its steps ended to `record` (see `job_steps`)."""
    spec = job_spec(instance, variables=variables, secrets=secrets, workspace=workspace)
    spec["record"] = str(record.absolute())
    scratch_dir.mkdir(parents=True, exist_ok=True)
    path = scratch_dir.absolute() / f"{name}.job.json"
    path.write_text(json.dumps(spec), encoding="utf-8")
    return (sys.executable, "-m", "ci_orchestrator.run.job_runner", str(path))
