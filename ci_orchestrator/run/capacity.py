"""What is free right now: process slots, pool capacity, per-step instance limits and the
exclusive lock — and what was used, for the run's statistics."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Mapping

    from ci_orchestrator.playbook.model import Step


class Slots:
    """Counts what running instances hold. An exclusive instance holds everything."""

    def __init__(self, *, concurrency: int, pools: Mapping[str, int]) -> None:
        self.concurrency = max(1, concurrency)
        self.capacity = dict(pools)
        self.used = dict.fromkeys(pools, 0)
        self.busy = dict.fromkeys(pools, 0.0)  # slot-seconds held, per pool
        self.per_step: dict[str, int] = {}
        self.running = 0
        self.exclusive = False
        self.max_seen = 0

    @property
    def full(self) -> bool:
        return self.exclusive or self.running >= self.concurrency

    def fits(self, step: Step) -> bool:
        """Room in every pool the step takes, and under its `max-parallel`."""
        if step.max_parallel is not None and self.per_step.get(step.id, 0) >= step.max_parallel:
            return False
        return all(self.used[pool] + demand <= self.capacity[pool] for pool, demand in step.resources.items())

    def take(self, step: Step, *, exclusive: bool) -> None:
        self.running += 1
        self.max_seen = max(self.max_seen, self.running)
        self.per_step[step.id] = self.per_step.get(step.id, 0) + 1
        for pool, demand in step.resources.items():
            self.used[pool] += demand
        self.exclusive = exclusive

    def release(self, step: Step, *, seconds: float) -> None:
        self.running -= 1
        self.per_step[step.id] -= 1
        for pool, demand in step.resources.items():
            self.used[pool] -= demand
            self.busy[pool] += demand * seconds
        if step.allow_parallel is False:
            self.exclusive = False

    def utilization(self, wall: float) -> dict[str, float]:
        """Per pool: the share of its capacity held over the run's wall time."""
        return {pool: round(busy / (self.capacity[pool] * wall), 4) for pool, busy in self.busy.items()}
