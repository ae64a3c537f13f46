"""What a failure does to the rest of a run: fail-fast, a group's `stop-on-error`, an interrupt,
the skip of what needed a failed step, and what GitHub's status functions see (`failure()` is
true after any failure upstream). The scheduler asks it, for each instance that became ready,
whether the instance runs."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ci_orchestrator.plan import conditions
from ci_orchestrator.run.outcomes import need_failed

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from ci_orchestrator.plan.ordering import Plan
    from ci_orchestrator.playbook.model import Instance
    from ci_orchestrator.results import StepResult


class FailurePolicy:
    """The failures seen so far in one run and what they stop."""

    def __init__(self, plan: Plan, *, fail_fast: bool) -> None:
        self.plan = plan
        self.fail_fast = fail_fast
        self.position = {node: index for index, node in enumerate(plan.order)}
        self.failed_upstream: dict[str, bool] = {}  # it, or anything before it, failed
        self.stopping: str | None = None  # why nothing new starts: "fail-fast", "interrupted"
        self.interrupted_by: int | None = None
        self.stopped_blocks: dict[str, str] = {}
        # Steps whose matrix a failed instance stopped (`fail-fast` of the step), with why.
        self.stopped_steps: dict[str, str] = {}

    def skip_reason(
        self,
        instance: Instance,
        results: Mapping[str, StepResult],
        condition: Callable[..., bool] = conditions.holds,
    ) -> str | None:
        """Why the ready instance does not run, or None when it does. `condition` answers its
        `if:` (`conditions.holds`' parameters); ExpressionError when it cannot be evaluated."""
        block = instance.step.block
        if block is not None and block in self.stopped_blocks:
            return self.stopped_blocks[block]
        if instance.step.id in self.stopped_steps:
            return self.stopped_steps[instance.step.id]
        failed_need = next(
            (
                need
                for need in sorted(self.plan.requires[instance.id], key=self.position.__getitem__)
                if not results[need]
            ),
            None,
        )
        if instance.condition is not None:
            upstream_failed = any(self.failed_upstream[before] for before in self.plan.waits_for[instance.id])
            if not condition(
                instance,
                self.plan.variables,
                success=failed_need is None and not upstream_failed,
                failure=upstream_failed,
                cancelled=self.interrupted_by is not None,
            ):
                return "condition is false"
            if self.runs_anyway(instance):
                return None  # `always()` / `failure()` steps run after failures
        if failed_need is not None:
            return need_failed(failed_need, results[failed_need].status)
        return self.stopping

    def runs_anyway(self, instance: Instance) -> bool:
        """Whether the instance starts even once the run is stopping (`always()`, `failure()`)."""
        return self.interrupted_by is None and conditions.asks_status(instance)

    def ended(self, result: StepResult) -> None:
        """Takes in an instance's end: a failure may stop the run or the instance's group."""
        failed = result.status.is_failure and not result.continue_on_error
        # As GitHub's `failure()`: true after any failure upstream, whatever ran in between.
        self.failed_upstream[result.id] = failed or any(
            self.failed_upstream[before] for before in self.plan.waits_for[result.id]
        )
        if not failed:
            return
        if self.fail_fast and self.stopping is None:
            self.stopping = "fail-fast"
        step = self.plan.by_id[result.id].step
        if step.fail_fast and step.matrix is not None and step.id not in self.stopped_steps:
            self.stopped_steps[step.id] = f"fail-fast: '{result.id}' failed"
        block = self.plan.by_id[result.id].step.block
        group = next((g for g in self.plan.playbook.groups if g.name == block), None)
        stops_group = group is not None and group.stop_on_error
        if block is not None and stops_group and block not in self.stopped_blocks:
            self.stopped_blocks[block] = f"stop-on-error: '{result.id}' failed in group '{block}'"

    def interrupt(self, signum: int) -> None:
        self.interrupted_by = signum
        self.stopping = "interrupted"
