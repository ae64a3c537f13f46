"""A finished run's figures: the highest concurrency, each pool's use, the critical path (the
chain of instances that took the run's time), the durations added up and the speed-up they
give over the wall time."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ci_orchestrator.results import RunStats, speedup

if TYPE_CHECKING:
    from collections.abc import Sequence

    from ci_orchestrator.plan.ordering import Plan
    from ci_orchestrator.results import StepResult
    from ci_orchestrator.run.capacity import Slots


def run_stats(plan: Plan, steps: Sequence[StepResult], *, slots: Slots, wall: float) -> RunStats:
    """The figures of the run of `plan` that ended with `steps`, over `wall` seconds."""
    wall = max(wall, 1e-9)
    serial = sum(step.duration for step in steps)
    ran = {step.id: step.duration for step in steps if step.started is not None}
    # A step that never ran took no time: it weighs 0, not the planning guess of 1 s, and is
    # no part of the chain that took the run's time.
    weights = {node: ran.get(node, 0.0) for node in plan.order}
    path, _ = plan.critical_path(weights) if ran else ([], 0.0)
    return RunStats(
        max_concurrency_seen=slots.max_seen,
        resource_utilization=slots.utilization(wall),
        critical_path=tuple(node for node in path if node in ran),
        serial_duration=round(serial, 6),
        speedup=speedup(steps, wall),
    )
