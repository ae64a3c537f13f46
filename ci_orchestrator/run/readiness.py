"""What an instance becomes once everything it waits for has ended: skipped (its `if:`, a failed
need, a stopped run or matrix), failed (an `if:` or a text that cannot be evaluated: as on
GitHub, that step fails and the run goes on), or resolved to run: its texts evaluated with the
`steps` and `needs` contexts, with what the instances before it handed on."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ci_orchestrator.cache.hash_files import hash_files
from ci_orchestrator.errors import ExpressionError
from ci_orchestrator.matrix.expansion import at_run
from ci_orchestrator.plan import conditions
from ci_orchestrator.results import Status

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from pathlib import Path

    from ci_orchestrator.plan.ordering import Plan
    from ci_orchestrator.playbook.model import Instance
    from ci_orchestrator.results import StepResult
    from ci_orchestrator.run.failure_policy import FailurePolicy
    from ci_orchestrator.run.handover import Handover


@dataclass(frozen=True, slots=True)
class NotRun:
    """An instance that ends without a process: its status and why."""

    status: Status
    reason: str


def resolved(
    instance: Instance,
    *,
    plan: Plan,
    results: Mapping[str, StepResult],
    handover: Handover,
    policy: FailurePolicy,
    workspace: Path,
) -> Instance | NotRun:
    """The instance as it runs now, or why it does not."""
    received = handover.received(instance, results)
    files = functools.partial(workspace_hash, workspace)
    try:
        condition = functools.partial(conditions.holds, later=received.later, files=files)
        skip = policy.skip_reason(instance, results, condition=condition)
    except ExpressionError as error:
        return NotRun(Status.FAILED, f"if: cannot be evaluated: {error.problems[0].message}")
    if skip is not None:
        return NotRun(Status.SKIPPED, skip)
    try:
        return at_run(
            plan.playbook,
            instance,
            plan.variables,
            later=received.later,
            env_added=received.env,
            path=received.path,
            files=files,
        )
    except ExpressionError as error:
        return NotRun(Status.FAILED, f"its expressions cannot be evaluated: {error.problems[0].message}")


def workspace_hash(workspace: Path, patterns: Sequence[str]) -> str:
    """`hashFiles` in the workspace, as the step starts."""
    try:
        return hash_files(workspace, patterns)
    except OSError as error:
        raise ExpressionError(f"hashFiles() cannot read a file: {error.strerror or error}") from None
