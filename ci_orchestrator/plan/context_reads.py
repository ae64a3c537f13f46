"""What a step's `steps.ID` and `needs.ID` read: a step it waits for, directly or not, or an
error at the key that reads it. A step that does not wait for ID could start before ID has
written anything, so its value would depend on timing: refused before anything runs."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ci_orchestrator.errors import ExpressionError, Problem, did_you_mean
from ci_orchestrator.matrix.evaluator import where
from ci_orchestrator.plan import graph

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping, Sequence

    from ci_orchestrator.playbook.model import Step

_CONTEXTS = ("steps", "needs")


def read_problems(steps: Mapping[str, Step], waits: Mapping[str, Sequence[str]]) -> list[Problem]:
    """The problems of every `steps.ID` / `needs.ID` read of `steps` (by id), `waits` being
    what each step waits for directly (order rules and `needs`, acyclic)."""
    problems: list[Problem] = []
    by_folded = {step_id.casefold(): step_id for step_id in steps}  # contexts ignore case, as GitHub's
    for step in steps.values():
        reads = list(_reads(step))
        if not reads:
            continue
        before = {node.casefold() for node in graph.reachable(waits, [step.id]) if node != step.id}
        for (key, entry), context, named in reads:
            if named.casefold() == step.id.casefold():
                message = f"{context}.{named}: a step cannot read its own {context} entry"
            elif named.casefold() not in by_folded:
                message = f"{context}.{named}: no step '{named}'{did_you_mean(named, steps)}"
            elif named.casefold() not in before:
                message = (
                    f"{context}.{named}: step '{step.id}' does not wait for '{by_folded[named.casefold()]}'"
                    f" (add it to needs)"
                )
            else:
                continue
            location, path = where(step, key, entry)
            problems.append(Problem(location=location, path=path, message=message))
    return sorted(problems, key=lambda problem: problem.location.line if problem.location else 0)


def _reads(step: Step) -> Iterator[tuple[tuple[str, str | None], str, str]]:
    """((key, env entry), context, step id) of each `steps.ID` / `needs.ID` a step's texts read
    by name."""
    texts = [(key, text, False) for key, text in _texts(step) if "${{" in text]
    if step.condition is not None:
        texts.append((("if", None), step.condition, True))
    if not texts:
        return
    from ci_orchestrator.expressions import evaluation  # only for a step with expressions

    for key, text, condition in texts:
        for context in _CONTEXTS:
            try:
                named = evaluation.keys_named(text, context, condition=condition)
            except ExpressionError:
                continue  # reported where the text is checked
            for step_id in dict.fromkeys(named):
                yield key, context, step_id


def _texts(step: Step) -> Iterator[tuple[tuple[str, str | None], str]]:
    named: dict[str, object] = {
        "name": step.name,
        "run": step.run,
        "working-directory": step.working_directory,
    }
    named |= {"timeout": step.timeout, "continue-on-error": step.continue_on_error}
    for key, text in named.items():
        if isinstance(text, str):
            yield (key, None), text
    yield from ((("command", None), part) for part in step.command or ())
    yield from ((("args", None), part) for part in step.args)
    yield from ((("env", name), value) for name, value in step.env.items())
