"""`history`: the runs of the local run database and the steps of one; and the history carried
between machines (`import`, `export`)."""

from __future__ import annotations

from pathlib import Path

from ci_orchestrator.commands.tables import table
from ci_orchestrator.errors import UsageError
from ci_orchestrator.options import STATE_DIR
from ci_orchestrator.output.workflow_commands import printable


def _history_path() -> Path:
    return Path.cwd() / STATE_DIR / "history.db"


def history_list(limit: int) -> str:
    from ci_orchestrator.history.database import History

    if limit < 1:
        raise UsageError(f"--limit must be at least 1, got {limit}")
    if not _history_path().is_file():  # a question does not make the database
        return "no runs recorded yet"
    with History.open(_history_path()) as history:
        runs = history.runs(limit)
    if not runs:
        return "no runs recorded yet"
    rows = [["RUN", "PLAYBOOK", "STATUS", "STARTED", "DURATION", "STEPS"]]
    for run in runs:
        counts = ", ".join(f"{count} {status.value}" for status, count in run.counts.items() if count)
        rows.append(
            [
                run.run_id,
                run.playbook,
                run.status.value,
                run.started.strftime("%Y-%m-%d %H:%M:%S"),
                f"{run.duration:.1f}s" if run.duration is not None else "-",
                counts or f"{run.total} planned",
            ]
        )
    return "\n".join(table(rows))


def history_show(run_id: str) -> str:
    from ci_orchestrator.history.database import History

    detail = None
    if _history_path().is_file():
        with History.open(_history_path()) as history:
            detail = history.run(run_id)
    if detail is None:
        raise UsageError(f"no run {run_id!r} in the history (`ci-orchestrator history` lists the runs)")
    rows = [["STEP", "STATUS", "EXIT", "ATTEMPTS", "DURATION", "REASON"]]
    for step in detail.steps:
        rows.append(
            [
                step.id,
                step.status.value,
                "-" if step.exit_code is None else str(step.exit_code),
                str(step.attempts),
                f"{step.duration:.2f}s",
                step.reason or "",
            ]
        )
    run = detail.summary
    head = f"run {run.run_id}  {run.playbook}  {run.status.value}"
    return "\n".join([head, *table(rows)])


def history_command(verb: str, argument: str, limit: int | None) -> str:
    """`history show RUN_ID`, `history import FILE`, `history export FILE`."""
    if verb == "show":
        return history_show(argument)
    from ci_orchestrator.history import transfer
    from ci_orchestrator.history.database import History

    if limit is not None and limit < 1:
        raise UsageError(f"--limit must be at least 1, got {limit}")
    path = Path(argument)
    if verb == "import":
        with History.open(_history_path()) as history:
            added, passed_over = transfer.import_runs(history, path)
        skipped = (
            f" ({passed_over} passed over: here already, unfinished or unreadable)" if passed_over else ""
        )
        return printable(f"imported {added} run{'' if added == 1 else 's'} from {path}{skipped}")
    if not _history_path().is_file():
        return "no run history here: nothing exported"
    with History.open(_history_path()) as history:
        count = transfer.export_runs(history, path, keep=limit or transfer.EXPORT_RUNS)
    return printable(
        f"exported {count} run{'' if count == 1 else 's'} to {path} ({path.stat().st_size:,} bytes)"
    )


def history_words(words: list[str], limit: int | None) -> str:
    """`history` with its words: the list of runs, or `show RUN_ID`, `import FILE`, `export FILE`."""
    if not words:
        return history_list(20 if limit is None else limit)
    if len(words) == 2 and words[0] in ("show", "import", "export"):
        return history_command(words[0], words[1], limit)
    raise UsageError("history [show RUN_ID | import FILE | export FILE]")
