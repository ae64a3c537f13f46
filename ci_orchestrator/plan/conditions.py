"""An instance's `if:` as the scheduler asks it, once the instances it waits for have ended:
does it run, and does it run even after a failure (`always()`, `failure()`)? The expression
language stays here, behind two questions, so the scheduler needs none of it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Mapping

    from ci_orchestrator.expressions.evaluation import FileHasher
    from ci_orchestrator.playbook.model import Instance


def holds(
    instance: Instance,
    variables: Mapping[str, str],
    *,
    success: bool,
    failure: bool,
    cancelled: bool,
    later: Mapping[str, Any] | None = None,
    files: FileHasher | None = None,
) -> bool:
    """Whether the instance's `if:` is true with this state of the run: `success` when all it
    needs passed, `failure` when something before it failed, `cancelled` once the run is
    interrupted; `later` holds the `steps` and `needs` contexts, `files` is `hashFiles`. An
    instance without `if:` holds (what it needs decides then)."""
    if instance.condition is None:
        return True
    # Loaded only for a playbook with conditions (~10 ms of start-up).
    from ci_orchestrator.expressions import evaluation
    from ci_orchestrator.matrix import evaluator

    status = evaluation.JobStatus(success=success, failure=failure, cancelled=cancelled)
    contexts = evaluator.contexts_for(instance, variables, later=later)
    return evaluation.evaluate_condition(instance.condition, contexts, status, files=files)


def asks_status(instance: Instance) -> bool:
    """Whether the instance's `if:` calls a status function (`always()`, `failure()`,
    `cancelled()`, `success()`): then it decides alone whether to run after a failure."""
    if instance.condition is None:
        return False
    from ci_orchestrator.expressions import evaluation  # see `holds`

    return evaluation.uses_status_function(instance.condition)
