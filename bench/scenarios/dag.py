"""dag: 60 sleeping steps in 6 layers, each needing 1–3 steps of earlier layers: scheduling quality.

The quality figure is makespan ÷ max(critical path, total work ÷ concurrency): 1.00 is a perfect
schedule with no overhead at all. The makespan is the whole process, start-up included.
"""

from __future__ import annotations

import datetime
from typing import TYPE_CHECKING

from bench import tools, workload
from bench.report import TIMING_HEADER, Section, Table, Target, ratio, seconds, timing_rows
from bench.scenarios import OURS, SERVER_ONLY, both, read_record, statuses_check
from bench.timing import Case, compare

if TYPE_CHECKING:
    from pathlib import Path

    from bench.scenarios import Context
    from bench.timing import Timing

CONCURRENCIES = (2, 4)
COUNT = 60
QUICK_COUNT = 30
GOAL = 1.03


def _inside(folder: Path) -> float:
    """Our own wall time of the last run (run record `finished - started`): the makespan minus start-up."""
    record = read_record(folder)

    def when(key: str) -> datetime.datetime:
        return datetime.datetime.fromisoformat(str(record[key]).replace("Z", "+00:00"))

    return (when("finished") - when("started")).total_seconds()


def _cases(context: Context, concurrency: int, inside: list[float]) -> tuple[list[Case], workload.Workload]:
    cases = []
    count = QUICK_COUNT if context.quick else COUNT
    shape = workload.dag(context.work, count=count)
    for row in context.rows():
        peer = row.peer
        folder = context.work / "dag" / row.folder
        work = workload.dag(folder, count=count)
        tools.write(peer.name, work, folder)
        log = folder / "order.log"
        order = lambda work=work, log=log: workload.check_order(work, log)  # noqa: E731

        if peer.name == OURS:

            def record_inside(folder: Path = folder) -> str:
                inside.append(_inside(folder))
                return ""

            check = both(order, statuses_check(folder, lambda: {"passed": count}), record_inside)
        else:
            check = order

        def prepare(_round: int, log: Path = log) -> None:
            log.unlink(missing_ok=True)

        argv = tools.command(peer, folder, concurrency)
        case = Case(
            name=row.name, argv=argv, cwd=folder, check=check, prepare=prepare, env=row.env, ready=row.ready
        )
        cases.append(case)
    return cases, shape


def run(context: Context) -> Section:
    count = QUICK_COUNT if context.quick else COUNT
    section = Section(
        name="dag",
        method=(
            f"{count} steps in 6 equal layers, each sleeping 0.05–0.3 s (seed 1) and needing 1–3 "
            "steps of earlier layers. Every step appends `start ID` and `end ID` to a log, and each run is "
            "checked: every step ran once, and started after all it needs had ended. xargs and "
            "GNU parallel cannot express needs: they run layer after layer (a barrier between "
            f"layers), which keeps the order but is a different, easier schedule. {SERVER_ONLY}"
        ),
    )
    for concurrency in CONCURRENCIES[:1] if context.quick else CONCURRENCIES:
        inside: list[float] = []
        cases, shape = _cases(context, concurrency, inside)
        lower = workload.bound(shape, concurrency)
        timings = compare(cases, runs=context.runs, log_folder=context.logs / f"dag-{concurrency}")
        quality = {name: ratio(t.median if t.ok else float("nan"), lower) for name, t in timings.items()}
        rows = timing_rows(timings, context.peers, reference=OURS, extra=quality)
        title = f"-j {concurrency}: lower bound {seconds(lower)}"
        section.tables.append(Table(title=title, header=(*TIMING_HEADER, "÷ bound", "check"), rows=rows))
        section.targets.append(_target(timings.get(OURS), lower, concurrency))
        if inside:
            inner = sorted(inside)[len(inside) // 2]
            section.notes.append(
                f"-j {concurrency}: ours from its own run record (start-up and reports excluded): "
                f"median {seconds(inner)}, {ratio(inner, lower)} × bound"
            )
    section.notes += [f"{peer.name}: not installed ({peer.missing})" for peer in context.missing()]
    return section


def _target(ours: Timing | None, lower: float, concurrency: int) -> Target:
    goal = f"dag: makespan ≤ {GOAL} × bound at -j {concurrency}"
    if ours is None or not ours.ok:
        return Target(goal=goal, met=None, measured="ours failed")
    value = ours.median / lower
    return Target(goal=goal, met=value <= GOAL, measured=f"{value:.3f} × bound ({seconds(ours.median)})")
