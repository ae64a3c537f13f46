"""cache: 200 steps turning `in/N.txt` into `out/N.txt`; cold, warm with nothing changed, 5 changed.

Every step also appends its id to `runs.log`, so each run is checked for which steps really ran:
all on a cold run, none on a warm one, exactly the five whose input changed afterwards. Outputs
are compared with their inputs every time (a cache hit must restore or keep them).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bench import tools, workload
from bench.report import BOTH_HEADER, Section, Table, Target, seconds, timing_rows
from bench.scenarios import BOTH_WAYS, OURS, OURS_NO_SERVER, both, statuses_check, without_server
from bench.timing import Case, compare

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from bench.peers import Peer
    from bench.scenarios import Context
    from bench.timing import Timing

COUNT = 200
CHANGED = 5
CONCURRENCY = 2


def _phase_cases(context: Context, phase: str, folders: dict[str, Path]) -> list[Case]:
    cases = []
    for row in context.rows(tools.CACHING_TOOLS, no_server=True):
        peer = row.peer
        folder = folders[row.name]
        work = workload.cache(folder, COUNT)
        cache_dir = context.work / "cache" / "store" / row.folder
        expected: dict[str, set[str]] = {"runs": set()}
        prepare = _preparer(phase, peer, folder, work, cache_dir, expected)

        def files(work: workload.Workload = work, folder: Path = folder, expected: dict = expected) -> str:
            return workload.check_cache(work, folder, expected["runs"])

        check: Callable[[], str] = files
        if peer.name == OURS:

            def counts(expected: dict = expected) -> dict[str, int]:
                ran = len(expected["runs"])
                return {name: n for name, n in (("passed", ran), ("cached", COUNT - ran)) if n}

            check = both(files, statuses_check(folder, counts))
        argv = tools.command(peer, folder, CONCURRENCY, cache_dir=cache_dir if peer.name == OURS else None)
        case = Case(
            name=row.name, argv=argv, cwd=folder, check=check, prepare=prepare, env=row.env, ready=row.ready
        )
        cases.append(case)
    return cases


def _preparer(
    phase: str,
    peer: Peer,
    folder: Path,
    work: workload.Workload,
    cache_dir: Path,
    expected: dict[str, set[str]],
) -> Callable[[int], None]:
    def prepare(round_number: int) -> None:
        (folder / "runs.log").unlink(missing_ok=True)
        if phase == "cold":
            # A fresh cache for every cold run: the tool's state, our --cache-dir and the outputs.
            tools.forget(peer.name, folder)
            tools.discard(cache_dir)
            expected["runs"] = {job.id for job in work.jobs}
        elif phase == "warm":
            expected["runs"] = set()
        else:
            expected["runs"] = set(workload.change_inputs(folder, work, CHANGED, round_number))

    return prepare


def run(context: Context) -> Section:
    section = Section(
        name="cache",
        method=(
            f"{COUNT} steps, each `tr a-z A-Z < in/N.txt > out/N.txt`, concurrency {CONCURRENCY}. "
            "ci-orchestrator: `inputs`/`outputs` and `--cache-dir` under bench/.work; go-task: "
            "`sources`/`generates` with `method: checksum`; doit: `file_dep`/`targets` (md5); "
            "turbo: per-package `inputs`/`outputs` (content hashes, outputs restored on a hit); "
            "make: mtimes only. Cold: every tool's state removed before each run. Warm: nothing "
            f"changed since the last run. Changed: {CHANGED} different inputs rewritten before each "
            "run. Each run checked through `runs.log` (which steps ran) and every output's content; "
            "ours' also through its run record (steps `passed` and `cached`). Each row of ours has "
            f"its own folder and cache. {BOTH_WAYS}"
        ),
    )
    folders = {}
    for row in context.rows(tools.CACHING_TOOLS, no_server=True):
        folder = context.work / "cache" / row.folder
        work = workload.cache(folder, COUNT)
        tools.write(row.peer.name, work, folder, cache=True)
        workload.write_inputs(folder, work)
        folders[row.name] = folder
    results: dict[str, dict[str, Timing]] = {}
    for phase in ("cold", "warm", "changed"):
        cases = _phase_cases(context, phase, folders)
        results[phase] = compare(cases, runs=context.runs, log_folder=context.logs / f"cache-{phase}")
        rows = timing_rows(results[phase], context.row_peers, reference=OURS, also=OURS_NO_SERVER)
        no_cache = tuple(
            (peer.name, peer.version, "no cache", "–", "–", "–", "not measured")
            for peer in context.available(tools.LAYER_TOOLS)
        )
        title = {"cold": "cold", "warm": "warm, nothing changed", "changed": f"{CHANGED} inputs changed"}[
            phase
        ]
        section.tables.append(Table(title=title, header=(*BOTH_HEADER, "check"), rows=rows + no_cache))
    for phase in ("warm", "changed"):
        section.targets.append(_target(results[phase], phase))
    section.notes += [f"{peer.name}: not installed ({peer.missing})" for peer in context.missing()]
    return section


def _target(timings: dict[str, Timing], phase: str) -> Target:
    goal = f"cache {phase}: no slower than go-task (checksum) and doit"
    ours = timings.get(OURS)
    peers = [timings[name] for name in ("go-task", "doit") if name in timings]
    if ours is None or not ours.ok or not peers or not all(peer.ok for peer in peers):
        return Target(goal=goal, met=None, measured="a tool failed or is missing")
    figures = [f"{t.name} {seconds(t.median)}" for t in peers]
    measured = ", ".join([f"{ours.name} {seconds(ours.median)}{without_server(timings)}", *figures])
    return Target(goal=goal, met=all(ours.median <= peer.median for peer in peers), measured=measured)
