"""The scheduler: the ready set, slots, pools, exclusive steps, priority (what a failure stops is
`failure_policy`'s, what a ready instance becomes `readiness`', the run's figures `totals`').

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
from functools import cached_property
from typing import TYPE_CHECKING

from ci_orchestrator import notices
from ci_orchestrator.output.paths import shown_path
from ci_orchestrator.plan import graph
from ci_orchestrator.results import Status, StepResult
from ci_orchestrator.run import job_steps
from ci_orchestrator.run.capacity import Slots
from ci_orchestrator.run.events import Exited, Signalled, WorkDone
from ci_orchestrator.run.failure_policy import FailurePolicy
from ci_orchestrator.run.fresh_thread import on_fresh_thread
from ci_orchestrator.run.handover import Handover
from ci_orchestrator.run.job_steps import SKIPPED_EXIT
from ci_orchestrator.run.junit_files import with_tests
from ci_orchestrator.run.outcomes import exit_status, step_result
from ci_orchestrator.run.process_specs import log_path, process_spec
from ci_orchestrator.run.readiness import NotRun, resolved
from ci_orchestrator.run.step_files import FilesRead, StepFolders
from ci_orchestrator.run.storing import Storer
from ci_orchestrator.run.supervisor import Supervisor
from ci_orchestrator.run.totals import run_result, utcnow

if TYPE_CHECKING:
    from collections.abc import Callable
    from datetime import datetime
    from pathlib import Path

    from ci_orchestrator.cache.step_cache import CacheKey, StepCache
    from ci_orchestrator.plan.ordering import Plan
    from ci_orchestrator.playbook.model import Instance
    from ci_orchestrator.results import RunObserver, RunResult
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
        self.policy = FailurePolicy(plan, fail_fast=limits.fail_fast)
        self.handover = Handover(plan, masks=context.secrets)
        self.instances = dict(plan.by_id)  # each as the run resolved it once it became ready
        self.folders = StepFolders()  # the processes' own GITHUB_OUTPUT, GITHUB_ENV, ... files
        self.files: dict[str, dict[str, str]] = {}  # id -> the files of its running process
        self.keys: dict[str, CacheKey | None] = {}  # every instance's key made so far (cache.key_in_plan)
        self.cacheable: dict[str, CacheKey] = {}  # the keys of the cacheable instances that ran
        self.ready: list[tuple[int, float, int, str]] = []
        self.running: dict[str, tuple[datetime, int, Path]] = {}  # id -> (started, attempt, log)
        self.storing: dict[str, StepResult] = {}  # passed, their results being stored (`storer`)
        self.storer: Storer | None = None  # made by `drive`: only processes' results are stored
        self.attempts: dict[str, int] = {}
        self.announced: dict[str, tuple[str, ...]] = {}  # with `::add-mask::`, over all attempts
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
                        self.stop_siblings(supervisor)
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
        found = resolved(
            instance,
            plan=self.plan,
            results=self.results,
            handover=self.handover,
            policy=self.policy,
            workspace=self.context.workspace,
        )
        if isinstance(found, NotRun):
            self.finish(step_result(instance, found.status, reason=found.reason, log_dir=self.log_dir_shown))
            return
        instance = self.instances[node] = found
        if instance is not self.plan.by_id[node]:  # its env may hold what was handed on
            self.handover.hide(instance.env)
        if self.try_cache(instance):
            return
        exclusive = instance.step.allow_parallel is False
        if exclusive or self.limits.sequential:  # sequential: one at a time, in plan order
            rank = (0, 0.0, self.position[node])
        else:
            rank = (1, -self.priority[node], self.position[node])
        heapq.heappush(self.ready, (*rank, node))

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
            self.handover.announce(entry.masks)
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
                files=entry.step_files,
            )
        )
        return True

    # --- starting --------------------------------------------------------------------
    def fill(self, supervisor: Supervisor) -> None:
        skipped: list[tuple[int, float, int, str]] = []
        while self.ready and not self.slots.full:
            entry = heapq.heappop(self.ready)
            instance = self.instances[entry[3]]
            if self.policy.stopping is not None and not self.policy.runs_anyway(instance):
                self.finish(self.skipped(instance, self.policy.stopping))
                continue
            if (stopped := self.policy.stopped_steps.get(instance.step.id)) is not None:
                self.finish(self.skipped(instance, stopped))
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

    def start(self, instance: Instance, supervisor: Supervisor, *, exclusive: bool) -> None:
        attempt = self.attempts[instance.id] = self.attempts.get(instance.id, 0) + 1
        alone = exclusive or self.slots.concurrency == 1 or instance.id in self.ordered_alone
        # The CPUs are shared by the steps running now and those ready to start beside it in
        # the same moment (started one by one, the first would otherwise take every CPU).
        sharing = 1 if alone else min(self.slots.concurrency, self.slots.running + 1 + len(self.ready))
        self.slots.take(instance.step, exclusive=exclusive)
        log = log_path(self.context, instance.id, attempt)
        problem: str | None = None
        try:
            files = self.files[instance.id] = self.folders.make(log.stem)
        except OSError as error:  # the run's temporary folder cannot be written: nothing can start
            files = self.files[instance.id] = {}
            problem = f"cannot make the step's GITHUB_OUTPUT and other files: {error.strerror or error}"
        spec = process_spec(
            instance,
            self.context,
            attempt=attempt,
            timeout=self.timeout_of(instance),
            parallel=not alone,
            jobs=self.limits.cpus // sharing,
            base_env=self.base_env,
            files=files,
        )
        if problem is not None or self.handover.masks != self.context.secrets:
            spec = dataclasses.replace(spec, error=problem or spec.error, masks=self.handover.masks)
        self.running[instance.id] = (utcnow(), attempt, spec.log_path)
        self.untold.append((instance.id, attempt))
        supervisor.start(spec)

    def stop_siblings(self, supervisor: Supervisor) -> None:
        """Cancels the running instances of a matrix that a failed instance stopped."""
        for node in [
            node for node in self.running if self.instances[node].step.id in self.policy.stopped_steps
        ]:
            supervisor.cancel(node)

    def timeout_of(self, instance: Instance) -> float | None:
        if instance.timeout is not None:
            return instance.timeout
        if self.limits.default_timeout is not None:
            return self.limits.default_timeout
        return self.plan.playbook.timeout

    # --- finishing -------------------------------------------------------------------
    def exited(self, event: Exited) -> None:
        instance = self.instances[event.key]
        step = instance.step
        started, attempt, log = self.running.pop(event.key)
        if event.masks:  # this attempt's, beside those of the attempts before
            self.announced[event.key] = (*self.announced.get(event.key, ()), *event.masks)
            self.handover.announce(event.masks)
        self.slots.release(step, seconds=(event.finished - event.started).total_seconds())
        status, reason = exit_status(event, self.timeout_of(instance))
        if step.steps and event.exit_code == SKIPPED_EXIT:  # a job for another system's runner
            said = job_steps.skipped(log.with_suffix(".steps.json"))
            status, reason = (Status.SKIPPED, said) if said is not None else (status, reason)
        if status is Status.CANCELLED and self.policy.interrupted_by is None:  # by its matrix's fail-fast
            reason = f"cancelled: {self.policy.stopped_steps.get(step.id, 'run stopping')}"
        paths = self.files.pop(event.key, {})
        read = self.folders.read(paths) if paths and event.error is None else FilesRead()
        for note in read.notes:
            notices.warn(f"{instance.id}: {note}")
        if read.error is not None and status is Status.PASSED:  # as on GitHub, the step fails
            status, reason = Status.FAILED, read.error
        retried = status in (Status.FAILED, Status.TIMED_OUT) and attempt <= step.retry
        if retried and self.policy.stopping is None:
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
            files=read.files,
        )
        if status is Status.PASSED and self.storer is not None and (key := self.cacheable.get(instance.id)):
            assert self.cache is not None
            pending = self.cache.prepare_store(key, instance, log_path=log, duration=result.duration)
            if pending is not None:
                # Kept with it: a hit announces its masks again (its log holds them masked).
                pending = dataclasses.replace(pending, step_files=read.files, masks=result.announced)
                self.storing[instance.id] = result
                self.storer.submit(instance.id, pending)
                return
        self.finish(result)

    def stored(self, node: str) -> None:
        """A passed instance's result is stored (or not, when the run was interrupted): it ends."""
        assert self.cache is not None and self.storer is not None
        if node in self.storing:  # else ended already, by a second interrupt
            self.cache.finish_store(self.storer.outcome(node))
            self.finish(self.storing.pop(node))

    def finish(self, result: StepResult) -> None:
        instance = self.instances[result.id]
        result = with_tests(result, instance, workspace=self.context.workspace, variables=self.plan.variables)
        self.results[result.id] = result
        self.untold.append(result)
        self.policy.ended(result)
        self.handover.ended(result)
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
        if self.policy.interrupted_by is not None:
            supervisor.kill_all_now()
            if self.storer is not None:  # nor wait for a store stuck on a lock: the process ends now
                self.storer.abandon()
                for node in list(self.storing):
                    self.finish(self.storing.pop(node))
            return
        self.policy.interrupt(event.signum)
        supervisor.cancel_all()
        if self.storer is not None:
            self.storer.cancel()  # stopped between two chunks: the run ends now, nothing half-stored

    def result(self) -> RunResult:
        return run_result(
            self.plan,
            self.results,
            context=self.context,
            slots=self.slots,
            started=self.started,
            interrupted_by=self.policy.interrupted_by,
            secrets=self.handover.masks,
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
                run.results[node] = run.skipped(plan.by_id[node], run.policy.stopping or "not run")
        supervisor.reap_leftovers(context.run_id)
    run.folders.close()
    if cache is not None:
        cache.record(run.hits, run.misses)
    result = run.result()
    observer.run_finished(result)
    return result


def _output_forwarder(observer: RunObserver) -> Callable[[str, bytes], None]:
    def forward(key: str, chunk: bytes) -> None:
        observer.step_output(instance_id=key, chunk=chunk)

    return forward
