"""How a plan looks to a reader: waves as text, SPEC's JSON, a mermaid flowchart, a GitHub matrix."""

from __future__ import annotations

import json
from enum import Enum
from typing import TYPE_CHECKING, Any

from ci_orchestrator import notices

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from ci_orchestrator.plan.ordering import Plan
    from ci_orchestrator.playbook.model import Instance


MAX_MATRIX_JOBS = 256  # GitHub makes at most 256 jobs of one matrix


class PlanFormat(Enum):
    TEXT = "text"
    JSON = "json"
    MERMAID = "mermaid"
    GITHUB_MATRIX = "github-matrix"


def instance_timeout(plan: Plan, instance: Instance, default_timeout: float | None) -> float | None:
    if instance.timeout is not None:
        return instance.timeout
    return default_timeout if default_timeout is not None else plan.playbook.timeout


def as_json(
    plan: Plan,
    *,
    cache_status: Mapping[str, str | None],
    default_timeout: float | None = None,
) -> dict[str, Any]:
    waves = plan.waves()
    return {
        "playbook": plan.playbook.name,
        "instances": [
            {
                "id": instance.id,
                "step": instance.step.id,
                "name": instance.name,
                "matrix": dict(instance.matrix),
                "needs": list(plan.waits_for[instance.id]),
                "resources": dict(instance.step.resources),
                "exclusive": instance.step.allow_parallel is False,
                "timeout": instance_timeout(plan, instance, default_timeout),
                "wave": waves[instance.id],
                "cache": cache_status.get(instance.id),
                "stage": instance.step.stage,
                "group": instance.step.block,
            }
            for instance in plan.instances
        ],
    }


def render_json(plan: Plan, *, cache_status: Mapping[str, str | None], default_timeout: float | None) -> str:
    """SPEC's object with one instance per line: easy to grep and diff, and written by json's C
    encoder (any `indent` falls back to the pure-Python one, several times slower on big plans)."""
    document = as_json(plan, cache_status=cache_status, default_timeout=default_timeout)
    instances = document.pop("instances")
    head = json.dumps(document)[:-1]
    if not instances:
        return f'{head}, "instances": []}}'
    body = ",\n".join(f"  {json.dumps(instance)}" for instance in instances)
    return f'{head}, "instances": [\n{body}\n]}}'


def render_text(
    plan: Plan,
    *,
    cache_status: Mapping[str, str | None],
    default_timeout: float | None,
    at_once: int | None = None,
) -> str:
    waves = plan.waves()
    by_wave: dict[int, list[Instance]] = {}
    for instance in plan.instances:
        by_wave.setdefault(waves[instance.id], []).append(instance)
    count, wave_count = len(plan.instances), len(by_wave)
    lines = [
        f"{plan.playbook.name}: {count} step instance{'s' * (count != 1)} "
        f"in {wave_count} wave{'s' * (wave_count != 1)}"
    ]
    for wave in sorted(by_wave):
        members = by_wave[wave]
        lines.append(f"\nwave {wave}  ({_together(members, at_once)})")
        for instance in members:
            notes = []
            if plan.waits_for[instance.id]:
                notes.append("after " + ", ".join(plan.waits_for[instance.id]))
            if instance.step.allow_parallel is False:
                notes.append("exclusive")
            if instance.step.resources:
                notes.append("pools " + ", ".join(f"{k}:{v}" for k, v in instance.step.resources.items()))
            timeout = instance_timeout(plan, instance, default_timeout)
            if timeout is not None:
                notes.append(f"timeout {timeout:g}s")
            cached = cache_status.get(instance.id)
            if cached:
                notes.append(f"cache: {cached}")
            suffix = f"  [{'; '.join(notes)}]" if notes else ""
            lines.append(f"  {instance.id}{suffix}")
    return "\n".join(lines)


def _together(members: Sequence[Instance], at_once: int | None) -> str:
    """`3 may run together`, `1 instance`: an exclusive step runs by itself whatever its wave, and
    no more than `at_once` (the run's concurrency, 1 with `--sequential`) run at a time."""
    alone = sum(instance.step.allow_parallel is False for instance in members)
    shared = len(members) - alone
    if len(members) == 1:  # it may still run beside a step of another wave, unless exclusive
        return "exclusive: runs alone" if alone else "1 instance"
    if shared <= 1 or at_once == 1:
        return "each runs alone"
    together = (
        f"{shared} may run together"
        if at_once is None or shared <= at_once
        else f"{shared} ready together, {at_once} at a time"
    )
    if not alone:
        return together
    return f"{together}, {alone} exclusive {'runs' if alone == 1 else 'run'} alone"


# What each mark of the flowchart means, drawn beside it: an arrow of each kind, the shape of an
# exclusive step. Each is shown only when the chart has one.
_LEGEND = {
    "-->": '    legend_a["A"] -->|needs| legend_b["B: runs only if A passed"]',
    "-.->": '    legend_c["C"] -.->|order| legend_d["D: waits for C, whatever its result"]',
    "exclusive": '    legend_e[["exclusive: runs alone"]]',
}


def render_mermaid(plan: Plan) -> str:
    """A `flowchart` GitHub renders: one node per instance, one arrow per wait (solid for
    `needs`, dotted for order alone), and a legend of the marks used."""
    node_ids = {instance.id: f"n{index}" for index, instance in enumerate(plan.instances)}
    lines = ["flowchart TD"]
    used: set[str] = set()
    for instance in plan.instances:
        # Mermaid reads `#name;` as an entity: a literal `#` goes first, as its own code.
        label = (
            instance.id.replace("#", "#35;").replace('"', "#quot;").replace("<", "#lt;").replace(">", "#gt;")
        )
        if instance.step.allow_parallel is False:
            used.add("exclusive")
            lines.append(f'  {node_ids[instance.id]}[["{label}"]]')
        else:
            lines.append(f'  {node_ids[instance.id]}["{label}"]')
    for instance in plan.instances:
        for before in plan.waits_for[instance.id]:
            arrow = "-->" if before in plan.requires[instance.id] else "-.->"
            used.add(arrow)
            lines.append(f"  {node_ids[before]} {arrow} {node_ids[instance.id]}")
    if used:
        lines += ['  subgraph legend["legend"]', "    direction LR"]
        lines += [line for mark, line in _LEGEND.items() if mark in used]
        lines.append("  end")
    return "\n".join(lines)


def render_github_matrix(
    plan: Plan,
    *,
    shards: Sequence[Sequence[str]] | None,
) -> str:
    """The JSON for `strategy.matrix: ${{ fromJSON(...) }}`: one entry per shard, or per instance.

    More entries than GitHub runs jobs of one matrix are still written, with a warning.
    """
    if shards is not None:
        count = len(shards)
        include = [
            {"shard": f"{index}/{count}", "name": f"shard {index} of {count}", "steps": len(members)}
            for index, members in enumerate(shards, start=1)
        ]
    else:
        include = [{"instance": instance.id, "select": instance.id} for instance in plan.instances]
    if len(include) > MAX_MATRIX_JOBS:
        notices.warn(
            f"{len(include)} matrix entries: GitHub runs at most {MAX_MATRIX_JOBS} jobs of one matrix"
            f" and fails the workflow; use --shards {MAX_MATRIX_JOBS} or fewer"
        )
    return json.dumps({"include": include})
