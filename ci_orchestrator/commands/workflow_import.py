"""`import github-workflow WORKFLOW.yml`: the playbook that runs a workflow's jobs here, printed."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ci_orchestrator.errors import UsageError
from ci_orchestrator.options import Selection
from ci_orchestrator.playbook import lookup
from ci_orchestrator.workflows import generated

if TYPE_CHECKING:
    from collections.abc import Sequence


def import_text(
    workflow_path: str,
    jobs: Sequence[str] | None,
    event: str | None,
    inputs: Sequence[str] | None,
    secrets: Sequence[str] | None,
) -> str:
    """The playbook of the workflow (`--job`: these jobs and what they need; `--event`,
    `--input KEY=VALUE`, `--secret NAME` as `run` takes them)."""
    path = Path(workflow_path)
    if lookup.look(path).kind is not lookup.Kind.FILE:
        raise UsageError(f"{workflow_path}: no such file")
    choice = Selection(
        event=event, inputs=tuple(inputs or ()), secrets=tuple(secrets or ()), jobs=tuple(jobs or ())
    )
    return generated.workflow_text(path, root=Path.cwd(), options=choice.workflow_options())
