"""`report compare BASE.json [HEAD.json]`: what changed between two recorded runs, as markdown
or as JSON (run.json's `comparison`).

Both records are untrusted (artifacts of other jobs): they are read by the run record's reader,
no file they name is opened, and what they hold is printed as text no runner reads as a
workflow command.
"""

from __future__ import annotations

import json
from pathlib import Path

from ci_orchestrator.errors import UsageError
from ci_orchestrator.options import REPORTS_DIR
from ci_orchestrator.output.workflow_commands import printable

FORMATS = ("markdown", "json")


def compare_text(base: Path, head: Path | None, *, fmt: str = "markdown") -> str:
    from ci_orchestrator.reporters.changes import changes_markdown
    from ci_orchestrator.reporters.comparison import compare, comparison_record, same_playbook
    from ci_orchestrator.reporters.run_record import read_run_record

    if fmt not in FORMATS:
        raise UsageError(f"--format {fmt!r}: expected one of {', '.join(FORMATS)}")
    baseline = read_run_record(base)
    current = read_run_record(Path.cwd() / REPORTS_DIR / "run.json" if head is None else head)
    same_playbook(baseline, current.playbook)
    comparison = compare(baseline, current)
    if fmt == "json":
        text = json.dumps(comparison_record(comparison, current.secrets), indent=2, ensure_ascii=False)
        # `##[` can only stand in a string here: written `#\u0023[`, it reads back the same and
        # no runner takes it for a command (no line of indented JSON starts with `::`).
        return text.replace("##[", "#\\u0023[")
    return printable(changes_markdown(comparison, shown=None, heading="##"))
