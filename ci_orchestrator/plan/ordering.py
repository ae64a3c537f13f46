"""The order rules: a playbook's step instances lowered into one dependency graph.

Two kinds of edge. Order edges (serial chains, runs of `parallel: true`, `group: N` phases,
`groups:` barriers) wait for completion whatever the result; `needs` edges must succeed.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING

from ci_orchestrator.errors import PlanError, Problem
from ci_orchestrator.plan import graph
from ci_orchestrator.plan.context_reads import read_problems
from ci_orchestrator.playbook.model import Execution
from ci_orchestrator.playbook.references import reference_problems

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

    from ci_orchestrator.playbook.model import Instance, Playbook, Step


@dataclass(frozen=True, kw_only=True)
class Plan:
    """Instances in plan order, what each waits for, and which of those must succeed."""

    playbook: Playbook
    instances: tuple[Instance, ...]
    waits_for: Mapping[str, tuple[str, ...]]
    requires: Mapping[str, frozenset[str]]
    variables: Mapping[str, str] = field(default_factory=dict)
    # The whole plan a selected or sharded one was cut from (`subset`); None for a whole plan.
    # Cache keys are built on its edges, so that a step keeps its key in every such run.
    source: Plan | None = field(default=None, repr=False, compare=False)

    @property
    def whole(self) -> Plan:
        return self.source or self

    def upstream_of(self, nodes: Iterable[str]) -> list[str]:
        """Everything `nodes` wait for, directly or not, in plan order."""
        found = graph.reachable(self.waits_for, nodes)
        return [node for node in self.order if node in found]

    @cached_property
    def by_id(self) -> dict[str, Instance]:
        return {instance.id: instance for instance in self.instances}

    @cached_property
    def order(self) -> list[str]:
        return [instance.id for instance in self.instances]

    def waves(self) -> dict[str, int]:
        """instance id -> its wave, counted from 1 as every view shows it: 1 waits for nothing,
        else one more than its latest wait."""
        return {node: level + 1 for node, level in graph.levels(self.waits_for, self.order).items()}

    def remaining(self, durations: Mapping[str, float]) -> dict[str, float]:
        """instance id -> the longest path from it to the end (its scheduling priority)."""
        return graph.remaining_path(self.waits_for, self.order, lambda node: durations.get(node, 1.0))

    def critical_path(self, durations: Mapping[str, float]) -> tuple[list[str], float]:
        return graph.longest_path(self.waits_for, self.order, lambda node: durations.get(node, 1.0))

    def subset(self, keep: Iterable[str]) -> Plan:
        """The plan of the kept instances; an order kept through dropped ones stays as an edge."""
        kept = set(keep)
        through: dict[str, frozenset[str]] = {}

        def kept_before(node: str) -> frozenset[str]:
            # The nearest kept instances a dropped one waits for, memoised: linear overall.
            if node not in through:
                found: set[str] = set()
                for before in self.waits_for[node]:
                    found.update((before,) if before in kept else kept_before(before))
                through[node] = frozenset(found)
            return through[node]

        waits: dict[str, tuple[str, ...]] = {}
        for node in self.order:
            if node not in kept:
                continue
            befores: dict[str, None] = {}
            for before in self.waits_for[node]:
                for reached in (before,) if before in kept else sorted(kept_before(before)):
                    befores[reached] = None
            waits[node] = tuple(befores)
        return Plan(
            playbook=self.playbook,
            instances=tuple(instance for instance in self.instances if instance.id in kept),
            waits_for=waits,
            requires={node: self.requires[node] & kept for node in waits},
            variables=self.variables,
            source=self.whole,
        )


def build_plan(
    playbook: Playbook, instances: Sequence[Instance], *, variables: Mapping[str, str] | None = None
) -> Plan:
    """Lower SPEC's order rules into the instance graph; check needs, pools and cycles."""
    by_step: dict[str, list[str]] = {}
    for instance in instances:
        by_step.setdefault(instance.step.id, []).append(instance.id)
    steps = [step for step in playbook.steps if step.id in by_step]
    problems = check_order(playbook, steps)
    if problems:
        raise PlanError.from_problems(problems)

    order_edges = _order_edges(playbook, steps)
    waits: dict[str, dict[str, None]] = {instance.id: {} for instance in instances}
    requires: dict[str, set[str]] = {instance.id: set() for instance in instances}
    for step in steps:
        befores = [*order_edges.get(step.id, ()), *step.needs]
        needed = {node for need in step.needs for node in by_step[need]}
        for node in by_step[step.id]:
            for before in befores:
                waits[node].update(dict.fromkeys(by_step[before]))
            requires[node] = needed
    waits_for = {node: tuple(befores) for node, befores in waits.items()}
    # Acyclic: each instance waits for every instance of what its step waits for, and the steps
    # were checked for cycles.
    ordered = graph.topological_order(waits_for)
    by_id = {instance.id: instance for instance in instances}
    return Plan(
        playbook=playbook,
        instances=tuple(by_id[node] for node in ordered),
        waits_for=waits_for,
        requires={node: frozenset(needed) for node, needed in requires.items()},
        variables=dict(variables or playbook.vars),
    )


def check_order(playbook: Playbook, steps: Sequence[Step] | None = None) -> list[Problem]:
    """Every problem of the order rules among `steps` (all the playbook's by default): what
    they name (ids, `needs`, pools: see `references`) and a dependency cycle. The cycle is
    looked for on what is valid only, so that it is never one of broken references: a `needs`
    of an unknown step or of the step itself, and a second step of one id, add no edge, and a
    block whose order could not be read (its `execution`, a step's `parallel` or `group`, or an
    unknown key that may be one of them) has only the waits of `parallel`, which every order
    has (a cycle without serial order is one with it)."""
    steps = playbook.steps if steps is None else steps
    pools = playbook.resources if playbook.read_whole("resources") else None
    problems = reference_problems(steps, pools)
    first: dict[str, Step] = {}
    for step in steps:
        first.setdefault(step.id, step)
    edges = _order_edges(playbook, list(first.values()), unread_as_parallel=True)
    waits = {
        step_id: tuple(
            dict.fromkeys([*edges.get(step_id, ()), *(n for n in step.needs if n in first and n != step_id)])
        )
        for step_id, step in first.items()
    }
    if len(graph.topological_order(waits)) < len(waits):  # only then is a cycle looked for, to be named
        cycle = graph.find_cycle(waits)
        if cycle:
            problems.append(_cycle_problem(cycle, first))
    else:
        problems.extend(read_problems(first, waits))
    return problems


def _order_edges(
    playbook: Playbook, steps: Sequence[Step], *, unread_as_parallel: bool = False
) -> dict[str, list[str]]:
    """step id -> the step ids it waits for by order rules alone (not `needs`); with
    `unread_as_parallel`, a block whose order could not be read is taken as `parallel`."""
    edges: dict[str, list[str]] = {}
    blocks: dict[str | None, list[Step]] = {}
    for step in steps:
        blocks.setdefault(step.block, []).append(step)
    modes: dict[str | None, Execution] = {None: playbook.execution}
    modes |= {group.name: group.execution for group in playbook.groups}
    if unread_as_parallel:
        unread = {block for block, members in blocks.items() if not _order_read(playbook, block, members)}
        modes |= dict.fromkeys(unread, Execution.PARALLEL)
    barrier: list[str] = []  # the sinks of everything before the current block
    for block in [None, *(group.name for group in playbook.groups)]:
        members = blocks.get(block, [])
        if not members:
            continue
        block_edges = _block_edges(members, modes[block])
        for step in members:
            edges[step.id] = block_edges.get(step.id, [])
            if barrier and not edges[step.id]:
                edges[step.id] = list(barrier)
        waited = {before for step in members for before in edges[step.id]}
        waited |= {need for step in members for need in step.needs}
        barrier = [step.id for step in members if step.id not in waited]
    return edges


def _order_read(playbook: Playbook, block: str | None, members: Sequence[Step]) -> bool:
    """Whether the order of a block's steps was read as written: its `execution` and each
    step's `parallel` and `group`, with no problem at the entries that hold them (a misspelt
    `paralel:` is an unknown key of the step)."""
    group = next((group for group in playbook.groups if group.name == block), None)
    holders = [group.path if group else "", *(step.path for step in members if step.path)]
    keys = [f"{group.path}.execution" if group else "execution"]
    keys += [f"{step.path}.{key}" for step in members if step.path for key in ("parallel", "group")]
    return not any(holder in playbook.unread for holder in holders) and all(map(playbook.read_whole, keys))


def _block_edges(members: Sequence[Step], execution: Execution) -> dict[str, list[str]]:
    edges: dict[str, list[str]] = {step.id: [] for step in members}
    if execution is Execution.SERIAL:
        previous: list[str] = []  # what the next step waits for
        run_key: object = None
        run_base: list[str] = []
        run_members: list[str] = []
        for step in members:
            key = (
                ("group", step.group) if step.group is not None else ("parallel",) if step.parallel else None
            )
            if key is not None and key == run_key:
                run_members.append(step.id)
                edges[step.id] = list(run_base)
                continue
            if run_key is not None:
                previous = run_members
            if key is None:
                edges[step.id] = list(previous)
                previous = [step.id]
                run_key = None
            else:
                run_key, run_base, run_members = key, list(previous), [step.id]
                edges[step.id] = list(run_base)
    # `group: N` phases: every step of group N waits for all of the groups below it.
    phases: dict[int, list[str]] = {}
    for step in members:
        if step.group is not None:
            phases.setdefault(step.group, []).append(step.id)
    numbers = sorted(phases)
    for lower, higher in itertools.pairwise(numbers):
        for step_id in phases[higher]:
            edges[step_id] = list(dict.fromkeys([*edges[step_id], *phases[lower]]))
    return edges


def _cycle_problem(cycle: Sequence[str], steps: Mapping[str, Step]) -> Problem:
    """The cycle in waiting order (`a -> b`: a waits for b), from a step whose `needs` makes one
    of its waits (its `needs` is where the problem is shown), naming the waits that come from
    the order rules rather than `needs` (they are not written on the step)."""
    nodes = list(cycle[:-1] if cycle[0] == cycle[-1] else cycle)
    start = next(
        (index for index, node in enumerate(nodes) if nodes[(index + 1) % len(nodes)] in steps[node].needs), 0
    )
    nodes = nodes[start:] + nodes[:start]
    closed = [*nodes, nodes[0]]
    path = " -> ".join(closed)
    implicit = [
        f"'{waiting}' waits for '{before}'"
        for waiting, before in itertools.pairwise(closed)
        if before not in steps[waiting].needs
    ]
    if implicit:
        path += (
            f" ({', '.join(implicit)} by the order rules, not `needs`: serial order, "
            "`group:` phases or the order of `groups:`)"
        )
    first = steps[closed[0]]
    location = first.key_locations.get("needs", first.location)
    return Problem(location=location, path=first.key_path("needs"), message=f"dependency cycle: {path}")
