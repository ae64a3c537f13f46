"""startup: `--version`, and `plan` of a 1,000-step playbook, against the peers' nearest equivalents."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bench import tools, workload
from bench.report import BOTH_HEADER, TIMING_HEADER, Section, Table, Target, seconds, timing_rows
from bench.scenarios import BOTH_WAYS, OURS, OURS_NO_SERVER
from bench.timing import Case, compare

if TYPE_CHECKING:
    from bench.peers import Peer
    from bench.scenarios import Context

GOAL = 0.120
STEPS = 1000


def _dry_run(peer: Peer, folder_argv: str) -> list[str] | None:
    """The peer's way to show what it would run without running it, where it has one."""
    match peer.name:
        case "ci-orchestrator":
            return [*peer.argv, "plan", f"{folder_argv}/playbook.yml"]
        case "make":
            return [*peer.argv, "-n", "-f", f"{folder_argv}/Makefile", "all"]
        case "go-task":
            return [*peer.argv, "--dry", "all"]
        case "doit":
            return [*peer.argv, "list", "--all"]
        case "turbo":
            return [*peer.argv, "run", "step", "--dry=json"]
    return None


def run(context: Context) -> Section:
    section = Section(
        name="startup",
        method=(
            f"`--version` of every tool ({max(context.runs, 10)} runs each), and `plan` of a "
            f"{STEPS:,}-step playbook of independent `true` steps beside the peers' nearest "
            "equivalents: `make -n`, `task --dry`, `doit list --all` (lists tasks, no order), "
            "`turbo run --dry=json`. ci-orchestrator answers `--version` before loading its CLI, "
            "without a run server, so `--version` has one row of ours. `plan`: "
            f"{BOTH_WAYS}"
        ),
    )
    version_cases = [
        Case(name=peer.name, argv=[*peer.argv, "--version"], cwd=context.work, env=peer.env)
        for peer in context.available()
        if peer.name not in tools.LAYER_TOOLS or peer.name == "xargs"
    ]
    versions = compare(version_cases, runs=max(context.runs, 10), log_folder=context.logs / "version")
    rows = timing_rows(versions, context.peers, reference=OURS)
    section.tables.append(Table(title="--version", header=(*TIMING_HEADER, "check"), rows=rows))

    plan_cases = []
    work = workload.noop(STEPS)
    for row in context.rows(tools.CACHING_TOOLS, no_server=True):
        folder = context.work / "startup" / row.folder
        tools.write(row.peer.name, work, folder)
        argv = _dry_run(row.peer, str(folder))
        if argv is not None:
            plan_cases.append(Case(name=row.name, argv=argv, cwd=folder, env=row.env, ready=row.ready))
    plans = compare(plan_cases, runs=context.runs, log_folder=context.logs / "plan")
    rows = timing_rows(plans, context.row_peers, reference=OURS, also=OURS_NO_SERVER)
    title = f"plan / dry run of {STEPS:,} steps"
    section.tables.append(Table(title=title, header=(*BOTH_HEADER, "check"), rows=rows))

    ours = versions.get(OURS)
    met = None if ours is None or not ours.ok else ours.median < GOAL
    measured = seconds(ours.median) if ours else "–"
    section.targets.append(
        Target(goal=f"startup: `--version` under {GOAL * 1000:.0f} ms", met=met, measured=measured)
    )
    for name in (OURS, OURS_NO_SERVER):
        if name in plans:
            section.notes.append(f"{name}: `plan` of {STEPS:,} steps, median {seconds(plans[name].median)}")
    return section
