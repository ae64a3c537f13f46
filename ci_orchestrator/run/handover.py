"""What the instances that ended hand on to an instance that waits for them: the `steps` and
`needs` contexts (outputs and status), the variables their GITHUB_ENV set and the folders their
GITHUB_PATH added.

An instance receives from every instance it waits for, directly or not, that ran in this run.
Where two set the same variable, the later in plan order wins (plan order puts what is waited
for first, so a step always overrides what it waited for). Of a step with a matrix, an instance
whose own matrix agrees with some of its instances on every key they share receives from those
only (`test (3.12)` from `build (3.12)`); any other receives from all of them, and each output
is the one the last instance in matrix order set.

The values a run masks grow as it goes: a name of `secrets` set by a GITHUB_ENV, an `env`
entry that reads what a step handed on, or a value a step announced with `::add-mask::`, is
hidden from then on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ci_orchestrator.output.masking import mask_values
from ci_orchestrator.results import Status
from ci_orchestrator.run.file_commands import added_paths

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from ci_orchestrator.plan.ordering import Plan
    from ci_orchestrator.playbook.model import Instance
    from ci_orchestrator.results import StepResult

# GitHub's words for how a step ended.
OUTCOMES = {
    Status.PASSED: "success",
    Status.CACHED: "success",
    Status.FAILED: "failure",
    Status.TIMED_OUT: "failure",
    Status.CANCELLED: "cancelled",
    Status.SKIPPED: "skipped",
}
_RANK = ("failure", "cancelled", "success", "skipped")  # a matrix step's result: its worst instance's


@dataclass(frozen=True, slots=True, kw_only=True)
class Received:
    """What an instance receives: `env` and `path` (folders, first first) for its process,
    `later` the `steps` and `needs` contexts for its expressions."""

    env: Mapping[str, str] = field(default_factory=dict)
    path: tuple[str, ...] = ()
    later: Mapping[str, Any] = field(default_factory=dict)


NOTHING = Received()


class Handover:
    """Follows what ended instances hand on in one run of `plan`."""

    def __init__(self, plan: Plan, *, masks: tuple[str, ...] = ()) -> None:
        self.plan = plan
        self.position = {node: index for index, node in enumerate(plan.order)}
        self.handing: set[str] = set()  # instances that ended with outputs, env or path
        self.masks = masks  # every value to hide so far (see the module's docstring)

    def ended(self, result: StepResult) -> None:
        if result.files:
            self.handing.add(result.id)
            self.hide(result.files.env)

    def announce(self, values: Sequence[str]) -> None:
        """Hides from now on what a step announced with `::add-mask::` (in the logs of the
        instances that start after, as GitHub hides it in the rest of its job's log)."""
        if any(value not in self.masks for value in values):
            self.masks = mask_values([*self.masks, *values])

    def hide(self, env: Mapping[str, str]) -> None:
        """Hides from now on the values `env` gives names of `secrets`."""
        secret = [value for name, value in env.items() if name in self.plan.playbook.secrets]
        if any(value not in self.masks for value in secret):
            self.masks = mask_values([*self.masks, *secret])

    def received(self, instance: Instance, results: Mapping[str, StepResult]) -> Received:
        """What `instance` receives once every instance it waits for has ended."""
        # A job's steps may read `needs` (evaluated in the job's process, as each starts).
        reads = instance.deferred or _may_read_later(instance.condition) or bool(instance.step.steps)
        if not reads and not self.handing:
            return NOTHING
        by_step: dict[str, list[str]] = {}
        for node in self.plan.upstream_of([instance.id]):
            if node in results:
                by_step.setdefault(self.plan.by_id[node].step.id, []).append(node)
        chosen = {step: self.matching(instance, nodes) for step, nodes in by_step.items()}
        sources = sorted((node for nodes in chosen.values() for node in nodes), key=self.position.__getitem__)
        env: dict[str, str] = {}
        for node in sources:
            env.update(results[node].files.env)
        path = added_paths(results[node].files.path for node in sources)
        later = contexts([[results[node] for node in nodes] for nodes in chosen.values()]) if reads else {}
        return Received(env=env, path=path, later=later)

    def matching(self, instance: Instance, nodes: Sequence[str]) -> list[str]:
        """The instances of one step that `instance` receives from (see the module's docstring)."""
        own = instance.matrix
        if not own or len(nodes) < 2:
            return list(nodes)

        def agrees(node: str) -> bool:
            theirs = self.plan.by_id[node].matrix
            shared = own.keys() & theirs.keys()
            return bool(shared) and all(own[key] == theirs[key] for key in shared)

        return [node for node in nodes if agrees(node)] or list(nodes)


def _may_read_later(condition: str | None) -> bool:
    """Whether an `if:` may read `steps` or `needs` (its text names one): else its contexts are
    not built, a cost each instance with a condition would pay."""
    folded = condition.casefold() if condition else ""
    return "steps" in folded or "needs" in folded


def contexts(steps: Sequence[Sequence[StepResult]]) -> dict[str, Any]:
    """The `steps` and `needs` contexts of these steps' results (each step's instances in plan
    order)."""
    steps_context: dict[str, Any] = {}
    needs_context: dict[str, Any] = {}
    for results in steps:
        outputs: dict[str, str] = {}
        for result in results:
            outputs.update(result.files.outputs)
        outcome = _combined([OUTCOMES[result.status] for result in results])
        conclusion = _combined([_conclusion(result) for result in results])
        step_id = results[0].step
        steps_context[step_id] = {"outputs": outputs, "outcome": outcome, "conclusion": conclusion}
        needs_context[step_id] = {"outputs": dict(outputs), "result": conclusion}
    return {"steps": steps_context, "needs": needs_context}


def _conclusion(result: StepResult) -> str:
    """As GitHub's `conclusion`: a failure that `continue-on-error` allows is a success."""
    outcome = OUTCOMES[result.status]
    return "success" if outcome == "failure" and result.continue_on_error else outcome


def _combined(outcomes: Sequence[str]) -> str:
    return next((rank for rank in _RANK if rank in outcomes), "skipped")
