"""The work every tool is given, described once: jobs, their needs, files, and how to check a run.

A job's command is a POSIX shell line that names files by absolute path, so it means the same
thing whichever folder a tool runs it from (turbo runs each package's script from that
package's folder). Each check reads what the jobs left behind, so a tool that is fast because
it skipped or misordered work is reported as wrong.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path


@dataclass(frozen=True, slots=True, kw_only=True)
class Job:
    """One step: a shell line, the jobs it needs, and the files that key its cache."""

    id: str
    command: str
    needs: tuple[str, ...] = ()
    inputs: tuple[str, ...] = ()  # relative to the tool's folder
    outputs: tuple[str, ...] = ()
    seconds: float = 0.0  # the time it sleeps, for the lower bound of a DAG


@dataclass(frozen=True, slots=True, kw_only=True)
class Workload:
    """A named set of jobs. `layers` groups them for tools without dependencies (xargs, parallel)."""

    name: str
    jobs: tuple[Job, ...]
    layers: tuple[tuple[str, ...], ...]


def noop(count: int) -> Workload:
    """`count` independent steps of `true`."""
    jobs = tuple(Job(id=f"s{index}", command="true") for index in range(count))
    return Workload(name=f"noop{count}", jobs=jobs, layers=(tuple(job.id for job in jobs),))


def dag(folder: Path, *, count: int = 60, layers: int = 6, seed: int = 1) -> Workload:
    """`count` steps in `layers` layers, each sleeping 0.05–0.3 s and needing 1–3 earlier steps.

    Every step writes `start ID` and `end ID` lines to `folder/order.log`, which `check_order`
    reads back.
    """
    rng = random.Random(seed)
    log = folder / "order.log"
    per_layer = count // layers
    ids = [[f"d{layer}_{index}" for index in range(per_layer)] for layer in range(layers)]
    jobs = []
    for layer, names in enumerate(ids):
        earlier = [name for previous in ids[:layer] for name in previous]
        for name in names:
            needs = tuple(sorted(rng.sample(earlier, rng.randint(1, 3)))) if earlier else ()
            seconds = round(rng.uniform(0.05, 0.3), 3)
            command = f"echo 'start {name}' >> {log}; sleep {seconds}; echo 'end {name}' >> {log}"
            jobs.append(Job(id=name, command=command, needs=needs, seconds=seconds))
    return Workload(name="dag", jobs=tuple(jobs), layers=tuple(tuple(names) for names in ids))


def cache(folder: Path, count: int = 200) -> Workload:
    """`count` steps, each turning `in/N.txt` into `out/N.txt` and noting in `runs.log` that it ran."""
    jobs = tuple(
        Job(
            id=f"c{index}",
            command=(
                f"mkdir -p {folder}/out && tr a-z A-Z < {folder}/in/{index}.txt > {folder}/out/{index}.txt"
                f" && echo c{index} >> {folder}/runs.log"
            ),
            inputs=(f"in/{index}.txt",),
            outputs=(f"out/{index}.txt",),
        )
        for index in range(count)
    )
    return Workload(name="cache", jobs=jobs, layers=(tuple(job.id for job in jobs),))


# `yes` dies of SIGPIPE when `head` has had enough; `|| true` keeps that from failing the step
# under bash's pipefail (GitHub's default shell, and ours).
ONE_GIGABYTE = 1 << 30
LINE = "x" * 99


def output(size: int = ONE_GIGABYTE) -> Workload:
    """One step printing `size` bytes in 100-byte lines."""
    job = Job(id="big", command=f"{{ yes {LINE} || true; }} | head -c {size}")
    return Workload(name="output", jobs=(job,), layers=(("big",),))


def write_inputs(folder: Path, workload: Workload) -> None:
    """Create every job's input file with distinct content."""
    for job in workload.jobs:
        for name in job.inputs:
            path = folder / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(f"input of {job.id}\n")


def change_inputs(folder: Path, workload: Workload, count: int, round_number: int) -> tuple[str, ...]:
    """Change the content of `count` jobs' inputs (different jobs each round); their ids."""
    jobs = [job for job in workload.jobs if job.inputs]
    start = (round_number * count) % len(jobs)
    chosen = [jobs[(start + offset) % len(jobs)] for offset in range(count)]
    for job in chosen:
        for name in job.inputs:
            path = folder / name
            path.write_text(path.read_text() + f"changed in round {round_number}\n")
    return tuple(job.id for job in chosen)


def bound(workload: Workload, concurrency: int) -> float:
    """The least makespan any scheduler can reach: max(critical path, total work / concurrency)."""
    longest: dict[str, float] = {}
    for job in workload.jobs:  # jobs come in layer order: every need is already measured
        longest[job.id] = job.seconds + max((longest[need] for need in job.needs), default=0.0)
    total = sum(job.seconds for job in workload.jobs)
    return max(max(longest.values(), default=0.0), total / concurrency)


def check_order(workload: Workload, log: Path) -> str:
    """Why the order log is wrong (every job once, each after all it needs), or "" when it is right."""
    if not log.exists():
        return "no step wrote the order log"
    # Tokens, not lines: go-task's built-in shell writes `echo`'s text and its newline apart, so
    # lines of steps running at once may be spliced; each token is still one write.
    events = [" ".join(match) for match in re.findall(r"(start|end) (d\d+_\d+)", log.read_text())]
    position = {event: index for index, event in enumerate(events)}
    if len(position) != len(events):
        return "a step ran more than once"
    for job in workload.jobs:
        start, end = position.get(f"start {job.id}"), position.get(f"end {job.id}")
        if start is None or end is None:
            return f"{job.id} did not run to its end"
        for need in job.needs:
            if position.get(f"end {need}", len(events)) > start:
                return f"{job.id} started before {need} ended"
    return ""


def check_cache(workload: Workload, folder: Path, expected_runs: set[str]) -> str:
    """Why a cache run is wrong (outputs, or which steps ran), or "" when it is right."""
    runs_log = folder / "runs.log"
    ran = re.findall(r"c\d+", runs_log.read_text()) if runs_log.exists() else []  # tokens: see check_order
    if sorted(ran) != sorted(expected_runs):
        extra, missed = set(ran) - expected_runs, expected_runs - set(ran)
        return (
            f"{len(ran)} steps ran, expected {len(expected_runs)} (extra {len(extra)}, missed {len(missed)})"
        )
    for job in workload.jobs:
        for source, target in zip(job.inputs, job.outputs, strict=True):
            produced = folder / target
            if not produced.exists() or produced.read_text() != (folder / source).read_text().upper():
                return f"{target} is missing or stale"
    return ""
