"""A comparison as markdown: the block the job summary and the pull-request comment lead with,
and what `report compare` prints.

Every id, branch and commit comes from run records or the history, so each is written as a
code span (markdown shows it as written, and GitHub reads no mention or reference in it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ci_orchestrator.reporters.markdown_text import code as _code
from ci_orchestrator.reporters.writing import format_seconds

if TYPE_CHECKING:
    from collections.abc import Sequence

    from ci_orchestrator.results import Comparison, DurationChange

SHOWN = 10  # ids named in each list of the summary's block; the rest are counted


def changes_markdown(comparison: Comparison, *, shown: int | None = SHOWN, heading: str = "###") -> str:
    """The comparison as one markdown block: a heading that names the baseline, then one line
    per list that has something; `shown` ids per list at most (None: all)."""
    title = f"{heading} Changes since {baseline_name(comparison)}"
    lines = [
        _line("❌", "new failure", "new failures", comparison.new_failures, shown),
        _line("✅", "fixed", "fixed", comparison.fixed, shown),
        _line("❌", "new test failure", "new test failures", comparison.new_test_failures, shown),
        _line("✅", "fixed test", "fixed tests", comparison.fixed_tests, shown),
        _line("🔁", "flaky (passed after a retry)", "flaky (passed after a retry)", comparison.flaky, shown),
        _line("🔴", "still failing", "still failing", comparison.still_failing, shown),
        _timing("🐢", "slower", comparison.slower, shown),
        _timing("🐇", "faster", comparison.faster, shown),
        _line("➕", "added", "added", comparison.added, shown),
        _line("➖", "removed", "removed", comparison.removed, shown),
    ]
    kept = [line for line in lines if line]
    if not kept:
        return f"{title}\n\nNo changes: the same results, and no instance notably slower or faster."
    return "\n".join([title, "", *kept])


def baseline_name(comparison: Comparison) -> str:
    """`run `ID` on `main` at `abc1234``, as much of it as is known."""
    text = f"run {_code(comparison.baseline_run_id)}"
    if comparison.baseline_branch:
        text += f" on {_code(comparison.baseline_branch)}"
    if comparison.baseline_commit:
        text += f" at {_code(short_commit(comparison.baseline_commit))}"
    return text


def short_commit(commit: str) -> str:
    """A commit as people write it: the first 7 digits of a full SHA."""
    full = len(commit) in (40, 64) and all(char in "0123456789abcdef" for char in commit.lower())
    return commit[:7] if full else commit


def _line(icon: str, one: str, many: str, ids: Sequence[str], shown: int | None) -> str:
    if not ids:
        return ""
    return (
        f"- {icon} **{len(ids)} {one if len(ids) == 1 else many}**: {_names([_code(i) for i in ids], shown)}"
    )


def _timing(icon: str, what: str, changes: Sequence[DurationChange], shown: int | None) -> str:
    if not changes:
        return ""
    items = [
        f"{_code(change.id)} {format_seconds(change.before)} → {format_seconds(change.after)}"
        f" ({_ratio(change)})"
        for change in changes
    ]
    return f"- {icon} **{len(changes)} {what}**: {_names(items, shown)}"


def _ratio(change: DurationChange) -> str:
    if change.before <= 0:
        return "new time"
    return f"{change.after / change.before:.1f}×"


def _names(items: Sequence[str], shown: int | None) -> str:
    if shown is None or len(items) <= shown:
        return ", ".join(items)
    return ", ".join(items[:shown]) + f" and {len(items) - shown} more"
