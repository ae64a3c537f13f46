"""output: one step printing 1 GiB; how much memory ci-orchestrator itself needs meanwhile.

Peak memory is the high-water mark of our process only: `bench/maxrss.py` runs the tool in its
own process and writes `getrusage(RUSAGE_SELF).ru_maxrss` at exit, which excludes children (the
step's `yes` and `head`). Console output goes to /dev/null; the step's log file is written as in
any run (and removed before the next one).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bench import server, tools, workload
from bench.peers import BENCH
from bench.report import TIMING_HEADER, Section, Table, Target, timing_rows
from bench.scenarios import OURS, both, statuses_check
from bench.timing import Case, compare

if TYPE_CHECKING:
    from bench.scenarios import Context

GOAL_MB = 100
QUICK_SIZE = 256 << 20


def run(context: Context) -> Section:
    section = Section(
        name="output",
        method=(
            "One step printing 1 GiB in 100-byte lines (`{ yes x…x || true; } | head -c 1073741824`), "
            "`run --no-cache`, default console output sent to /dev/null. Peak memory: "
            "`getrusage(RUSAGE_SELF).ru_maxrss` of the ci-orchestrator process, read at its exit by "
            "`bench/maxrss.py`, which runs the tool in-process: the step's processes are not counted. "
            "So the command runs in that process, never on a run server (which would leave only the "
            "client's memory to measure): `CI_ORCHESTRATOR_SERVER=off`, as in a CI job."
        ),
    )
    ours = context.peers[OURS]
    folder = context.work / "output" / OURS
    size = QUICK_SIZE if context.quick else workload.ONE_GIGABYTE
    tools.write(OURS, workload.output(size), folder)
    peaks: list[int] = []
    record = folder / "maxrss.txt"

    def read_peak() -> str:
        peaks.append(int(record.read_text()))
        return ""

    def prepare(_round: int) -> None:
        tools.forget(OURS, folder)  # the last run's 1 GiB log
        record.unlink(missing_ok=True)

    # With ours' interpreter (its venv's python): what the installed command runs on.
    argv = [ours.python, str(BENCH / "maxrss.py"), str(record), "run", str(folder / "playbook.yml")]
    case = Case(
        name=OURS,
        argv=[*argv, "--no-cache"],
        cwd=folder,
        check=both(statuses_check(folder, lambda: {"passed": 1}), read_peak),
        prepare=prepare,
        discard_output=True,
        # `maxrss.py` calls the command itself: no server either way; said so here.
        env={**ours.env, **server.OFF},
    )
    timings = compare([case], runs=context.runs, log_folder=context.logs / "output")
    tools.forget(OURS, folder)
    peak_mb = max(peaks) / 1024 if peaks else float("nan")
    rows = timing_rows(timings, {OURS: ours}, reference=OURS, extra={OURS: f"{peak_mb:.1f} MiB"})
    section.tables.append(
        Table(title="1 GiB from one step", header=(*TIMING_HEADER, "peak RSS", "check"), rows=rows)
    )
    met = None if not peaks or context.quick else peak_mb < GOAL_MB
    goal = f"output: peak memory under {GOAL_MB} MB while a step prints 1 GB"
    section.targets.append(Target(goal=goal, met=met, measured=f"{peak_mb:.1f} MiB"))
    section.notes.append(f"peak RSS over runs: {', '.join(f'{kb / 1024:.1f}' for kb in peaks)} MiB")
    return section
