"""Records a run in the local run database as it goes, as one more run observer."""

from __future__ import annotations

import contextlib
import dataclasses
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from ci_orchestrator import notices
from ci_orchestrator.errors import OrchestratorError
from ci_orchestrator.history.test_rows import masked_tests
from ci_orchestrator.output.masking import mask

if TYPE_CHECKING:
    from collections.abc import Callable, Collection, Sequence
    from pathlib import Path

    from ci_orchestrator.history.database import History
    from ci_orchestrator.playbook.model import Playbook
    from ci_orchestrator.results import RunResult, StepResult


FLUSH_STEPS = 100
FLUSH_SECONDS = 1.0


class HistoryRecorder:
    """Records the run in the local run database as it goes; a database that cannot be opened
    or written (damaged, full disk) is one warning, and the run goes on without it.

    `label` gives the run's result what the scheduler does not know of it (branch, commit, and
    the select, shard and matrix filters that chose its part of the playbook). What the records
    hold is masked with `secrets`: the history travels to other machines (GitHub's cache), as
    the reports do.
    """

    def __init__(
        self,
        history: History | None,
        playbook: Playbook,
        *,
        label: Callable[[RunResult], RunResult] | None = None,
        secrets: Sequence[str] = (),
    ) -> None:
        self.history = history
        self.playbook = playbook
        self.label = label
        self.secrets = tuple(secrets)
        self.run_id = ""
        # Steps are written in batches: one transaction per step costs more than a `true` step.
        # A run killed outright loses at most the last second of step records.
        self.pending: list[StepResult] = []
        self.flushed_at = time.monotonic()
        # What was written, so that the end of the run writes only the steps that were not.
        self.written: dict[str, StepResult] = {}

    @classmethod
    def open(
        cls,
        path: Path,
        playbook: Playbook,
        *,
        label: Callable[[RunResult], RunResult] | None = None,
        secrets: Sequence[str] = (),
    ) -> HistoryRecorder:
        from ci_orchestrator.history.database import History

        try:
            history: History | None = History.open(path)
        except OrchestratorError as error:
            notices.warn(f"run history unavailable: {error}")
            history = None
        return cls(history, playbook, label=label, secrets=secrets)

    def _write(self, action: Callable[[History], object]) -> None:
        if self.history is None:
            return
        try:
            action(self.history)
        except OrchestratorError as error:
            notices.warn(f"run history not written from here on: {error}")
            with contextlib.suppress(OrchestratorError):
                self.history.close()
            self.history = None

    def durations(self, instances: Collection[str]) -> dict[str, float]:
        """Recent durations of these instances (see `History.durations`)."""
        if self.history is None:
            return {}
        try:
            return self.history.durations(self.playbook.name, instances=instances)
        except OrchestratorError:
            return {}

    def interrupted_runs(self) -> set[str]:
        """The ids of recent runs killed before they could clean up (SIGKILL, a lost machine):
        processes that still carry one of them were left behind."""
        if self.history is None:
            return set()
        try:
            return self.history.interrupted_runs(limit=20)
        except OrchestratorError:
            return set()

    def run_started(self, *, run_id: str, playbook: str, total: int) -> None:
        self.run_id = run_id
        self._write(
            lambda history: history.start_run(
                run_id=run_id,
                playbook=playbook,
                playbook_path=self.playbook.path,
                started=datetime.now(UTC),
                total=total,
            )
        )

    def step_started(self, *, instance_id: str, attempt: int) -> None:
        pass

    def waiting(self) -> None:
        pass  # rows are written in batches of their own (see step_finished)

    def step_output(self, *, instance_id: str, chunk: bytes) -> None:
        pass

    def step_finished(self, result: StepResult) -> None:
        self.pending.append(result)
        if len(self.pending) >= FLUSH_STEPS or time.monotonic() - self.flushed_at >= FLUSH_SECONDS:
            self.flush()

    def flush(self) -> None:
        pending, self.pending = self.pending, []
        self.flushed_at = time.monotonic()
        if pending:
            masked = [self._masked(result) for result in pending]
            self._write(lambda history: history.record_steps(self.run_id, masked))
            self.written.update((result.id, result) for result in pending)

    def run_finished(self, result: RunResult) -> None:
        self.flush()
        unwritten = [self._masked(step) for step in result.steps if not self._written(step)]
        labelled = self.label(result) if self.label else result
        if self.secrets:
            labelled = dataclasses.replace(
                labelled,
                select=None if labelled.select is None else mask(labelled.select, self.secrets),
                matrix_filters={
                    key: tuple(mask(value, self.secrets) for value in values)
                    for key, values in labelled.matrix_filters.items()
                },
            )
        self._write(lambda history: history.finish_run(labelled, steps=unwritten))

    def _masked(self, step: StepResult) -> StepResult:
        if not self.secrets:
            return step
        secrets = self.secrets
        return dataclasses.replace(
            step,
            id=mask(step.id, secrets),
            reason=None if step.reason is None else mask(step.reason, secrets),
            log=None if step.log is None else mask(step.log, secrets),
            tests=masked_tests(step.tests, secrets),
            matrix={
                key: mask(value, secrets) if isinstance(value, str) else value
                for key, value in step.matrix.items()
            },
        )

    def _written(self, step: StepResult) -> bool:
        earlier = self.written.get(step.id)
        return earlier is step or earlier == step

    def close(self) -> None:
        self.flush()
        if self.history:
            with contextlib.suppress(OrchestratorError):
                self.history.close()
