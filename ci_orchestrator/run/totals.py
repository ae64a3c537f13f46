"""A finished run's `RunResult`: its instances' results in plan order and the run's figures
(concurrency, pool use, critical path, serial time, speed-up)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from ci_orchestrator.results import RunResult, RunStats, RunStatus, speedup

if TYPE_CHECKING:
    from collections.abc import Mapping

    from ci_orchestrator.plan.ordering import Plan
    from ci_orchestrator.results import StepResult
    from ci_orchestrator.run.capacity import Slots
    from ci_orchestrator.run.process_specs import RunContext


def utcnow() -> datetime:
    return datetime.now(UTC)


def run_result(
    plan: Plan,
    results: Mapping[str, StepResult],
    *,
    context: RunContext,
    slots: Slots,
    started: datetime,
    interrupted_by: int | None,
    secrets: tuple[str, ...],
) -> RunResult:
    finished = utcnow()
    steps = tuple(results[node] for node in plan.order if node in results)
    wall = max((finished - started).total_seconds(), 1e-9)
    serial = sum(step.duration for step in steps)
    ran = {step.id: step.duration for step in steps if step.started is not None}
    # A step that never ran took no time: it weighs 0, not the planning guess of 1 s, and is
    # no part of the chain that took the run's time.
    weights = {node: ran.get(node, 0.0) for node in plan.order}
    path, _ = plan.critical_path(weights) if ran else ([], 0.0)
    path = [node for node in path if node in ran]
    stats = RunStats(
        max_concurrency_seen=slots.max_seen,
        resource_utilization=slots.utilization(wall),
        critical_path=tuple(path),
        serial_duration=round(serial, 6),
        speedup=speedup(steps, wall),
    )
    return RunResult(
        run_id=context.run_id,
        playbook=plan.playbook.name,
        playbook_path=plan.playbook.path,
        status=RunStatus.of(steps, interrupted=interrupted_by is not None),
        started=started,
        finished=finished,
        steps=steps,
        stats=stats,
        vars=dict(plan.variables),
        interrupted_by=interrupted_by,
        secrets=secrets,
    )
