"""`validate`: a playbook read, expanded and planned, every problem reported in one pass."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ci_orchestrator.errors import OrchestratorError
from ci_orchestrator.matrix import expansion
from ci_orchestrator.plan.ordering import build_plan
from ci_orchestrator.playbook import loader
from ci_orchestrator.playbook.model import Instance

if TYPE_CHECKING:
    from ci_orchestrator.errors import Problem


def validate_one(name: str | None) -> str:
    """Load, expand and plan one playbook (None: playbooks/ci.yml); success says what was checked.

    Matrix and expression problems and graph problems (needs, pools, cycles) are raised
    together, so one pass over a file shows everything wrong with it.
    """
    root = Path.cwd()
    playbook = loader.load_playbook(loader.find_playbook(name, root=root))
    failures: list[OrchestratorError] = []
    try:
        instances = expansion.expand(playbook)
    except OrchestratorError as error:
        failures.append(error)
        # The graph depends on steps, not on their matrix values: one plain instance per
        # step still finds every unknown need, pool too small and cycle.
        instances = [Instance.as_written(step) for step in playbook.steps]
    try:
        build_plan(playbook, instances)
    except OrchestratorError as error:
        failures.append(error)
    if failures:
        problems = sorted((problem for failure in failures for problem in failure.problems), key=_place)
        raise type(failures[0]).from_problems(problems)
    steps, count = len(playbook.steps), len(instances)
    return f"{playbook.path}: valid ({_counted(steps, 'step')}, {_counted(count, 'instance')})"


def _counted(count: int, noun: str) -> str:
    return f"{count} {noun}{'s' * (count != 1)}"


def _place(problem: Problem) -> tuple[int, int]:
    return (problem.location.line, problem.location.column) if problem.location else (0, 0)
