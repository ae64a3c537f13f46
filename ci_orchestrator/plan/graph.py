"""Generic directed-graph algorithms over hashable nodes: order, cycles, longest paths, components.

Knows nothing of steps. A graph is given as `preds`: node -> the nodes it waits for; every node
is a key, and node order in `preds` is the tie-breaking order everywhere.
"""

from __future__ import annotations

import heapq
from graphlib import CycleError, TopologicalSorter
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence

N = TypeVar("N", bound="Hashable")


def find_cycle(preds: Mapping[N, Iterable[N]]) -> list[N] | None:
    """A cycle as a closed path `[a, b, ..., a]`, or None when the graph is acyclic."""
    try:
        TopologicalSorter(preds).prepare()
    except CycleError as error:
        cycle: list[N] = list(error.args[1])
        cycle.reverse()  # graphlib lists it against the edges; show it in waiting order
        return cycle
    return None


def topological_order(preds: Mapping[N, Sequence[N]]) -> list[N]:
    """Every node after all it waits for; among free nodes, the one listed first goes first.

    In a graph with a cycle, the nodes on it and those after them are left out (`find_cycle`
    names it).
    """
    position = {node: index for index, node in enumerate(preds)}
    waiting = {node: len(set(before)) for node, before in preds.items()}
    succs = successors(preds)
    ready = [position[node] for node, count in waiting.items() if count == 0]
    heapq.heapify(ready)
    nodes = list(preds)
    order: list[N] = []
    while ready:
        node = nodes[heapq.heappop(ready)]
        order.append(node)
        for after in succs[node]:
            waiting[after] -= 1
            if waiting[after] == 0:
                heapq.heappush(ready, position[after])
    return order


def reachable(preds: Mapping[N, Iterable[N]], start: Iterable[N]) -> set[N]:
    """Every node `start` reaches along `preds`, directly or not (a start node only if another
    reaches it)."""
    seen: set[N] = set()
    stack = list(start)
    while stack:
        for before in preds[stack.pop()]:
            if before not in seen:
                seen.add(before)
                stack.append(before)
    return seen


def successors(preds: Mapping[N, Iterable[N]]) -> dict[N, list[N]]:
    """node -> the nodes that wait for it, each once, in the order of `preds`."""
    succs: dict[N, list[N]] = {node: [] for node in preds}
    for node, before in preds.items():
        for earlier in dict.fromkeys(before):
            succs[earlier].append(node)
    return succs


def levels(preds: Mapping[N, Sequence[N]], order: Sequence[N]) -> dict[N, int]:
    """node -> its wave: 0 for nodes that wait for nothing, else one more than its latest wait."""
    level: dict[N, int] = {}
    for node in order:
        level[node] = 1 + max((level[before] for before in preds[node]), default=-1)
    return level


def remaining_path(
    preds: Mapping[N, Sequence[N]], order: Sequence[N], weight: Callable[[N], float]
) -> dict[N, float]:
    """node -> the weight of the heaviest path that starts at it (itself included)."""
    succs = successors(preds)
    remaining: dict[N, float] = {}
    for node in reversed(order):
        remaining[node] = weight(node) + max((remaining[after] for after in succs[node]), default=0.0)
    return remaining


def longest_path(
    preds: Mapping[N, Sequence[N]], order: Sequence[N], weight: Callable[[N], float]
) -> tuple[list[N], float]:
    """The heaviest path through the graph and its weight (the critical path)."""
    if not order:
        return [], 0.0
    remaining = remaining_path(preds, order, weight)
    succs = successors(preds)
    roots = [node for node in order if not preds[node]]
    node = max(roots, key=lambda candidate: remaining[candidate])
    path = [node]
    while succs[node]:
        node = max(succs[node], key=lambda candidate: remaining[candidate])
        path.append(node)
    return path, remaining[path[0]]


def components(preds: Mapping[N, Iterable[N]]) -> list[list[N]]:
    """The weakly connected components, each in `preds` order, ordered by their first node."""
    parent: dict[N, N] = {node: node for node in preds}

    def root(node: N) -> N:
        while parent[node] != node:
            parent[node] = parent[parent[node]]
            node = parent[node]
        return node

    for node, before in preds.items():
        for earlier in before:
            a, b = root(node), root(earlier)
            if a != b:
                parent[b] = a
    groups: dict[N, list[N]] = {}
    for node in preds:
        groups.setdefault(root(node), []).append(node)
    return list(groups.values())


def ordered_against_all(order: Sequence[N], preds: Mapping[N, Sequence[N]]) -> set[N]:
    """The nodes every other node is ordered against (before or after them): nothing can ever run
    beside them, as each step of a serial chain. `order` is topological; sets are int bitmasks."""
    bit = {node: 1 << index for index, node in enumerate(order)}
    before: dict[N, int] = {}
    for node in order:
        mask = 0
        for earlier in preds[node]:
            mask |= before[earlier] | bit[earlier]
        before[node] = mask
    after = dict.fromkeys(order, 0)
    for node in reversed(order):
        for earlier in preds[node]:
            after[earlier] |= after[node] | bit[node]
    everyone = (1 << len(order)) - 1
    return {node for node in order if before[node] | after[node] | bit[node] == everyone}
