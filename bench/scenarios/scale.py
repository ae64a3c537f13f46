"""scale: `plan` and a run of `true` steps at 1,000 and 10,000 steps: does the cost per step grow?"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bench import server, tools, workload
from bench.report import Section, Table, Target, seconds, timing_rows
from bench.scenarios import OURS, SERVER_ONLY, statuses_check
from bench.timing import Case, compare

if TYPE_CHECKING:
    from bench.scenarios import Context
    from bench.timing import Timing

SIZES = (1000, 10000)
CONCURRENCY = 2
PLAN_GOAL = 2.0


def _growth(small: Timing, large: Timing, sizes: tuple[int, int]) -> str:
    """Per-step cost ratio between the sizes (1.00: linear), and the marginal cost of a step."""
    if not (small.ok and large.ok):
        return "not measured"
    per_small, per_large = small.median / sizes[0], large.median / sizes[1]
    marginal = (large.median - small.median) / (sizes[1] - sizes[0])
    # Within a quarter of linear is noise on a shared machine; more is a real trend.
    shape = "linear" if per_large / per_small <= 1.25 else "worse than linear"
    return (
        f"per step {_micro(per_small)} at {sizes[0]:,}, {_micro(per_large)} at {sizes[1]:,}: "
        f"ratio {per_large / per_small:.2f} ({shape}); marginal cost {_micro(marginal)} per step"
    )


def _micro(value: float) -> str:
    return f"{value * 1e6:,.0f} µs"


def run(context: Context) -> Section:
    sizes = SIZES[:1] if context.quick else SIZES
    section = Section(
        name="scale",
        method=(
            f"ci-orchestrator alone: `plan` and `run -j {CONCURRENCY} --no-cache` of independent "
            f"`true` steps at {' and '.join(f'{n:,}' for n in sizes)} steps. A run longer than 15 s "
            "is timed once (its warm-up is its only sample). Growth: per-step cost at the large size "
            "÷ per-step cost at the small size (1.00 is linear, up to 1.25 is called linear; start-up "
            f"makes small sizes dearer per step, so below 1 is expected). {SERVER_ONLY}"
        ),
    )
    ours = context.peers[OURS]

    def ready() -> str:
        return server.wait(ours)

    env = {**ours.env, **server.ON}

    plan_cases, run_cases = [], []
    for size in sizes:
        folder = context.work / "scale" / str(size)
        tools.write(OURS, workload.noop(size), folder)
        name = f"{size:,} steps"
        plan_argv = [*ours.argv, "plan", str(folder / "playbook.yml")]
        plan_cases.append(Case(name=name, argv=plan_argv, cwd=folder, env=env, ready=ready))
        check = statuses_check(folder, lambda size=size: {"passed": size})
        argv = tools.command(ours, folder, CONCURRENCY)
        run_cases.append(Case(name=name, argv=argv, cwd=folder, check=check, env=env, ready=ready))
    named = {case.name: ours for case in plan_cases}
    plans = compare(plan_cases, runs=context.runs, log_folder=context.logs / "scale-plan")
    runs = compare(run_cases, runs=context.runs, log_folder=context.logs / "scale-run")
    reference = plan_cases[0].name
    for title, timings in (("plan", plans), (f"run -j {CONCURRENCY}", runs)):
        rows = timing_rows(timings, named, reference=reference)
        header = ("size", "version", "median", "min – max", f"× {reference}", "check")
        section.tables.append(Table(title=title, header=header, rows=rows))
        if len(sizes) == 2:
            small, large = (timings[f"{size:,} steps"] for size in sizes)
            section.notes.append(f"{title}: {_growth(small, large, (sizes[0], sizes[1]))}")
    largest = plans.get("10,000 steps")
    goal = f"scale: `plan` of 10,000 steps under {PLAN_GOAL:.0f} s"
    if largest is None or not largest.ok:
        section.targets.append(Target(goal=goal, met=None, measured="not measured"))
    else:
        section.targets.append(
            Target(goal=goal, met=largest.median < PLAN_GOAL, measured=seconds(largest.median))
        )
    return section
