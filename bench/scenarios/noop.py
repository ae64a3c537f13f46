"""noop: 500 independent steps of `true` at concurrency 2: the cost of running a step at all."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bench import tools, workload
from bench.report import BOTH_HEADER, Section, Table, Target, seconds, timing_rows
from bench.scenarios import BOTH_WAYS, OURS, OURS_NO_SERVER, statuses_check, without_server
from bench.timing import Case, compare

if TYPE_CHECKING:
    from bench.scenarios import Context

COUNT = 500
CONCURRENCY = 2
# turbo needs about five minutes here (500 × `npm run`); a minute says as much and keeps the
# suite within its budget.
LIMIT = 60.0
# The run engine's own promise: starting a step costs at most about what xargs pays.
XARGS_FACTOR = 2.0


def run(context: Context) -> Section:
    work = workload.noop(COUNT)
    cases = []
    for row in context.rows(no_server=True):
        folder = context.work / "noop" / row.folder
        tools.write(row.peer.name, work, folder)
        ours = row.peer.name == OURS
        check = statuses_check(folder, lambda: {"passed": COUNT}) if ours else (lambda: "")
        argv = tools.command(row.peer, folder, CONCURRENCY)
        cases.append(
            Case(name=row.name, argv=argv, cwd=folder, check=check, limit=LIMIT, env=row.env, ready=row.ready)
        )
    timings = compare(cases, runs=context.runs, log_folder=context.logs / "noop")
    section = Section(
        name="noop",
        method=(
            f"{COUNT} independent steps of `true`, concurrency {CONCURRENCY}. Checked: exit code 0 for "
            "every tool; ours also by its run record (every step `passed`). xargs and parallel run "
            "the commands through `sh -c` / the user's shell, one layer. A run is stopped after "
            f"{LIMIT:.0f} s and reported as slower than that. {BOTH_WAYS}"
        ),
    )
    rows = timing_rows(timings, context.row_peers, reference=OURS, also=OURS_NO_SERVER)
    section.tables.append(
        Table(title=f"{COUNT} × true, -j {CONCURRENCY}", header=(*BOTH_HEADER, "check"), rows=rows)
    )
    section.notes += [f"{peer.name}: not installed ({peer.missing})" for peer in context.missing()]
    ours, task = timings.get(OURS), timings.get("go-task")
    if ours and task and ours.ok and task.ok:
        met: bool | None = ours.median <= task.median
        measured = f"ours {seconds(ours.median)}{without_server(timings)}, go-task {seconds(task.median)}"
    else:
        met, measured = None, "a tool failed or is missing"
    section.targets.append(Target(goal="noop: no slower than go-task", met=met, measured=measured))
    xargs = timings.get("xargs")
    if ours and xargs and ours.ok and xargs.ok:
        share: bool | None = ours.median <= XARGS_FACTOR * xargs.median
        times = ours.median / xargs.median
        ours_figure = f"ours {seconds(ours.median)}{without_server(timings)}"
        against = f"{ours_figure}, xargs {seconds(xargs.median)} ({times:.2f}×)"
    else:
        share, against = None, "a tool failed or is missing"
    section.targets.append(
        Target(goal=f"noop: at most {XARGS_FACTOR:g}× `xargs -P {CONCURRENCY}`", met=share, measured=against)
    )
    for name in (OURS, OURS_NO_SERVER):
        if name in timings:
            per_step = timings[name].median / COUNT
            section.notes.append(f"{name}: {per_step * 1e6:,.0f} µs per step (whole process ÷ steps)")
    return section
