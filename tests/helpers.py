"""Builders for model objects in tests that do not go through the loader."""

from __future__ import annotations

from typing import Any

from ci_orchestrator.errors import Location
from ci_orchestrator.playbook import Execution, Group, Instance, Playbook, Step


def step(step_id: str, **fields: Any) -> Step:
    fields.setdefault("run", "true")
    return Step(id=step_id, name=step_id, location=Location(file="test.yml", line=1, column=1), **fields)


def playbook(*steps: Step, groups: tuple[Group, ...] = (), **fields: Any) -> Playbook:
    execution = fields.pop("execution", Execution.SERIAL)
    return Playbook(
        name=fields.pop("name", "test"),
        path="test.yml",
        location=Location(file="test.yml"),
        execution=execution,
        steps=steps,
        groups=groups,
        **fields,
    )


def instances(book: Playbook) -> list[Instance]:
    """One instance per step, without a matrix."""
    return [
        Instance(
            id=s.id,
            step=s,
            matrix={},
            name=s.name,
            run=s.run,
            env=dict(book.env) | dict(s.env),
            working_directory=s.working_directory,
            timeout=s.timeout if isinstance(s.timeout, float | int) else None,
            continue_on_error=bool(s.continue_on_error),
            condition=s.condition,
        )
        for s in book.steps
    ]
