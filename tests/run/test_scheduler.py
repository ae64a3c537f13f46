"""The scheduler with real processes: order, slots, pools, exclusive steps, failure policy."""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING, Any

import psutil
import pytest

from ci_orchestrator.plan.ordering import build_plan
from ci_orchestrator.playbook.model import Execution, Group
from ci_orchestrator.results import Observers, RunStatus, Status
from ci_orchestrator.run.process_specs import RunContext
from ci_orchestrator.run.scheduler import Limits, execute
from tests.helpers import instances, playbook, step

if TYPE_CHECKING:
    from pathlib import Path

    from ci_orchestrator.results import RunResult, StepResult


class Recorder:
    """Keeps the events, in order."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []

    def run_started(self, *, run_id: str, playbook: str, total: int) -> None:
        self.events.append(("run", playbook))

    def step_started(self, *, instance_id: str, attempt: int) -> None:
        self.events.append(("start", instance_id))

    def step_output(self, *, instance_id: str, chunk: bytes) -> None:
        pass

    def waiting(self) -> None:
        self.events.append(("waiting", ""))

    def step_finished(self, result: StepResult) -> None:
        self.events.append(("finish", result.id))

    def run_finished(self, result: RunResult) -> None:
        self.events.append(("done", result.status.value))


def run(book: Any, workdir: Path, **limits: Any) -> RunResult:
    plan = build_plan(book, instances(book))
    limits.setdefault("concurrency", 4)
    limits.setdefault("grace", 0.5)
    context = RunContext(run_id=workdir.parent.name, workspace=workdir, log_dir=workdir / "logs")
    return execute(plan, limits=Limits(**limits), context=context, cache=None, observer=Observers(Recorder()))


def by_id(result: RunResult) -> dict[str, StepResult]:
    return {step.id: step for step in result.steps}


def overlapping(a: StepResult, b: StepResult) -> bool:
    assert a.started and a.finished and b.started and b.finished
    return a.started < b.finished and b.started < a.finished


def sleeper(step_id: str, seconds: float = 0.3, **fields: Any) -> Any:
    return step(step_id, run=f"sleep {seconds}", **fields)


def test_serial_steps_run_one_after_another(workdir: Path) -> None:
    result = run(playbook(sleeper("a", 0.1), sleeper("b", 0.1), sleeper("c", 0.1)), workdir)
    steps = by_id(result)
    assert result.status is RunStatus.PASSED
    assert steps["a"].finished <= steps["b"].started  # type: ignore[operator]
    assert steps["b"].finished <= steps["c"].started  # type: ignore[operator]
    assert result.stats.max_concurrency_seen == 1


def test_parallel_steps_overlap_and_concurrency_bounds_them(workdir: Path) -> None:
    book = playbook(*(sleeper(f"s{i}", 0.4) for i in range(4)), execution=Execution.PARALLEL)
    result = run(book, workdir, concurrency=2)
    steps = list(result.steps)
    assert result.stats.max_concurrency_seen == 2
    assert any(overlapping(a, b) for i, a in enumerate(steps) for b in steps[i + 1 :])


def test_pool_is_never_over_capacity(workdir: Path) -> None:
    book = playbook(
        *(sleeper(f"db{i}", 0.2, resources={"db": 1}) for i in range(3)),
        execution=Execution.PARALLEL,
        resources={"db": 1},
    )
    steps = list(run(book, workdir, concurrency=3).steps)
    assert not any(overlapping(a, b) for i, a in enumerate(steps) for b in steps[i + 1 :])


def test_exclusive_step_runs_alone(workdir: Path) -> None:
    book = playbook(
        sleeper("a", 0.3),
        sleeper("alone", 0.3, allow_parallel=False),
        sleeper("b", 0.3),
        sleeper("c", 0.3),
        execution=Execution.PARALLEL,
    )
    steps = by_id(run(book, workdir, concurrency=4))
    assert not any(overlapping(steps["alone"], steps[other]) for other in ("a", "b", "c"))
    assert steps["alone"].started == min(s.started for s in steps.values())  # type: ignore[type-var]


def test_max_parallel_limits_one_step(workdir: Path) -> None:
    from ci_orchestrator.playbook.model import Instance

    base = sleeper("t", 0.3, max_parallel=1)
    book = playbook(base, execution=Execution.PARALLEL)
    cells = [
        Instance(
            id=f"t ({n})",
            step=base,
            matrix={"n": n},
            name="t",
            run="sleep 0.3",
            env={},
            working_directory=".",
            timeout=None,
            continue_on_error=False,
        )
        for n in range(3)
    ]
    plan = build_plan(book, cells)
    context = RunContext(run_id=workdir.parent.name, workspace=workdir, log_dir=workdir / "logs")
    result = execute(plan, limits=Limits(concurrency=3), context=context, cache=None, observer=Recorder())
    assert result.stats.max_concurrency_seen == 1


def test_longest_remaining_path_goes_first(workdir: Path) -> None:
    book = playbook(
        step("short"),
        step("long1"),
        step("long2", needs=("long1",)),
        step("long3", needs=("long2",)),
        execution=Execution.PARALLEL,
    )
    recorder = Recorder()
    plan = build_plan(book, instances(book))
    context = RunContext(run_id=workdir.parent.name, workspace=workdir, log_dir=workdir / "logs")
    execute(plan, limits=Limits(concurrency=1), context=context, cache=None, observer=recorder)
    starts = [name for kind, name in recorder.events if kind == "start"]
    assert starts[0] == "long1"


def test_failure_skips_dependents_and_fail_fast_starts_nothing_new(workdir: Path) -> None:
    book = playbook(
        step("bad", run="exit 3"),
        sleeper("slow", 0.5),
        step("after", needs=("bad",)),
        step("later", needs=("slow",)),
        execution=Execution.PARALLEL,
    )
    steps = by_id(run(book, workdir, concurrency=2))
    assert steps["bad"].status is Status.FAILED and steps["bad"].exit_code == 3
    assert steps["slow"].status is Status.PASSED  # running steps finish
    assert steps["after"].status is Status.SKIPPED and "bad" in (steps["after"].reason or "")
    assert steps["later"].status is Status.SKIPPED and steps["later"].reason == "fail-fast"


def test_without_fail_fast_independent_steps_still_run(workdir: Path) -> None:
    book = playbook(step("bad", run="exit 1"), step("next"), step("dep", needs=("bad",)))
    steps = by_id(run(book, workdir, fail_fast=False))
    assert steps["next"].status is Status.PASSED
    assert steps["dep"].status is Status.SKIPPED


def test_the_critical_path_is_made_of_what_ran(workdir: Path) -> None:
    book = playbook(
        sleeper("slow", 1.0),
        step("quick", run="exit 1"),
        step("dep1", needs=("quick",)),
        step("dep2", needs=("dep1",)),
        execution=Execution.PARALLEL,
    )
    result = run(book, workdir, fail_fast=False)
    assert by_id(result)["dep2"].status is Status.SKIPPED
    assert result.stats.critical_path == ("slow",)

    book = playbook(sleeper("build", 0.2), step("test", run="exit 1"), step("deploy", needs=("test",)))
    result = run(book, workdir / "serial", fail_fast=False)
    assert result.stats.critical_path == ("build", "test")  # not the skipped deploy


def test_continue_on_error_fails_neither_run_nor_dependents(workdir: Path) -> None:
    book = playbook(step("flaky", run="exit 1", continue_on_error=True), step("dep", needs=("flaky",)))
    result = run(book, workdir)
    assert by_id(result)["flaky"].status is Status.FAILED
    assert by_id(result)["dep"].status is Status.PASSED
    assert result.status is RunStatus.PASSED


def test_retry_runs_again_until_it_passes(workdir: Path) -> None:
    counter = workdir / "count"
    script = f"echo x >> {counter}; [ $(wc -l < {counter}) -ge 3 ]"
    steps = by_id(run(playbook(step("retried", run=script, retry=2)), workdir))
    assert steps["retried"].status is Status.PASSED
    assert steps["retried"].attempts == 3


def test_stop_on_error_skips_the_rest_of_a_serial_group(workdir: Path) -> None:
    location = step("x").location
    book = playbook(
        step("one", block="deploy", run="exit 1"),
        step("two", block="deploy"),
        groups=(Group(name="deploy", location=location, stop_on_error=True, step_ids=("one", "two")),),
    )
    steps = by_id(run(book, workdir, fail_fast=False))
    assert steps["two"].status is Status.SKIPPED
    assert "stop-on-error" in (steps["two"].reason or "")


def test_conditions_always_and_failure_run_after_a_failure(workdir: Path) -> None:
    book = playbook(
        step("bad", run="exit 1"),
        step("on-failure", condition="${{ failure() }}"),
        step("cleanup", condition="always()"),
        step("normal"),
        step("never", condition="${{ false }}"),
    )
    steps = by_id(run(book, workdir))
    assert steps["on-failure"].status is Status.PASSED
    assert steps["cleanup"].status is Status.PASSED
    assert steps["normal"].status is Status.SKIPPED
    assert steps["never"].status is Status.SKIPPED
    assert steps["never"].reason == "condition is false"


def test_timeout_stops_the_whole_tree(workdir: Path) -> None:
    book = playbook(step("hang", run="trap '' TERM; sleep 300 & sleep 300 & wait", timeout=1.0))
    started = time.monotonic()
    result = run(book, workdir, grace=1.0)
    elapsed = time.monotonic() - started
    hang = by_id(result)["hang"]
    assert hang.status is Status.TIMED_OUT and hang.exit_code == 124
    assert elapsed < 8
    leftovers = [p for p in psutil.process_iter(["cmdline"]) if p.info["cmdline"] == ["sleep", "300"]]
    assert not [p for p in leftovers if p.environ().get("CI_ORCHESTRATOR_RUN_ID") == workdir.parent.name]


def test_every_instance_ends_in_one_final_status(workdir: Path) -> None:
    book = playbook(*(step(f"s{i}", run="exit 1" if i == 3 else "true") for i in range(10)))
    result = run(book, workdir)
    assert sorted(s.id for s in result.steps) == sorted(f"s{i}" for i in range(10))


def test_step_environment(workdir: Path) -> None:
    book = playbook(step("env", run="env | grep ^CI_ORCHESTRATOR > env.txt", env={"EXTRA": "1"}))
    run(book, workdir)
    seen = dict(line.split("=", 1) for line in (workdir / "env.txt").read_text().splitlines())
    assert seen["CI_ORCHESTRATOR"] == "true"
    assert seen["CI_ORCHESTRATOR_RUN_ID"] == workdir.parent.name
    assert seen["CI_ORCHESTRATOR_STEP_ID"] == "env"
    assert seen["CI_ORCHESTRATOR_NONINTERACTIVE"] == "true"
    assert int(seen["CI_ORCHESTRATOR_JOBS"]) >= 1


@pytest.mark.skipif(sys.platform != "linux", reason="signals to self")
def test_sigterm_cancels_running_steps(workdir: Path) -> None:
    import os
    import signal
    import threading

    book = playbook(sleeper("long", 30), sleeper("next", 1))
    threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGTERM)).start()
    result = run(book, workdir)
    steps = by_id(result)
    assert steps["long"].status is Status.CANCELLED
    assert steps["next"].status is Status.SKIPPED
    assert result.status is RunStatus.CANCELLED
    assert result.interrupted_by == signal.SIGTERM
