"""A GitHub workflow as read: its jobs and their steps, values kept as written (expressions stay
text). No I/O."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Mapping

    from ci_orchestrator.errors import Location


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkflowStep:
    """One entry of a job's `steps:`: a `run:` script or a `uses:` action."""

    location: Location
    id: str | None = None
    name: str | None = None
    run: str | None = None
    uses: str | None = None
    with_: Mapping[str, str] = field(default_factory=dict)
    shell: str | None = None
    working_directory: str | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    condition: str | None = None
    continue_on_error: bool | str = False
    timeout_minutes: float | str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Job:
    """One job: its steps, or the reusable workflow it calls (`uses`, `with`)."""

    id: str
    location: Location
    name: str | None = None
    needs: tuple[str, ...] = ()
    condition: str | None = None
    matrix: Mapping[str, Any] | str | None = None  # as written: axes, include, exclude; or `${{ }}`
    fail_fast: bool | str = True
    max_parallel: int | str | None = None
    continue_on_error: bool | str = False
    timeout_minutes: float | str | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    shell: str | None = None  # `defaults.run`
    working_directory: str | None = None
    outputs: Mapping[str, str] = field(default_factory=dict)
    steps: tuple[WorkflowStep, ...] = ()
    uses: str | None = None
    with_: Mapping[str, str] = field(default_factory=dict)
    secrets: Mapping[str, str] | str | None = None  # a mapping, or `inherit`
    runs_on: str | tuple[str, ...] | None = None  # a label or an expression; labels
    # What is noted but not run here: `runs-on`, `container`, `services`, `permissions`,
    # `concurrency`, `environment`, each summed up in one line.
    noted: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkflowInput:
    """An input of `workflow_dispatch` or `workflow_call`."""

    name: str
    default: str | None = None
    required: bool = False
    type: str = "string"
    description: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Workflow:
    name: str
    path: str  # as shown in messages
    location: Location
    events: tuple[str, ...] = ()
    inputs: tuple[WorkflowInput, ...] = ()
    outputs: Mapping[str, str] = field(default_factory=dict)  # `workflow_call` outputs
    env: Mapping[str, str] = field(default_factory=dict)
    shell: str | None = None
    working_directory: str | None = None
    jobs: tuple[Job, ...] = ()
    noted: Mapping[str, str] = field(default_factory=dict)
    secrets: tuple[str, ...] = ()  # every `secrets.NAME` its expressions read

    def job(self, job_id: str) -> Job:
        for job in self.jobs:
            if job.id == job_id:
                return job
        raise KeyError(job_id)
