"""RESULTS.md: the machine, the tools' versions, one table per scenario and the targets met or not."""

from __future__ import annotations

import datetime
import math
import os
import platform
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bench.peers import Peer
    from bench.timing import Timing


@dataclass(frozen=True, slots=True, kw_only=True)
class Table:
    title: str
    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Target:
    """A goal of ours; `met` is None when it could not be measured."""

    goal: str
    met: bool | None
    measured: str


@dataclass(slots=True, kw_only=True)
class Section:
    """What one scenario found."""

    name: str
    method: str
    tables: list[Table] = field(default_factory=list)
    targets: list[Target] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def seconds(value: float) -> str:
    if math.isnan(value):
        return "–"
    if value < 1:
        return f"{value * 1000:.0f} ms"
    return f"{value:.2f} s"


def spread(timing: Timing) -> str:
    if timing.stopped_at:
        return f"> {seconds(timing.stopped_at)}"
    return f"{seconds(timing.low)} – {seconds(timing.high)}" if timing.seconds else "–"


def ratio(value: float, reference: float) -> str:
    if math.isnan(value) or math.isnan(reference) or reference == 0:
        return "–"
    return f"{value / reference:.2f}"


def verdict(timing: Timing) -> str:
    if timing.stopped_at:
        return f"too slow: {timing.wrong}"
    if timing.wrong:
        return f"WRONG: {timing.wrong[:160]}"
    said = "ok (1 run: too slow to repeat)" if timing.warmup_only else f"ok ({len(timing.seconds)} runs)"
    return f"{said}; {timing.note}" if timing.note else said


def timing_rows(
    timings: dict[str, Timing],
    peers: dict[str, Peer],
    *,
    reference: str,
    also: str | None = None,
    extra: dict[str, str] | None = None,
) -> tuple[tuple[str, ...], ...]:
    """tool, version, median, min–max, ratio to `reference` (and to `also`, when given; a median of
    a wrong run is not quoted), `extra`, check."""

    def times(timing: Timing, median: float, against: str) -> str:
        base = timings[against].median if against in timings and timings[against].ok else math.nan
        if timing.stopped_at and not math.isnan(base):
            return f"> {timing.stopped_at / base:.0f}"
        return ratio(median, base)

    rows = []
    for name, timing in timings.items():
        median = timing.median if timing.ok else math.nan
        ratios = [times(timing, median, against) for against in (reference, *((also,) if also else ()))]
        row = (name, peers[name].version, seconds(median), spread(timing), *ratios)
        rows.append((*row, *((extra[name],) if extra is not None else ()), verdict(timing)))
    return tuple(rows)


TIMING_HEADER = ("tool", "version", "median", "min – max", "× ours")
# Where ours is timed with its run server and without: a ratio to each.
BOTH_HEADER = (*TIMING_HEADER, "× ours (no server)")


def machine() -> list[str]:
    """CPU model, cores, memory and OS of this machine, for the top of the page."""
    model = "unknown CPU"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    memory = "unknown"
    meminfo = Path("/proc/meminfo")
    if meminfo.exists():
        kilobytes = int(meminfo.read_text().split("MemTotal:", 1)[1].split()[0])
        memory = f"{kilobytes / 1024 / 1024:.1f} GiB"
    system = platform.platform()
    release = Path("/etc/os-release")
    if release.exists():
        for line in release.read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                system = f"{line.split('=', 1)[1].strip(chr(34))}, Linux {platform.release()}"
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return [
        f"- CPU: {model}, {os.cpu_count()} logical cores ({usable} usable by this process)",
        f"- Memory: {memory}",
        f"- OS: {system}",
        f"- Python (ours and doit): {platform.python_version()}",
        # The machine is shared: a high load says other work ran beside the suite.
        "- Load average (1, 5, 15 min) when this page was written: "
        + ", ".join(f"{load:.2f}" for load in os.getloadavg()),
    ]


def _table(table: Table) -> list[str]:
    lines = [f"**{table.title}**", "", "| " + " | ".join(table.header) + " |"]
    lines.append("|" + " --- |" * len(table.header))
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in table.rows]
    return [*lines, ""]


def _mark(met: bool | None) -> str:
    return {True: "met", False: "**not met**", None: "not measured"}[met]


def render(
    sections: list[Section], peers: dict[str, Peer], *, notes: list[str], quick: bool, elapsed: float
) -> str:
    """The whole page."""
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "# Benchmark results",
        "",
        f"Generated by `python bench/run.py{' --quick' if quick else ''}` on {now}, "
        f"in {elapsed / 60:.1f} minutes. See README.md for the method. Times are whole processes; "
        "`× ours` is a tool's median divided by ci-orchestrator's (above 1: slower than ours), "
        "the row with its run server; where a table also has `ci-orchestrator (no server)` (each run "
        "a fresh process, as in a CI job), `× ours (no server)` divides by that row's.",
        "",
        "## Machine",
        "",
        *machine(),
        "",
        "## Tools",
        "",
        "| tool | version |",
        "| --- | --- |",
    ]
    for peer in peers.values():
        lines.append(
            f"| {peer.name} | {peer.version if peer.available else 'not installed: ' + peer.missing} |"
        )
    lines += ["", *[f"- {note}" for note in notes], "", "## Targets", "", "| target | measured | result |"]
    lines.append("| --- | --- | --- |")
    for section in sections:
        lines += [f"| {t.goal} | {t.measured} | {_mark(t.met)} |" for t in section.targets]
    for section in sections:
        lines += ["", f"## {section.name}", "", section.method, ""]
        for table in section.tables:
            lines += _table(table)
        lines += [f"- {note}" for note in section.notes]
    return "\n".join(lines).rstrip() + "\n"
