"""`run WORKFLOW.yml`: the workflow's playbook written where runs can find it again.

The playbook goes to `.ci-orchestrator/workflows/NAME.yml`: run.json names it, so `repro`,
`cache explain` and `history` work on it as on any playbook."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from ci_orchestrator.errors import UsageError
from ci_orchestrator.playbook.loader import find_playbook
from ci_orchestrator.workflows.playbook_text import ImportOptions, playbook_text
from ci_orchestrator.workflows.reader import is_workflow, read_workflow
from ci_orchestrator.workflows.reusable import inline_calls
from ci_orchestrator.workflows.tracked import checkout_inputs

if TYPE_CHECKING:
    from pathlib import Path

GENERATED_DIR = ".ci-orchestrator/workflows"


def workflow_text(path: Path, *, root: Path, options: ImportOptions) -> str:
    """Reads and checks the workflow (PlaybookError, exit 2, where GitHub would refuse it) and
    the reusable workflows it calls; the text of its playbook, run in `root`."""
    workflow = inline_calls(read_workflow(path), root=root)
    unknown = [job for job in options.jobs if job not in {one.id for one in workflow.jobs}]
    if unknown:
        known = ", ".join(job.id for job in workflow.jobs)
        raise UsageError(f"--job {unknown[0]}: no such job in {workflow.path} (jobs: {known})")
    options = dataclasses.replace(options, cache_inputs=checkout_inputs(root, path))
    return playbook_text(workflow, options)


def workflow_playbook(path: Path, *, root: Path, options: ImportOptions) -> Path:
    """The workflow's playbook written where runs find it again (see `workflow_text`); its path."""
    text = workflow_text(path, root=root, options=options)
    target = root / GENERATED_DIR / f"{path.stem}.yml"
    target.parent.mkdir(parents=True, exist_ok=True)
    if not target.is_file() or target.read_text(encoding="utf-8") != text:
        target.write_text(text, encoding="utf-8")
    return target


def playbook_file(name: str | None, *, root: Path, options: ImportOptions | None = None) -> Path:
    """The playbook `name` means, found as `run` finds it; a GitHub workflow (a file with a
    top-level `jobs:`) is checked and its playbook written first."""
    path = find_playbook(name, root=root)
    if not is_workflow(path):
        return path
    return workflow_playbook(path, root=root, options=options or ImportOptions())
