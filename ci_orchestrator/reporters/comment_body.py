"""The pull-request comment of a run: a hidden marker that finds it again, the result, what
changed since the baseline, and each failure with the command that reproduces it, the tests that
failed in it (those that fail since the baseline first, each with its message and the first
lines of its text) and the end of its log, in at most GitHub's 65,536 characters.

Text from the run (ids, messages, log lines) is written as code, never as free markdown: no
mention, issue reference or link can be made of it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ci_orchestrator.reporters.changes import changes_markdown, short_commit
from ci_orchestrator.reporters.logs import clean
from ci_orchestrator.reporters.markdown import ICONS, RUN_ICONS
from ci_orchestrator.reporters.markdown_text import code as _code
from ci_orchestrator.reporters.markdown_text import fenced as _fenced
from ci_orchestrator.reporters.markdown_text import last_bytes as _last_bytes
from ci_orchestrator.reporters.reproduce import repro_command
from ci_orchestrator.reporters.test_summary import (
    SHOWN,
    TEXT_LINES,
    detailed,
    failed_count,
    failing_tests,
    new_test_failures,
    totals_line,
)
from ci_orchestrator.reporters.writing import failure_message, format_seconds
from ci_orchestrator.results import qualified_test_name

if TYPE_CHECKING:
    from ci_orchestrator.results import RunResult, StepResult

MAX_CHARACTERS = 65_536  # GitHub refuses a longer comment body
TAIL_CHARACTERS = 2_000  # of each failure's log tail, at most (in bytes of UTF-8)
_ROOM = 200  # kept for the note on what was left out


@dataclass(frozen=True, slots=True, kw_only=True)
class _Detail:
    """How much of each failure the comment shows; None shows all there is."""

    tail: int = TAIL_CHARACTERS  # bytes of each log tail
    test_lines: int = TEXT_LINES  # of each failing test's text
    tests: int = SHOWN  # failing tests named per instance
    failures: int | None = None  # instances detailed


# Ever shorter comments: log tails shortened, then the failing tests' texts, then log tails left
# out, then the tests named with their message only, then fewer tests and fewer instances.
_LEVELS = (
    _Detail(),
    _Detail(tail=500),
    _Detail(tail=500, test_lines=3),
    _Detail(tail=0, test_lines=3),
    _Detail(tail=0, test_lines=0),
    _Detail(tail=0, test_lines=0, tests=10),
    _Detail(tail=0, test_lines=0, tests=10, failures=20),
    _Detail(tail=0, test_lines=0, tests=3, failures=5),
    _Detail(tail=0, test_lines=0, tests=0, failures=0),
)


def marker(playbook: str) -> str:
    """The hidden line that marks a playbook's comment: `<!-- ci-orchestrator: NAME -->` (a
    `--` in the name would end the HTML comment early, so it is written `- -`)."""
    name = " ".join(playbook.split()).replace("--", "- -")
    return f"<!-- ci-orchestrator: {name} -->"


def comment_body(result: RunResult, *, run_url: str | None = None, limit: int = MAX_CHARACTERS) -> str:
    """The comment's markdown, at most `limit` characters: log tails and the failing tests'
    texts are shortened, then left out, then fewer tests and failures are detailed, until it
    fits; a note says what was left out."""
    new = new_test_failures(result)
    news = set(result.comparison.new_failures) if result.comparison else set()
    # What fails since the baseline first: what a cut keeps longest.
    failures = sorted(detailed(result), key=lambda step: not (step.id in news or _has_new_tests(step, new)))
    for detail in _LEVELS:
        text = _body(result, failures, run_url, detail, new)
        if len(text) <= limit:
            return text
    return text[: limit - _ROOM] + "\n\n✂️ Cut to stay under GitHub's 65,536 characters.\n"


def _has_new_tests(step: StepResult, new: frozenset[str]) -> bool:
    prefix = qualified_test_name(step.id, "")
    return any(name.startswith(prefix) for name in new)


def _body(
    result: RunResult, failures: list[StepResult], run_url: str | None, detail: _Detail, new: frozenset[str]
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
    if tests := totals_line(result):
        parts.append(tests)
    if result.comparison is not None:
        parts.append(changes_markdown(result.comparison))
    shown = failures if detail.failures is None else failures[: detail.failures]
    if shown:
        parts.append("### Failures")
        parts.extend(_failure(result, step, detail, new) for step in shown)
    if left_out := _left_out(failures, detail):
        parts.append(
            f"✂️ To stay under GitHub's comment limit: {'; '.join(left_out)}. The job summary has them."
        )
    parts.append(f"<sub>{about}</sub>")
    return clean("\n\n".join(parts) + "\n", result.secrets)


def _left_out(failures: list[StepResult], detail: _Detail) -> list[str]:
    """What `detail` leaves out of these failures, said in a few words each."""
    said = []
    if detail.tail < TAIL_CHARACTERS and any(step.log_tail for step in failures):
        said.append("log tails shortened" if detail.tail else "log tails left out")
    shown = failures if detail.failures is None else failures[: detail.failures]
    tests = [step.tests for step in shown if step.tests is not None and step.tests.failed]
    if detail.test_lines < TEXT_LINES and any(failure.text for found in tests for failure in found.failures):
        said.append(
            "the failing tests' texts shortened" if detail.test_lines else "the failing tests' texts left out"
        )
    unnamed = sum(max(0, min(len(found.failures), SHOWN) - detail.tests) for found in tests)
    if unnamed:
        said.append(f"{unnamed:,} failing tests not named")
    if len(shown) < len(failures):
        said.append(f"{len(failures) - len(shown)} of {len(failures)} failures not detailed")
    return said


def _failure(result: RunResult, step: StepResult, detail: _Detail, new: frozenset[str]) -> str:
    why = failure_message(step) if step.status.is_failure else failed_count(step)
    lines = [
        f"#### {ICONS[step.status]} {_code(step.id)}: {_code(why)}",
        "",
        "Reproduce locally:",
        "",
        _fenced(repro_command(result, step), "sh"),
        *failing_tests(step, lines=detail.test_lines, new=new, shown=detail.tests),
    ]
    text = _last_bytes(step.log_tail or "", detail.tail).rstrip("\n") if detail.tail else ""
    if text:
        lines += ["", "<details><summary>Log tail</summary>", "", _fenced(text, "text"), "", "</details>"]
    return "\n".join(lines)
