"""The scheduler: the ready set, slots, pools, exclusive steps, priority, failure policy.

Event-driven: instances start the moment what they wait for is done and there is room; the
loop sleeps only inside `Supervisor.wait()`, which wakes on a process exit, a deadline, a
signal or the end of a result's storing (done on a thread of its own: `storing`). Among ready
instances, exclusive ones go first in plan order, then the one with the longest remaining path.
A passed instance whose result is being stored ends when it is stored: what waits for it starts
on outputs the cache holds as they were.
"""

from __future__ import annotations

import contextlib
import dataclasses
import heapq
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from typing import TYPE_CHECKING

from ci_orchestrator.errors import ExpressionError
from ci_orchestrator.output.paths import shown_path
from ci_orchestrator.plan import conditions, graph
from ci_orchestrator.results import RunResult, RunStatus, Status, StepResult
from ci_orchestrator.run.capacity import Slots
from ci_orchestrator.run.events import Exited, Signalled, WorkDone
from ci_orchestrator.run.figures import run_stats
from ci_orchestrator.run.fresh_thread import on_fresh_thread
from ci_orchestrator.run.junit_files import with_tests
from ci_orchestrator.run.outcomes import exit_status, need_failed, step_result
from ci_orchestrator.run.process_specs import log_path, process_spec
from ci_orchestrator.run.storing import Storer
from ci_orchestrator.run.supervisor import Supervisor

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from ci_orchestrator.cache.step_cache import CacheKey, StepCache
    from ci_orchestrator.plan.ordering import Plan
    from ci_orchestrator.playbook.model import Instance
    from ci_orchestrator.results import RunObserver
    from ci_orchestrator.run.process_specs import RunContext


@dataclass(frozen=True, slots=True, kw_only=True)
class Limits:
    """What bounds a run: slots, order, time, failure policy."""

    concurrency: int
    cpus: int = 1
    sequential: bool = False
    fail_fast: bool = True
    default_timeout: float | None = None
    grace: float = 5.0
    stream_output: bool = False


def utcnow() -> datetime:
    return datetime.now(UTC)


class _Run:
    """The state of one run; `drive` runs it to its end."""

    def __init__(
        self,
        plan: Plan,
        limits: Limits,
        context: RunContext,
        cache: StepCache | None,
        observer: RunObserver,
    ) -> None:
        self.plan = plan
        self.limits = limits
        self.context = context
        self.cache = cache
        self.observer = observer
        self.slots = Slots(
            concurrency=1 if limits.sequential else limits.concurrency, pools=plan.playbook.resources
        )
        self.position = {node: index for index, node in enumerate(plan.order)}
        self.waiting = {node: len(befores) for node, befores in plan.waits_for.items()}
        self.successors: dict[str, list[str]] = {node: [] for node in plan.order}
        for node, befores in plan.waits_for.items():
            for before in befores:
                self.successors[before].append(node)
        self.results: dict[str, StepResult] = {}
        self.failed_upstream: dict[str, bool] = {}  # it, or anything before it, failed
        self.keys: dict[str, CacheKey | None] = {}  # every instance's key made so far (cache.key_in_plan)
        self.cacheable: dict[str, CacheKey] = {}  # the keys of the cacheable instances that ran
        self.ready: list[tuple[int, float, int, str]] = []
        self.running: dict[str, tuple[datetime, int, Path]] = {}  # id -> (started, attempt, log)
        self.storing: dict[str, StepResult] = {}  # passed, their results being stored (`storer`)
        self.storer: Storer | None = None  # made by `drive`: only processes' results are stored
        self.attempts: dict[str, int] = {}
        self.announced: dict[str, tuple[str, ...]] = {}  # with `::add-mask::`, over all attempts
        self.stopping: str | None = None  # why nothing new starts: "fail-fast", "interrupted"
        self.interrupted_by: int | None = None
        self.stopped_blocks: dict[str, str] = {}
        self.started = utcnow()
        # Resolved once: logs are named relative to the workspace in every result.
        self.log_dir_shown = shown_path(context.log_dir, context.workspace)
        self.base_env = dict(os.environ)
        self.hits = 0
        self.misses = 0
        # Starts and ends reach the observers once the loop has started what it can: the console
        # and the history do their part while the new processes already run.
        self.untold: list[StepResult | tuple[str, int]] = []

    # What only a run that starts processes needs: made when the first one is about to.
    @cached_property
    def priority(self) -> dict[str, float]:
        return self.plan.remaining(self.context.durations)

    @cached_property
    def ordered_alone(self) -> set[str]:
        return graph.ordered_against_all(self.plan.order, self.plan.waits_for)

    # --- the loop ------------------------------------------------------------------
    def begin(self, supervisor: Supervisor) -> bool:
        """Ends what needs no process among the instances ready at once (skipped, cached, and
        what becomes ready through them); True when there are processes to start."""
        # A signal that came before anything started (held since start-up): nothing starts.
        for event in supervisor.wait():
            if isinstance(event, Signalled):
                self.interrupt(event, supervisor)
        self.seed()
        return bool(self.ready)

    def drive(self, supervisor: Supervisor) -> None:
        """Starts what is ready and handles what happens until nothing runs, waits or is stored."""
        if self.cache is not None:
            self.storer = Storer(self.cache, supervisor)
        try:
            self.fill(supervisor)
            self.tell()
            while self.running or self.storing:
                for event in supervisor.wait():
                    if isinstance(event, Signalled):
                        self.interrupt(event, supervisor)
                    elif isinstance(event, WorkDone):
                        self.stored(event.key)
                    else:
                        self.exited(event)
                self.fill(supervisor)
                self.tell()
        finally:
            if self.storer is not None:
                if self.storing:  # the loop failed: what it would have waited for is not kept
                    self.storer.cancel()
                self.storer.close()
            if self.cache is not None:
                self.cache.release_thread()

    # --- readiness -------------------------------------------------------------------
    def seed(self) -> None:
        # Taken first: a cached root finishing here makes its successors ready by itself.
        for node in [node for node in self.plan.order if self.waiting[node] == 0]:
            self.became_ready(node)

    def became_ready(self, node: str) -> None:
        instance = self.plan.by_id[node]
        try:
            skip = self.skip_reason(instance)
        except ExpressionError as error:
            # As on GitHub: an `if:` that cannot be evaluated fails its step; the run goes on.
            reason = f"if: cannot be evaluated: {error.problems[0].message}"
            self.finish(step_result(instance, Status.FAILED, reason=reason, log_dir=self.log_dir_shown))
            return
        if skip is not None:
            self.finish(self.skipped(instance, skip))
            return
        if self.try_cache(instance):
            return
        exclusive = instance.step.allow_parallel is False
        if exclusive or self.limits.sequential:  # sequential: one at a time, in plan order
            rank = (0, 0.0, self.position[node])
        else:
            rank = (1, -self.priority[node], self.position[node])
        heapq.heappush(self.ready, (*rank, node))

    def skip_reason(self, instance: Instance) -> str | None:
        block = instance.step.block
        if block is not None and block in self.stopped_blocks:
            return self.stopped_blocks[block]
        failed_need = next(
            (
                need
                for need in sorted(self.plan.requires[instance.id], key=self.position.__getitem__)
                if not self.results[need]
            ),
            None,
        )
        if instance.condition is not None:
            upstream_failed = any(self.failed_upstream[before] for before in self.plan.waits_for[instance.id])
            if not conditions.holds(
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
            return need_failed(failed_need, self.results[failed_need].status)
        return self.stopping

    # --- cache -----------------------------------------------------------------------
    def try_cache(self, instance: Instance) -> bool:
        if self.cache is None:
            return False
        key = self.cache.key_in_plan(self.plan, self.keys, instance)
        if key is None:
            return False
        self.cacheable[instance.id] = key
        log = log_path(self.context, instance.id)
        entry = self.cache.take(key, log_path=log)
        if entry is None:
            self.misses += 1
            return False
        self.hits += 1
        if entry.masks:  # announced again: as if it ran
            self.announced[instance.id] = entry.masks
        now = utcnow()
        self.finish(
            step_result(
                instance,
                Status.CACHED,
                log_dir=self.log_dir_shown,
                started=now,
                finished=now,
                log=log,  # no exit code: nothing ran in this run (SPEC: null when it never ran)
                cached=True,
                announced=entry.masks,
            )
        )
        return True

    # --- starting --------------------------------------------------------------------
    def fill(self, supervisor: Supervisor) -> None:
        skipped: list[tuple[int, float, int, str]] = []
        while self.ready and not self.slots.full:
            entry = heapq.heappop(self.ready)
            instance = self.plan.by_id[entry[3]]
            if self.stopping is not None and not self.runs_anyway(instance):
                self.finish(self.skipped(instance, self.stopping))
                continue
            exclusive = instance.step.allow_parallel is False
            if exclusive and self.running:
                skipped.append(entry)
                break  # it runs alone: let what runs finish first
            if not self.slots.fits(instance.step):
                skipped.append(entry)
                continue
            self.start(instance, supervisor, exclusive=exclusive)
        for entry in skipped:
            heapq.heappush(self.ready, entry)

    def runs_anyway(self, instance: Instance) -> bool:
        return self.interrupted_by is None and conditions.asks_status(instance)

    def start(self, instance: Instance, supervisor: Supervisor, *, exclusive: bool) -> None:
        attempt = self.attempts[instance.id] = self.attempts.get(instance.id, 0) + 1
        alone = exclusive or self.slots.concurrency == 1 or instance.id in self.ordered_alone
        # The CPUs are shared by the steps running now and those ready to start beside it in
        # the same moment (started one by one, the first would otherwise take every CPU).
        sharing = 1 if alone else min(self.slots.concurrency, self.slots.running + 1 + len(self.ready))
        self.slots.take(instance.step, exclusive=exclusive)
        spec = process_spec(
            instance,
            self.context,
            attempt=attempt,
            timeout=self.timeout_of(instance),
            parallel=not alone,
            jobs=self.limits.cpus // sharing,
            base_env=self.base_env,
            # What steps announced before it started is masked in its log, as the secrets are.
            announced=tuple(dict.fromkeys(value for values in self.announced.values() for value in values)),
        )
        self.running[instance.id] = (utcnow(), attempt, spec.log_path)
        self.untold.append((instance.id, attempt))
        supervisor.start(spec)

    def timeout_of(self, instance: Instance) -> float | None:
        if instance.timeout is not None:
            return instance.timeout
        if self.limits.default_timeout is not None:
            return self.limits.default_timeout
        return self.plan.playbook.timeout

    # --- finishing -------------------------------------------------------------------
    def exited(self, event: Exited) -> None:
        instance = self.plan.by_id[event.key]
        step = instance.step
        started, attempt, log = self.running.pop(event.key)
        if event.masks:  # this attempt's, beside those of the attempts before
            self.announced[event.key] = (*self.announced.get(event.key, ()), *event.masks)
        self.slots.release(step, seconds=(event.finished - event.started).total_seconds())
        status, reason = exit_status(event, self.timeout_of(instance))
        if status in (Status.FAILED, Status.TIMED_OUT) and attempt <= step.retry and self.stopping is None:
            self.became_ready(instance.id)  # another attempt, straight away
            return
        result = step_result(
            instance,
            status,
            started=started,
            finished=event.finished,
            exit_code=event.exit_code,
            attempts=attempt,
            log=log,
            reason=reason,
            log_dir=self.log_dir_shown,
            announced=self.announced.get(instance.id, ()),
        )
        if status is Status.PASSED and self.storer is not None and (key := self.cacheable.get(instance.id)):
            assert self.cache is not None
            pending = self.cache.prepare_store(key, instance, log_path=log, duration=result.duration)
            if pending is not None:
                self.storing[instance.id] = result
                # Kept with it: a hit announces them again (its log holds them masked).
                self.storer.submit(instance.id, dataclasses.replace(pending, masks=result.announced))
                return
        self.finish(result)

    def stored(self, node: str) -> None:
        """A passed instance's result is stored (or not, when the run was interrupted): it ends."""
        assert self.cache is not None and self.storer is not None
        if node in self.storing:  # else ended already, by a second interrupt
            self.cache.finish_store(self.storer.outcome(node))
            self.finish(self.storing.pop(node))

    def finish(self, result: StepResult) -> None:
        instance = self.plan.by_id[result.id]
        result = with_tests(result, instance, workspace=self.context.workspace, variables=self.plan.variables)
        self.results[result.id] = result
        self.untold.append(result)
        failed = result.status.is_failure and not result.continue_on_error
        # As GitHub's `failure()`: true after any failure upstream, whatever ran in between.
        self.failed_upstream[result.id] = failed or any(
            self.failed_upstream[before] for before in self.plan.waits_for[result.id]
        )
        if failed:
            if self.limits.fail_fast and self.stopping is None:
                self.stopping = "fail-fast"
            block = instance.step.block
            group = next((g for g in self.plan.playbook.groups if g.name == block), None)
            if (
                block is not None
                and group is not None
                and group.stop_on_error
                and block not in self.stopped_blocks
            ):
                self.stopped_blocks[block] = f"stop-on-error: '{result.id}' failed in group '{block}'"
        for after in self.successors[result.id]:
            self.waiting[after] -= 1
            if self.waiting[after] == 0:
                self.became_ready(after)

    def skipped(self, instance: Instance, reason: str) -> StepResult:
        return step_result(instance, Status.SKIPPED, reason=reason, log_dir=self.log_dir_shown)

    def tell(self) -> None:
        """Passes the starts and ends seen since the last call to the observer, in order."""
        for event in self.untold:
            if isinstance(event, StepResult):
                self.observer.step_finished(event)
            else:
                self.observer.step_started(instance_id=event[0], attempt=event[1])
        if self.untold:
            self.observer.waiting()
        self.untold.clear()

    # --- interrupts ------------------------------------------------------------------
    def interrupt(self, event: Signalled, supervisor: Supervisor) -> None:
        if self.interrupted_by is not None:
            supervisor.kill_all_now()
            if self.storer is not None:  # nor wait for a store stuck on a lock: the process ends now
                self.storer.abandon()
                for node in list(self.storing):
                    self.finish(self.storing.pop(node))
            return
        self.interrupted_by = event.signum
        self.stopping = "interrupted"
        supervisor.cancel_all()
        if self.storer is not None:
            self.storer.cancel()  # stopped between two chunks: the run ends now, nothing half-stored

    def result(self) -> RunResult:
        finished = utcnow()
        steps = tuple(self.results[node] for node in self.plan.order if node in self.results)
        wall = (finished - self.started).total_seconds()
        stats = run_stats(self.plan, steps, slots=self.slots, wall=wall)
        return RunResult(
            run_id=self.context.run_id,
            playbook=self.plan.playbook.name,
            playbook_path=self.plan.playbook.path,
            status=RunStatus.of(steps, interrupted=self.interrupted_by is not None),
            started=self.started,
            finished=finished,
            steps=steps,
            stats=stats,
            vars=dict(self.plan.variables),
            interrupted_by=self.interrupted_by,
            secrets=self.context.secrets,
        )


def execute(
    plan: Plan,
    *,
    limits: Limits,
    context: RunContext,
    cache: StepCache | None,
    observer: RunObserver,
) -> RunResult:
    """Run every instance of the plan; every instance ends in exactly one final status."""
    run = _Run(plan, limits, context, cache, observer)
    # A log folder that cannot be made (a file in its place, a full disk) is not a crash: each
    # step then fails to start with "cannot write the log file ..." and the reports say so.
    with contextlib.suppress(OSError):
        context.log_dir.mkdir(parents=True, exist_ok=True)
    observer.run_started(run_id=context.run_id, playbook=plan.playbook.name, total=len(plan.instances))
    on_output = _output_forwarder(observer) if limits.stream_output else None
    with Supervisor(grace=limits.grace, on_output=on_output) as supervisor:
        if run.begin(supervisor):
            on_fresh_thread(lambda: run.drive(supervisor), name="ci-orchestrator-run")
        else:  # nothing to start (every step cached or skipped): no thread to place them from
            run.tell()
        for node in plan.order:  # whatever never became ready (an interrupted run)
            if node not in run.results:
                run.results[node] = run.skipped(plan.by_id[node], run.stopping or "not run")
        supervisor.reap_leftovers(context.run_id)
    if cache is not None:
        cache.record(run.hits, run.misses)
    result = run.result()
    observer.run_finished(result)
    return result


def _output_forwarder(observer: RunObserver) -> Callable[[str, bytes], None]:
    def forward(key: str, chunk: bytes) -> None:
        observer.step_output(instance_id=key, chunk=chunk)

    return forward
