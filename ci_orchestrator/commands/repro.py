"""`repro RUN.json [INSTANCE|STEP]`: rerun here the failed instances of a recorded run (or the
one named, or a step's failed ones), with its playbook, matrix values and variables.

The instances rerun always run: a result the cache holds for one of them is not taken. What
they need comes from the cache as in any run (a setup step is not rebuilt over itself), unless
`--no-cache`. The record read is never written: the rerun's reports go to a folder of their
own, `.ci-orchestrator/reports/repro/RUN_ID/` (RUN_ID: the record's), unless the options name
other files, none of which may be the record.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ci_orchestrator.errors import UsageError, did_you_mean
from ci_orchestrator.options import REPORTS_DIR, Selection, not_unicode
from ci_orchestrator.pipeline import regular_file, run

if TYPE_CHECKING:
    from ci_orchestrator.options import RunOptions
    from ci_orchestrator.results import RunResult

REPRO_DIR = REPORTS_DIR / "repro"
_FOLDER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")  # a run id as the tool makes them
_LISTED = 5  # failed instances named in a message, at most


@dataclass(frozen=True, slots=True, kw_only=True)
class Reproduced:
    """How a repro ended, and where its reports are."""

    code: int
    reports: tuple[Path, Path, Path]  # JUnit, summary, run record

    @property
    def where(self) -> str:
        """`reports: FOLDER/ (junit.xml, summary.md, run.json)`, or the three files."""
        folders = {path.parent for path in self.reports}
        if len(folders) == 1:
            names = ", ".join(path.name for path in self.reports)
            return f"reports of this repro: {folders.pop()}/ ({names})"
        return "reports of this repro: " + ", ".join(str(path) for path in self.reports)


def repro(record: Path, asked: str | None, options: RunOptions) -> Reproduced:
    """Rerun the failed instances of `record` (or `asked`: an instance, or a step's failed ones)."""
    from ci_orchestrator.reporters.run_record import read_run_record

    recorded = read_run_record(regular_file(record))
    # A record is untrusted input: JSON escapes can spell text that no report or script can hold.
    texts = [recorded.playbook_path or "", *(step.id for step in recorded.steps)]
    texts += [text for key, value in recorded.vars.items() for text in (key, value)]
    texts += [text for key, values in recorded.matrix_filters.items() for text in (key, *values)]
    shown = not_unicode(texts)
    if shown is not None:
        raise UsageError(f"{record}: '{shown}' is not valid Unicode text")
    wanted = _wanted(recorded, asked, record=record)
    options = _own_reports(options, recorded.run_id, record=record)
    selection = Selection(
        playbook=recorded.playbook_path,
        # Taken as they are written: an id may hold what a selector reads as syntax (`[`, `*`, `,`).
        instances=tuple(wanted),
        # The run's own --matrix values: one that replaced an axis's values made these instances.
        matrix=tuple(f"{key}={','.join(values)}" for key, values in recorded.matrix_filters.items()),
        variables=tuple(f"{key}={value}" for key, value in recorded.vars.items()),
    )
    # Every failure named is to be seen again: one failing first must not skip the others.
    fail_fast = False if options.fail_fast is None else options.fail_fast
    code = run(selection, dataclasses.replace(options, fresh=tuple(wanted), fail_fast=fail_fast))
    return Reproduced(code=code, reports=_paths(options))


def _wanted(recorded: RunResult, asked: str | None, *, record: Path) -> list[str]:
    """The instance ids to rerun: the failed ones, the one asked for, or a step's failed ones."""
    failed = [step.id for step in recorded.steps if step.status.is_failure]
    if asked is None:
        if not failed:
            raise UsageError(f"{record}: nothing failed in run {recorded.run_id}")
        return failed
    if asked in {step.id for step in recorded.steps}:
        return [asked]
    of_step = [step.id for step in recorded.steps if step.step == asked]
    if not of_step:
        names = [name for step in recorded.steps for name in (step.id, step.step)]
        hint = did_you_mean(asked, dict.fromkeys(names)) or _failed_hint(failed)
        raise UsageError(f"{record}: no instance or step {asked!r} in this run{hint}")
    wanted = [id_ for id_ in of_step if id_ in failed]
    if not wanted:
        raise UsageError(
            f"{record}: no instance of step {asked!r} failed in run {recorded.run_id}{_failed_hint(failed)}"
        )
    return wanted


def _failed_hint(failed: list[str]) -> str:
    """`; failed: a, b and 3 more`, or nothing when nothing failed."""
    if not failed:
        return ""
    more = f" and {len(failed) - _LISTED} more" if len(failed) > _LISTED else ""
    return f"; failed: {', '.join(repr(id_) for id_ in failed[:_LISTED])}{more}"


def _own_reports(options: RunOptions, run_id: str, *, record: Path) -> RunOptions:
    """`options` with the reports the options do not name in the repro's own folder; a report
    file that is the record read is refused before anything runs."""
    # A run id read back is untrusted: only one the tool could have made names a folder.
    folder = REPRO_DIR / (
        run_id if _FOLDER_NAME.fullmatch(run_id) else hashlib.sha256(run_id.encode()).hexdigest()[:16]
    )
    options = dataclasses.replace(
        options,
        junit=options.junit or str(folder / "junit.xml"),
        summary=options.summary or str(folder / "summary.md"),
        json=options.json or str(folder / "run.json"),
    )
    for option, path in zip(("--junit", "--summary", "--json"), _paths(options), strict=True):
        if path.exists() and path.samefile(record):
            raise UsageError(f"{option} {path}: the record repro reads, which it never overwrites")
    return options


def _paths(options: RunOptions) -> tuple[Path, Path, Path]:
    assert options.junit and options.summary and options.json  # set by `_own_reports`
    return Path(options.junit), Path(options.summary), Path(options.json)
