"""The step instances of a playbook: one per matrix combination (the rules are in
`matrix/rules`), with every `${{ }}` of the step evaluated for it (by `matrix/evaluator`),
narrowed by `--matrix`; and an instance as the run starts it (`at_run`).

A second instance with the same id gets ` #2` (then ` #3`...) so ids stay unique.

Most steps have no matrix and no `${{ }}`: their instance is the step as written, made without
the expression modules, which are imported only when a playbook uses them.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from ci_orchestrator.errors import ExpressionError, Problem, UsageError, did_you_mean
from ci_orchestrator.matrix.evaluator import Expander
from ci_orchestrator.matrix.rules import listed
from ci_orchestrator.playbook.model import Instance

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from ci_orchestrator.errors import OrchestratorError
    from ci_orchestrator.expressions.evaluation import FileHasher
    from ci_orchestrator.playbook.model import Playbook, Step


def expand(
    playbook: Playbook,
    *,
    matrix_filters: Mapping[str, Sequence[str]] | None = None,
    variables: Mapping[str, str] | None = None,
    runner: Mapping[str, str] | None = None,
) -> list[Instance]:
    """Every step's instances, in the playbook's step order.

    `matrix_filters` keeps only the given values of an axis, or replaces its values with them
    when it lacks some (`--matrix KEY=V1,V2`); `variables`
    overlay the playbook's `vars` (`--var`). Every expression problem of the playbook is raised
    at once, each located at the key that holds it.
    """
    instances, error = expanded(playbook, matrix_filters=matrix_filters, variables=variables, runner=runner)
    if error is not None:
        raise error
    return instances


def expanded(
    playbook: Playbook,
    *,
    matrix_filters: Mapping[str, Sequence[str]] | None = None,
    variables: Mapping[str, str] | None = None,
    runner: Mapping[str, str] | None = None,
) -> tuple[list[Instance], OrchestratorError | None]:
    """As `expand`, with the error that lists every problem returned, not raised, beside the
    instances of the steps that have none: a later stage checks what could be expanded."""
    expander = Expander(
        playbook,
        variables={**playbook.vars, **(variables or {})},
        runner=dict(runner) if runner is not None else None,
    )
    expander.check_variables()
    found = [(step, expander.combinations(step)) for step in playbook.steps]
    if not expander.problems:  # else go on: every step's expressions are checked in the same pass
        found = _filtered(found, matrix_filters or {}, expander)
    instances = [instance for step, cells in found for instance in expander.instances(step, cells)]
    return instances, expander.error()


def _filtered(
    expanded: list[tuple[Step, list[dict[str, Any]]]],
    filters: Mapping[str, Sequence[str]],
    expander: Expander,
) -> list[tuple[Step, list[dict[str, Any]]]]:
    """`--matrix KEY=V1,V2`: values an axis has restrict it to them; values it lacks override it
    (the step is expanded again with that axis holding exactly the given values)."""
    if not filters:
        return expanded
    from ci_orchestrator.expressions import evaluation  # lazily: see the module's docstring

    axes = list(dict.fromkeys(key for _, found in expanded for combination in found for key in combination))
    for key in filters:
        if key not in axes:
            hint = did_you_mean(key, axes)
            raise UsageError(f"--matrix {key}: no step has a matrix axis '{key}'{hint}; axes: {listed(axes)}")
    problems: list[Problem] = []
    result: list[tuple[Step, list[dict[str, Any]]]] = []
    for step, found in expanded:
        overrides: dict[str, tuple[str, ...]] = {}
        for key, wanted in filters.items():
            values = list(dict.fromkeys(evaluation.as_text(c[key]) for c in found if key in c))
            if not values or all(value in values for value in wanted):
                continue
            if step.matrix is None or step.matrix.expression is not None or key not in step.matrix.axes:
                # Only a listed axis can take new values: here the key comes from `include`.
                missing = ",".join(value for value in wanted if value not in values)
                message = (
                    f"{key}={missing}: step '{step.id}' has no such value "
                    f"(its {key} values: {listed(values)}; only an axis under `matrix:` takes new ones)"
                )
                problems.append(Problem(location=None, path="--matrix", message=message))
            overrides[key] = tuple(wanted)
        cells = expander.overridden(step, overrides) if overrides and not problems else found
        for key, wanted in filters.items():
            if any(key in cell for cell in cells):
                cells = [cell for cell in cells if key in cell and evaluation.as_text(cell[key]) in wanted]
        result.append((step, cells))
    if problems:
        raise UsageError.from_problems(problems)
    return result


def at_run(
    playbook: Playbook,
    instance: Instance,
    variables: Mapping[str, str],
    *,
    later: Mapping[str, Any],
    env_added: Mapping[str, str],
    path: tuple[str, ...],
    runner: Mapping[str, str] | None = None,
    files: FileHasher | None = None,
) -> Instance:
    """The instance as the run starts it: its texts evaluated with the `steps` and `needs`
    contexts (`later`), the env that the steps before it added under its own, and the folders
    they put on PATH; `files` is `hashFiles`. ExpressionError when a text cannot be evaluated now."""
    found = _resolved(
        playbook, instance, variables, later=later, env_added=env_added, path=path, runner=runner, files=files
    )
    if instance.step.steps:
        # A job's steps are evaluated as they start, by the job's runner: it takes `needs` along.
        found = dataclasses.replace(found, needs=dict(later.get("needs", {})))
    return found


def _resolved(
    playbook: Playbook,
    instance: Instance,
    variables: Mapping[str, str],
    *,
    later: Mapping[str, Any],
    env_added: Mapping[str, str],
    path: tuple[str, ...],
    runner: Mapping[str, str] | None,
    files: FileHasher | None,
) -> Instance:
    if not instance.deferred and not env_added and not path:
        return instance
    step = instance.step
    if not instance.deferred and instance == Instance.as_written(
        step, env=instance.env, timeout=instance.timeout, continue_on_error=instance.continue_on_error
    ):
        env = {**playbook.env, **env_added, **step.env}
        return dataclasses.replace(instance, env=env, path=path)
    given_runner = dict(runner) if runner is not None else None
    expander = Expander(playbook, variables=dict(variables), runner=given_runner, files=files)
    found = expander.instance(
        step, dict(instance.matrix), instance.id, later=later, env_added=env_added, path=path
    )
    error = expander.error()
    if error is not None:
        raise ExpressionError(error.problems[0].message)
    return found
