"""Every problem of a playbook in one pass, as `validate`, `plan` and `run` report it: what
reading found, then the expressions and the order rules checked on what could be read, all in
one error sorted by place. A problem found by a later stage is not held back until the earlier
ones are fixed."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ci_orchestrator.errors import OrchestratorError, PlanError, PlaybookError
from ci_orchestrator.matrix import expansion
from ci_orchestrator.plan.ordering import build_plan, check_order

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from ci_orchestrator.errors import Problem
    from ci_orchestrator.plan.ordering import Plan
    from ci_orchestrator.playbook.model import Playbook


def checked_plan(
    playbook: Playbook,
    problems: Sequence[Problem] = (),
    *,
    matrix_filters: Mapping[str, Sequence[str]] | None = None,
    variables: Mapping[str, str] | None = None,
) -> Plan:
    """The plan of `playbook`, read with `problems`; or one error that lists those and every
    problem of its expressions and order rules. `variables` are the `--var` given."""
    failures: list[OrchestratorError] = [PlaybookError.from_problems(list(problems))] if problems else []
    instances, failure = expansion.expanded(
        playbook,
        # An axis of a matrix that could not be read would be unknown to `--matrix`.
        matrix_filters=None if problems else matrix_filters,
        variables=variables,
    )
    if failure is not None:
        failures.append(failure)
    if not failures:
        return build_plan(playbook, instances, variables={**playbook.vars, **(variables or {})})
    # The order rules hold between steps, whatever their instances: every step is checked,
    # those whose expressions failed too.
    order = check_order(playbook)
    if order:
        failures.append(PlanError.from_problems(order))
    raise OrchestratorError.joined(failures, main=playbook.path)
