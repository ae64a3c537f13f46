"""`import github-workflow WORKFLOW.yml`: the playbook that runs a workflow's jobs here, printed."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING

from ci_orchestrator.errors import UsageError
from ci_orchestrator.playbook import lookup
from ci_orchestrator.workflows.playbook_text import playbook_text
from ci_orchestrator.workflows.reader import read_workflow
from ci_orchestrator.workflows.reusable import inline_calls
from ci_orchestrator.workflows.tracked import checkout_inputs

if TYPE_CHECKING:
    from ci_orchestrator.options import Selection


def import_text(workflow_path: str, choice: Selection) -> str:
    path = Path(workflow_path)
    if lookup.look(path).kind is not lookup.Kind.FILE:
        raise UsageError(f"{workflow_path}: no such file")
    workflow = inline_calls(read_workflow(path), root=Path.cwd())
    options = choice.workflow_options()
    known = {job.id for job in workflow.jobs}
    for job in options.jobs:
        if job not in known:
            raise UsageError(
                f"--job {job}: no such job in {workflow.path} (jobs: {', '.join(sorted(known))})"
            )
    options = dataclasses.replace(options, cache_inputs=checkout_inputs(Path.cwd(), path))
    return playbook_text(workflow, options)
