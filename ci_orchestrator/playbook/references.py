"""What steps name, checked on the steps that could be read: ids written twice, `needs` that name
no step or the step itself, pools not declared or smaller than one step's demand.

Reading reports these with the file's other problems; the plan checks them again, in the same
words and at the same places, for a playbook built otherwise, so a pass that gathers both stages
lists each once. Cycles are the plan's: they depend on the order rules.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ci_orchestrator.errors import Problem, did_you_mean

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from ci_orchestrator.playbook.model import Step


def reference_problems(steps: Sequence[Step], pools: Mapping[str, int] | None) -> list[Problem]:
    """Every problem of the steps' ids, `needs` and pools. `pools` None: the playbook's
    `resources:` could not be read (and was reported), so no step's pools are checked."""
    problems: list[Problem] = []
    first: dict[str, Step] = {}
    for step in steps:
        if step.id in first:
            where = step.key_locations.get("id", step.location)
            earlier = first[step.id].location
            at = f"line {earlier.line}" if earlier.file == where.file and earlier.line else str(earlier)
            message = f"duplicate step id {step.id!r} (first at {at})"
            problems.append(Problem(location=where, path=step.key_path("id"), message=message))
        first.setdefault(step.id, step)
    for step in steps:
        where = step.key_locations.get("needs", step.location)
        for need in step.needs:
            if need == step.id:
                message = f"step {need!r} needs itself"
            elif need not in first:
                message = f"unknown step {need!r}{did_you_mean(need, first)}"
            else:
                continue
            problems.append(Problem(location=where, path=step.key_path("needs"), message=message))
        if pools is not None:
            problems.extend(_pool_problems(step, pools))
    return problems


def _pool_problems(step: Step, pools: Mapping[str, int]) -> list[Problem]:
    where = step.key_locations.get("resources", step.location)
    problems = []
    for pool, demand in step.resources.items():
        if pool not in pools:
            why = did_you_mean(pool, pools) if pools else ": the playbook declares no 'resources'"
            message = f"unknown resource pool {pool!r}{why}"
        elif demand > pools[pool]:
            message = f"needs {demand} of pool {pool!r}, which holds {pools[pool]}"
        else:
            continue
        problems.append(Problem(location=where, path=step.key_path("resources"), message=message))
    return problems
