"""`validate`: a playbook read, expanded and planned, every problem reported in one pass."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ci_orchestrator.options import parse_pairs
from ci_orchestrator.plan.checking import checked_plan
from ci_orchestrator.playbook import loader
from ci_orchestrator.workflows import generated

if TYPE_CHECKING:
    from collections.abc import Sequence


def validate_one(name: str | None, variables: Sequence[str] = ()) -> str:
    """Read, expand and plan one playbook (`playbooks/ci.yml` when `name` is None); success says
    what was checked. Every problem, of reading, expressions and order rules, is raised at once.

    `variables` are `--var KEY=VALUE`, as `run` would be given: a variable a playbook reads
    without declaring it is an error unless given here.
    """
    path = generated.playbook_file(name, root=Path.cwd())
    playbook, problems = loader.read_playbook(path)
    plan = checked_plan(playbook, problems, variables=parse_pairs(variables, option="--var"))
    steps, count = len(playbook.steps), len(plan.instances)
    if path.parent == Path.cwd() / generated.GENERATED_DIR and name is not None:  # a workflow's
        counted = f"{_counted(steps, 'job')}, {_counted(count, 'instance')}"
        return f"{name}: valid ({counted}; playbook {playbook.path})"
    return f"{playbook.path}: valid ({_counted(steps, 'step')}, {_counted(count, 'instance')})"


def _counted(count: int, noun: str) -> str:
    return f"{count} {noun}{'s' * (count != 1)}"
