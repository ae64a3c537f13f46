"""The pull-request comment of a run: a hidden marker that finds it again, the result, what
changed since the baseline, and each failure with the command that reproduces it (and the end
of its log), in at most GitHub's 65,536 characters.

Text from the run (ids, messages, log lines) is written as code, never as free markdown: no
mention, issue reference or link can be made of it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ci_orchestrator.reporters.changes import changes_markdown, short_commit
from ci_orchestrator.reporters.logs import clean
from ci_orchestrator.reporters.markdown import ICONS, RUN_ICONS
from ci_orchestrator.reporters.markdown_text import code as _code
from ci_orchestrator.reporters.markdown_text import fenced as _fenced
from ci_orchestrator.reporters.markdown_text import last_bytes as _last_bytes
from ci_orchestrator.reporters.reproduce import repro_command
from ci_orchestrator.reporters.writing import failure_message, format_seconds

if TYPE_CHECKING:
    from ci_orchestrator.results import RunResult, StepResult

MAX_CHARACTERS = 65_536  # GitHub refuses a longer comment body
TAIL_CHARACTERS = 2_000  # of each failure's log tail, at most (in bytes of UTF-8)
_ROOM = 200  # kept for the note on what was left out


def marker(playbook: str) -> str:
    """The hidden line that marks a playbook's comment: `<!-- ci-orchestrator: NAME -->` (a
    `--` in the name would end the HTML comment early, so it is written `- -`)."""
    name = " ".join(playbook.split()).replace("--", "- -")
    return f"<!-- ci-orchestrator: {name} -->"


def comment_body(result: RunResult, *, run_url: str | None = None, limit: int = MAX_CHARACTERS) -> str:
    """The comment's markdown, at most `limit` characters: log tails are shortened, then left
    out, then failures, until it fits; a note says what was left out."""
    failures = [step for step in result.steps if step.status.is_failure]
    for tail, shown in ((TAIL_CHARACTERS, None), (500, None), (0, None), (0, 20), (0, 5), (0, 0)):
        text = _body(result, failures, run_url, tail=tail, shown=shown)
        if len(text) <= limit:
            return text
    return text[: limit - _ROOM] + "\n\n✂️ Cut to stay under GitHub's 65,536 characters.\n"


def _body(
    result: RunResult, failures: list[StepResult], run_url: str | None, *, tail: int, shown: int | None
) -> str:
    counts = result.counts()
    tally = " · ".join(f"{ICONS[status]} {count} {status.value}" for status, count in counts.items() if count)
    about = f"Run {_code(result.run_id)}"
    if result.commit:
        about += f" of commit {_code(short_commit(result.commit))}"
    if run_url:
        about += f" · [workflow run]({run_url})"
    parts = [
        marker(result.playbook),
        f"## {RUN_ICONS[result.status]} {_code(result.playbook)}: {result.status.value}",
        f"{len(result.steps)} instances: {tally} · wall time {format_seconds(result.wall_time)}"
        if tally
        else "No instances ran.",
    ]
    if result.comparison is not None:
        parts.append(changes_markdown(result.comparison))
    detailed = failures if shown is None else failures[:shown]
    if detailed:
        parts.append("### Failures")
        parts.extend(_failure(result, step, tail) for step in detailed)
    left_out = []
    if tail < TAIL_CHARACTERS and any(step.log_tail for step in failures):
        left_out.append("log tails shortened" if tail else "log tails left out")
    if len(detailed) < len(failures):
        left_out.append(f"{len(failures) - len(detailed)} of {len(failures)} failures not detailed")
    if left_out:
        parts.append(
            f"✂️ To stay under GitHub's comment limit: {'; '.join(left_out)}. The job summary has them."
        )
    parts.append(f"<sub>{about}</sub>")
    return clean("\n\n".join(parts) + "\n", result.secrets)


def _failure(result: RunResult, step: StepResult, tail: int) -> str:
    lines = [
        f"#### {ICONS[step.status]} {_code(step.id)}: {_code(failure_message(step))}",
        "",
        "Reproduce locally:",
        "",
        _fenced(repro_command(result, step), "sh"),
    ]
    text = _last_bytes(step.log_tail or "", tail).rstrip("\n") if tail else ""
    if text:
        lines += ["", "<details><summary>Log tail</summary>", "", _fenced(text, "text"), "", "</details>"]
    return "\n".join(lines)
