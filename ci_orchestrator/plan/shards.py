"""Sharding: split a graph into N parts of about equal weight so that N machines can share one run.

A part is a weakly connected component: what a node waits for runs on its shard. Nodes marked
to run everywhere (setup steps) are the exception: they do not connect what waits for them, and
each shard runs those its nodes wait for. Knows nothing of steps: nodes, what they wait for,
weights, and the marked nodes.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import TYPE_CHECKING, Generic, TypeVar

from ci_orchestrator.plan.balance import Item, balance
from ci_orchestrator.plan.graph import components, reachable, successors, topological_order

if TYPE_CHECKING:
    from collections.abc import Collection, Hashable, Mapping, Sequence

N = TypeVar("N", bound="Hashable")


@dataclass(frozen=True, slots=True, kw_only=True)
class Parts(Generic[N]):
    """The independent parts of a graph, and what runs beside them.

    `groups`: the parts, each in `preds` order, ordered by first node. `setups[i]`: the marked
    nodes part i waits for (they run on its shard too). `everywhere`: the marked nodes that run
    on every shard that needs them. `tied`: marked nodes that wait for an unmarked node, which
    cannot run everywhere (that node would run on several shards): they are placed as any node
    is, with what they wait for and what waits for them.
    """

    groups: tuple[tuple[N, ...], ...]
    setups: tuple[frozenset[N], ...]
    everywhere: frozenset[N]
    tied: tuple[N, ...]


def independent_parts(preds: Mapping[N, Sequence[N]], marked: Collection[N] = ()) -> Parts[N]:
    """The parts a split keeps whole. A marked node runs everywhere when it waits only for marked
    nodes and something waits for it; it is then left out of the parts, and its edges with it.
    `preds` must be acyclic."""
    marked = set(marked) & preds.keys()
    tied: set[N] = set()
    for node in topological_order(preds):
        if node in marked and any(before not in marked or before in tied for before in preds[node]):
            tied.add(node)
    succs = successors(preds)
    everywhere = frozenset(node for node in preds if node in marked and node not in tied and succs[node])
    rest = {
        node: [before for before in before_list if before not in everywhere]
        for node, before_list in preds.items()
        if node not in everywhere
    }
    groups = tuple(tuple(group) for group in components(rest))
    # What a part waits for beyond itself is everywhere nodes only (their own waits are too).
    setups = tuple(frozenset(reachable(preds, group) & everywhere) for group in groups)
    return Parts(
        groups=groups,
        setups=setups,
        everywhere=everywhere,
        tied=tuple(node for node in preds if node in tied),
    )


def fill_weights(nodes: Sequence[N], known: Mapping[N, float]) -> dict[N, float]:
    """Each node's weight: its known one (never below 0: a shard must not look lighter than it
    is), else the median of the known weights of `nodes` (a count in the same unit), else 1."""
    found = [max(known[node], 0.0) for node in nodes if node in known]
    typical = statistics.median(found) if found else 1.0
    return {node: max(known[node], 0.0) if node in known else typical for node in nodes}


@dataclass(frozen=True, slots=True, kw_only=True)
class Split(Generic[N]):
    """The shards of a split: each one's nodes in `preds` order (its everywhere nodes included;
    a shard may be empty when there are fewer parts than shards) and its load, the sum of the
    weights it runs; and how many independent parts there were."""

    shards: tuple[tuple[N, ...], ...]
    loads: tuple[float, ...]
    parts: int


def split(
    preds: Mapping[N, Sequence[N]], weights: Mapping[N, float], count: int, *, parts: Parts[N] | None = None
) -> Split[N]:
    """`count` shards of the graph, the `parts` (of `independent_parts`, none marked if not
    given) balanced by `weights` (every node has one; see `fill_weights`). Every machine
    computes the same split from the same graph and weights."""
    if count < 1:
        raise ValueError(f"shard count must be at least 1, got {count}")
    found = parts if parts is not None else independent_parts(preds)
    position = {node: index for index, node in enumerate(preds)}
    setup_index = {
        node: index for index, node in enumerate(sorted(found.everywhere, key=position.__getitem__))
    }
    items = [
        Item(
            weight=sum(weights[node] for node in group),
            shared=frozenset(setup_index[node] for node in setups),
        )
        for group, setups in zip(found.groups, found.setups, strict=True)
    ]
    costs = {index: weights[node] for node, index in setup_index.items()}
    balanced = balance(items, costs, count)
    shards = []
    for members in balanced.bins:
        nodes = {node for member in members for node in found.groups[member]}
        nodes.update(node for member in members for node in found.setups[member])
        shards.append(tuple(sorted(nodes, key=position.__getitem__)))
    return Split(shards=tuple(shards), loads=balanced.loads, parts=len(found.groups))
