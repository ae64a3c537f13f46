"""Which run a run compares itself with (`run --baseline RUN.json|auto|none`), and the
comparison made once the run is over.

A record named is read (and checked to be of the same playbook) before anything runs, so that
a wrong path is a usage error with nothing done; `auto` is looked up in the run history, and a
history that cannot be read is a warning: the run goes on without a comparison.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ci_orchestrator import notices
from ci_orchestrator.errors import OrchestratorError

if TYPE_CHECKING:
    from collections.abc import Collection
    from datetime import datetime

    from ci_orchestrator.history.database import History
    from ci_orchestrator.history.revision import Revision
    from ci_orchestrator.results import Comparison, RunResult

AUTO = "auto"
NONE = "none"


@dataclass(frozen=True, slots=True, kw_only=True)
class BaselineChoice:
    """What `--baseline` asked for: a record read already, the history's choice, or nothing."""

    record: RunResult | None = None
    auto: bool = False


def choose(option: str | None, playbook: str) -> BaselineChoice:
    """`--baseline` read: `auto` (the default), `none`, or a run record of `playbook`."""
    value = AUTO if option is None else option
    if value == AUTO:
        return BaselineChoice(auto=True)
    if value == NONE:
        return BaselineChoice()
    from ci_orchestrator.reporters.comparison import same_playbook
    from ci_orchestrator.reporters.run_record import read_run_record

    record = read_run_record(Path(value))
    same_playbook(record, playbook)
    return BaselineChoice(record=record)


def from_history(
    choice: BaselineChoice, history: History | None, playbook: str, revision: Revision, *, before: datetime
) -> BaselineChoice:
    """The choice with `auto` looked up in `history` (a run about to start at `before`)."""
    if not choice.auto or history is None:
        return choice
    from ci_orchestrator.history.baselines import find_baseline

    try:
        record = find_baseline(history, playbook, revision, before=before)
    except (OrchestratorError, ValueError, TypeError) as error:
        notices.warn(f"no comparison: the run history could not be read ({error})")
        return BaselineChoice()
    return BaselineChoice(record=record)


def compared(choice: BaselineChoice, result: RunResult, *, planned: Collection[str]) -> Comparison | None:
    """The comparison of the finished `result` with the baseline chosen; None without one."""
    if choice.record is None:
        return None
    from ci_orchestrator.reporters.comparison import compare

    return compare(choice.record, result, planned=planned)
