"""The markdown job summary: what a person reads first after a run, on GitHub or with `cat`.

Overall result, counts, wall time (and at most how much faster than its steps one after another),
a table of instances, each failure with its log tail and how to reproduce it, and a mermaid
timeline. It stays under
GitHub's 1 MiB step-summary limit by cutting log tails first, then rows, and saying what it cut.
"""

from __future__ import annotations

import dataclasses
import re
import signal
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ci_orchestrator.reporters.logs import clean, step_tail
from ci_orchestrator.reporters.markdown_text import code as _code
from ci_orchestrator.reporters.markdown_text import escape as _escape
from ci_orchestrator.reporters.markdown_text import fenced as _fenced
from ci_orchestrator.reporters.markdown_text import last_bytes as _last_bytes
from ci_orchestrator.reporters.markdown_text import short as _short
from ci_orchestrator.reporters.reproduce import repro_command, repro_commands, repro_instance, repro_where
from ci_orchestrator.reporters.test_summary import (
    TEXT_LINES,
    detailed,
    failed_count,
    failing_tests,
    has_failing_tests,
    new_test_failures,
    totals_line,
)
from ci_orchestrator.reporters.writing import failure_message, format_seconds, tail_note
from ci_orchestrator.results import RunStatus, Status

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping, Sequence

    from ci_orchestrator.results import RunResult, RunStats, StepResult

MAX_BYTES = 1024 * 1024  # GitHub's limit for one step's summary
ICONS = {
    Status.PASSED: "✅",
    Status.FAILED: "❌",
    Status.TIMED_OUT: "⏱️",
    Status.CANCELLED: "🛑",
    Status.SKIPPED: "⏭️",
    Status.CACHED: "💾",
}
RUN_ICONS = {RunStatus.PASSED: "✅", RunStatus.FAILED: "❌", RunStatus.CANCELLED: "🛑"}
# Room kept free for the note that says what was cut.
_NOTE_ROOM = 1024
MERMAID_MAX_TEXT = 45_000  # mermaid's default maxTextSize is 50,000; room for the header
_MIN_TAIL = 256


@dataclass(frozen=True, slots=True, kw_only=True)
class _Cuts:
    """How much of the summary to keep; None keeps everything."""

    tail_bytes: int | None = None  # the last bytes of each log tail
    rows: int | None = None  # table rows and timeline bars (failures kept first)
    failures: int | None = None  # failure sections
    timeline: bool = True
    test_lines: int | None = None  # of each failing test's text (None: `test_summary.TEXT_LINES`)
    held: int = 0  # bytes the step summary already holds, counted in the limit
    step_summaries: bool = True  # what the steps wrote to their GITHUB_STEP_SUMMARY

    def any(self) -> bool:
        kept = (
            self.tail_bytes,
            self.rows,
            self.failures,
            self.timeline,
            self.test_lines,
            self.step_summaries,
        )
        return kept != (None, None, None, True, None, True)

    def limit(self) -> str:
        already = f", counting the {self.held:,} bytes this step's summary already held" if self.held else ""
        return f"GitHub's 1 MiB summary limit{already}"


def render_summary(result: RunResult, *, max_bytes: int = MAX_BYTES, held: int = 0) -> str:
    """The GitHub-flavored markdown summary of `result`, at most `max_bytes` bytes of UTF-8
    (`held`: what the step summary it is appended to already holds, said in a cut's note)."""
    failures = [step for step in result.steps if step.status.is_failure]
    tails = {step.id: step_tail(step, secrets=result.secrets) for step in failures}
    # The timeline is of every instance that ran, whatever the table keeps: made once.
    timeline = _gantt(result, result.steps)
    blocks: list[str] = []
    cuts = _Cuts(held=held)
    for cuts in _cut_sequence(result, tails, max_bytes, timeline, held=held):
        blocks = _blocks(result, tails, cuts, timeline)
        text = _joined(blocks)
        if len(text.encode("utf-8")) <= max_bytes:
            return text
    return _hard_cut(blocks, max_bytes, cuts)


def _cut_sequence(
    result: RunResult, tails: Mapping[str, str], max_bytes: int, timeline: str, *, held: int
) -> Iterator[_Cuts]:
    """Ever smaller summaries: whole, then shorter log tails, then fewer rows, then fewer
    failures, then no timeline."""
    # The steps' own summaries are the first to go: their text is theirs to keep short.
    summaries = any(step.files.summary for step in result.steps)
    for index, cuts in enumerate(_smaller(result, tails, max_bytes, timeline)):
        yield dataclasses.replace(cuts, held=held, step_summaries=index == 0 or not summaries)
    if timeline:
        yield _Cuts(
            tail_bytes=0, rows=0, failures=0, timeline=False, test_lines=0, held=held, step_summaries=False
        )


def _smaller(result: RunResult, tails: Mapping[str, str], max_bytes: int, timeline: str) -> Iterator[_Cuts]:
    yield _Cuts()
    if tails:
        # Share what the rest of the summary leaves free among the tails, then shrink from there.
        rest = len(_render(result, tails, _Cuts(tail_bytes=0), timeline).encode("utf-8"))
        budget = (max_bytes - rest - _NOTE_ROOM) // len(tails)
        longest = max(len(tail.encode("utf-8")) for tail in tails.values())
        budget = min(budget, longest - 1)
        while budget >= _MIN_TAIL:
            yield _Cuts(tail_bytes=budget)
            budget = budget * 3 // 4
    # Then the failing tests' texts are shortened, and from there on named with their message only.
    texts = any(has_failing_tests(step) for step in result.steps)
    for lines in (None, TEXT_LINES // 3) if texts else ():
        yield _Cuts(tail_bytes=0, test_lines=lines)
    lean = _Cuts(tail_bytes=0, test_lines=0)
    if tails or texts:
        yield lean
    if result.steps:
        # As many rows as the room left beside everything else holds, most important first;
        # then a little fewer at a time, should the estimate be short.
        rest = len(_render(result, tails, dataclasses.replace(lean, rows=0), timeline).encode("utf-8"))
        room = max_bytes - rest - _NOTE_ROOM
        rows = 0
        for index in _by_importance(result.steps):
            room -= len(_table_row(result.steps[index]).encode("utf-8")) + 1
            if room < 0:
                break
            rows += 1
        while rows:
            yield dataclasses.replace(lean, rows=rows)
            rows = rows * 15 // 16
        yield dataclasses.replace(lean, rows=0)
    failures = len(detailed(result))
    while failures:
        failures //= 2
        yield dataclasses.replace(lean, rows=0, failures=failures)


def _render(result: RunResult, tails: Mapping[str, str], cuts: _Cuts, timeline: str) -> str:
    return _joined(_blocks(result, tails, cuts, timeline))


def _joined(blocks: Sequence[str]) -> str:
    return "\n\n".join(blocks) + "\n"


def _blocks(result: RunResult, tails: Mapping[str, str], cuts: _Cuts, timeline: str) -> list[str]:
    """The summary's blocks (paragraphs, a table, failure sections, the timeline), cleaned: what
    a last-resort cut keeps or leaves out whole."""
    secrets = _as_written_here(result.secrets)
    kept = _kept_rows(result.steps, cuts.rows)
    failures = detailed(result)
    shown_failures = failures if cuts.failures is None else failures[: cuts.failures]
    parts = _header(result)
    if result.comparison is not None:
        from ci_orchestrator.reporters.changes import changes_markdown  # it uses this module's spans

        # What changed since the baseline comes first, under the result: the question a reader has.
        parts.insert(1, changes_markdown(result.comparison))
    if cuts.any():
        parts.append(_cut_note(result, cuts, kept=len(kept), failures=len(shown_failures), tails=tails))
    parts.append(_table(kept))
    if shown_failures:
        parts += ["### Failures", repro_where(result) + "\n\n" + _fenced(repro_commands(result), "sh")]
        parts.extend(_failure(step, result, tails.get(step.id, ""), cuts) for step in shown_failures)
    written = [step for step in result.steps if step.files.summary.strip()] if cuts.step_summaries else []
    if written:
        parts.append("### Step summaries")
        parts += [f"#### {_code(step.id)}\n\n{step.files.summary.strip()}" for step in written]
    if timeline and cuts.timeline:
        parts.append(timeline)
    return [clean(part, secrets) for part in parts]


def _header(result: RunResult) -> list[str]:
    """The header's paragraphs."""
    counts = result.counts()
    total = len(result.steps)
    tally = " · ".join(f"{ICONS[status]} {count} {status.value}" for status, count in counts.items() if count)
    stats = result.stats
    paragraphs = [
        f"## {RUN_ICONS[result.status]} {_escape(result.playbook)}: {result.status.value}",
        f"**{total} instance{'s' if total != 1 else ''}**" + (f": {tally}" if tally else ""),
        *filter(None, [totals_line(result)]),
        f"Wall time **{format_seconds(result.wall_time)}**" + _speedup(stats),
    ]
    if result.interrupted_by is not None:
        paragraphs.append(f"Interrupted by {_signal_name(result.interrupted_by)}.")
    paragraphs.extend(f"> ⚠️ {_escape(note)}" for note in result.notes)
    if stats.critical_path:
        paragraphs.append("Critical path: " + " → ".join(_code(step_id) for step_id in stats.critical_path))
    shard = f" (shard {result.shard})" if result.shard else ""
    where = _code(result.playbook_path or result.playbook)
    paragraphs.append(f"Run {_code(result.run_id)} of {where}{shard}")
    return paragraphs


def _speedup(stats: RunStats) -> str:
    """The speed-up for what it is, an upper bound (see `results.speedup`); nothing without one."""
    if stats.speedup is None:
        return ""
    return (
        f" · at most **{stats.speedup:.2f}×** faster than one after another"
        f" (the steps' durations add up to **{format_seconds(stats.serial_duration)}**)"
    )


def _cut_note(result: RunResult, cuts: _Cuts, *, kept: int, failures: int, tails: Mapping[str, str]) -> str:
    cut: list[str] = []
    if cuts.tail_bytes:
        cut.append(f"log tails shortened to their last {cuts.tail_bytes} bytes")
    elif cuts.tail_bytes == 0 and any(tails.values()):
        cut.append("log tails left out")
    if kept < len(result.steps):
        cut.append(f"{len(result.steps) - kept} of {len(result.steps)} instances left out of the table")
    if cuts.test_lines is not None and any(has_failing_tests(step) for step in result.steps):
        shortened = f"cut to their first {cuts.test_lines} lines" if cuts.test_lines else "left out"
        cut.append(f"the failing tests' texts {shortened}")
    total_failures = len(detailed(result))
    if failures < total_failures:
        cut.append(f"{total_failures - failures} of {total_failures} failures not detailed")
    if not cuts.timeline:
        cut.append("the timeline left out")
    if not cuts.step_summaries:
        cut.append("the steps' own summaries left out")
    what = "; ".join(cut) or "some content left out"
    return f"> ✂️ Cut to stay under {cuts.limit()}: {what}. The JUnit report and run.json are whole."


def _kept_rows(steps: Sequence[StepResult], limit: int | None) -> list[StepResult]:
    """The rows to show, in run order: with a limit, failures first, then skips, then the rest."""
    if limit is None or limit >= len(steps):
        return list(steps)
    chosen = sorted(_by_importance(steps)[:limit])
    return [steps[index] for index in chosen]


def _by_importance(steps: Sequence[StepResult]) -> list[int]:
    """Indexes of `steps`, the rows a cut table keeps first: failures, then skips, then the rest."""

    def importance(index: int) -> tuple[int, int]:
        status = steps[index].status
        return (0 if status.is_failure else 1 if status is Status.SKIPPED else 2, index)

    return sorted(range(len(steps)), key=importance)


def _table(steps: Sequence[StepResult]) -> str:
    if not steps:
        return "### Steps\n\nNo step instances."
    lines = [
        "### Steps",
        "",
        "| Status | Instance | Duration | Cached | Note |",
        "| --- | --- | ---: | :---: | --- |",
    ]
    lines.extend(_table_row(step) for step in steps)
    return "\n".join(lines)


def _table_row(step: StepResult) -> str:
    status = step.status
    duration = "" if status is Status.SKIPPED else format_seconds(step.duration)
    cached = "yes" if step.cached or status is Status.CACHED else ""
    note = step.reason or ""
    if status.is_failure:
        note = failure_message(step) + (" (continue-on-error)" if step.continue_on_error else "")
    if has_failing_tests(step):
        note = f"{note}: {failed_count(step)}" if note else failed_count(step)
    cells = [f"{ICONS[status]} {status.value}", _code(step.id), duration, cached, _short(note)]
    return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"


def _failure(step: StepResult, result: RunResult, tail: str, cuts: _Cuts) -> str:
    why = failure_message(step) if step.status.is_failure else failed_count(step)
    lines = [
        f"#### {ICONS[step.status]} {_code(step.id)}: {_escape(why)}",
        "",
        f"Reproduce locally: {_code(repro_instance(result, step))}, or without the record:",
        "",
        _fenced(repro_command(result, step), "sh"),
        *failing_tests(
            step,
            lines=TEXT_LINES if cuts.test_lines is None else cuts.test_lines,
            new=new_test_failures(result),
        ),
    ]
    if cuts.tail_bytes is not None:
        tail = _last_bytes(tail, cuts.tail_bytes)
    if tail:
        import html  # for failed steps only; it loads its table of entities (~1 ms)

        where = f" of <code>{html.escape(step.log)}</code>" if step.log else ""
        lines += [
            "",
            f"<details><summary>Log tail{where}</summary>",
            "",
            _fenced(tail, "text"),
            "",
            "</details>",
        ]
    elif step.status.is_failure and not step.log_tail:
        lines += ["", _escape(tail_note(step))]
    return "\n".join(lines)


def _gantt(result: RunResult, steps: Sequence[StepResult]) -> str:
    """A mermaid gantt chart of the instances that ran, at their real start and end times.

    Mermaid refuses diagrams past `MERMAID_MAX_TEXT` characters, so a long run shows its failures
    and its longest instances, and says so.
    """
    ran = [
        step
        for step in steps
        if step.started and step.finished and step.status not in (Status.SKIPPED, Status.CACHED)
    ]
    if not ran:
        return ""
    by_importance = sorted(ran, key=lambda step: (not step.status.is_failure, -step.duration))
    # Each bar's text is made once: its length decides what fits, then it is written.
    bars = {step.id: _gantt_bar(step) for step in ran}
    task_id = len(f"t{len(ran)}")  # room for the longest task id
    shown: set[str] = set()
    size = 0
    for step in by_importance:
        head, tail = bars[step.id]
        size += len(head) + task_id + len(tail) + 1
        if size > MERMAID_MAX_TEXT:
            break
        shown.add(step.id)
    ordered = sorted((step for step in ran if step.id in shown), key=lambda step: (step.started, step.id))
    sections: dict[str, list[StepResult]] = {}
    for step in ordered:
        sections.setdefault(step.stage or step.group or result.playbook, []).append(step)
    lines = ["### Timeline", "", "```mermaid", "gantt", "    dateFormat x", "    axisFormat %H:%M:%S"]
    lines.append("    todayMarker off")
    number = 0
    for label, members in sections.items():
        lines.append(f"    section {_mermaid_text(label)}")
        for step in members:
            head, tail = bars[step.id]
            lines.append(f"{head}t{number}{tail}")
            number += 1
    lines.append("```")
    if len(shown) < len(ran):
        lines += [
            "",
            f"The timeline shows {len(shown)} of the {len(ran)} instances that ran:"
            " the failures and the longest.",
        ]
    return "\n".join(lines)


def _gantt_bar(step: StepResult) -> tuple[str, str]:
    """One gantt task line, as the text before its task id and the text after it."""
    assert step.started and step.finished  # only instances that ran get a bar
    start = int(step.started.timestamp() * 1000)
    end = max(int(step.finished.timestamp() * 1000), start + 1)
    tags = "crit, " if step.status.is_failure else ""
    return f"    {_mermaid_text(step.id)} :{tags}", f", {start}, {end}"


# The gantt lexer ends a task name at `:`, treats `#` and `;` specially, `%%` starts a comment, and
# parentheses trip some renderers. Mermaid decodes `#NN;` entities in labels, so those are written
# as entities, and `#` itself too so an entity-like id stays as written.
_MERMAID_SPECIAL = re.compile(r"[#:;%()\[\]{}<>\"`]")
# Words the gantt lexer reads as statements when a line starts with them.
_MERMAID_KEYWORDS = frozenset(
    {
        "gantt", "title", "section", "dateformat", "axisformat", "tickinterval", "includes",
        "excludes", "todaymarker", "weekday", "weekend", "inclusiveenddates", "topaxis",
        "acctitle", "accdescr", "click", "call", "href", "displaymode",
    }
)  # fmt: skip


def _mermaid_text(text: str) -> str:
    text = " ".join(text.split()) or "-"
    escaped = _MERMAID_SPECIAL.sub(lambda match: f"#{ord(match.group())};", text)
    first_word = re.match(r"[A-Za-z]+", escaped)
    if first_word and first_word.group().lower() in _MERMAID_KEYWORDS:
        escaped = f"#{ord(escaped[0])};{escaped[1:]}"
    return escaped


def _as_written_here(secrets: tuple[str, ...]) -> tuple[str, ...]:
    """The secrets, and the forms this page's escaping gives them: a secret that holds `<`, `&`,
    `|` or a quote is masked in an escaped id, name or message too, not only as written."""
    if not secrets:
        return ()
    import html  # as for log tails: only when there is something to look for

    forms = dict.fromkeys(secrets)
    for value in secrets:
        written = (html.escape(value), _escape(value), _mermaid_text(value), value.replace("|", "\\|"))
        forms.update(dict.fromkeys(written))
    return tuple(forms)


def _hard_cut(blocks: Sequence[str], max_bytes: int, cuts: _Cuts) -> str:
    """The last resort when even the shortest summary is too long: the first blocks that fit,
    each whole, and a note that says so; nothing when not even the note fits."""
    note = f"> ✂️ Cut here to stay under {cuts.limit()}."
    kept: list[str] = []
    size = len(_joined([note]).encode("utf-8"))
    for block in blocks:
        size += len(block.encode("utf-8")) + 2
        if size > max_bytes:
            break
        kept.append(block)
    text = _joined([*kept, note])
    return text if len(text.encode("utf-8")) <= max_bytes else ""


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"
