"""Sharding: split a graph into N parts of about equal weight, each part whole connected components,
so N machines can share one run. Knows nothing of steps: nodes, what they wait for, weights."""

from __future__ import annotations

import heapq
from typing import TYPE_CHECKING

from ci_orchestrator.plan.graph import components

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

DEFAULT_WEIGHT = 1.0


def assign_shards(
    preds: Mapping[str, Sequence[str]], weights: Mapping[str, float], count: int
) -> list[list[str]]:
    """`count` shards (some may be empty) holding every node once, nodes in `preds` order.

    A weakly connected component is never split: what a node waits for runs on its shard.
    Components go heaviest first onto the lightest shard (LPT); equal weights and equal loads are
    decided by first-node order and shard number, so every machine computes the same split from
    the same weights. A node without a weight weighs `DEFAULT_WEIGHT`.
    """
    if count < 1:
        raise ValueError(f"shard count must be at least 1, got {count}")
    position = {node: index for index, node in enumerate(preds)}
    parts = components(preds)
    # Negative or missing weights would let a shard look lighter than it is.
    sizes = [sum(max(weights.get(node, DEFAULT_WEIGHT), 0.0) for node in part) for part in parts]
    heaviest_first = sorted(range(len(parts)), key=lambda part: (-sizes[part], part))
    loads = [(0.0, shard) for shard in range(count)]  # a heap: (load, shard number)
    shards: list[list[str]] = [[] for _ in range(count)]
    for part in heaviest_first:
        load, shard = heapq.heappop(loads)
        shards[shard].extend(parts[part])
        heapq.heappush(loads, (load + sizes[part], shard))
    return [sorted(nodes, key=position.__getitem__) for nodes in shards]
