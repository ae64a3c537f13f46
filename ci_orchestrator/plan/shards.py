"""Sharding: split a graph into N parts of about equal weight, each part whole connected components,
so N machines can share one run. Knows nothing of steps: nodes, what they wait for, weights."""

from __future__ import annotations

import heapq
import re
from typing import TYPE_CHECKING

from ci_orchestrator.errors import UsageError
from ci_orchestrator.plan.graph import components

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

DEFAULT_WEIGHT = 1.0

MAX_SHARDS = 256
"""The most shards a run is split into: as many jobs as GitHub makes of one matrix (and the
`export` and `plan` commands split into), and a bound on the parts a split holds in memory."""

_SHARD = re.compile(r"\s*([0-9]+)\s*/\s*([0-9]+)\s*")


def parse_shard(text: str) -> tuple[int, int]:
    """`I/N` -> (I, N), with 1 <= I <= N <= MAX_SHARDS; anything else is a UsageError."""
    shown = text if len(text) <= 40 else f"{text[:37]}..."
    match = _SHARD.fullmatch(text)
    if match is None:
        raise UsageError(f"invalid shard {shown!r}: expected I/N, such as 2/3", path="--shard")
    # Python refuses to read thousands of digits as an int: a number that long is too big anyway.
    index, count = (int(part) if len(part.lstrip("0")) <= 9 else MAX_SHARDS + 1 for part in match.groups())
    if count > MAX_SHARDS:
        raise UsageError(f"invalid shard {shown!r}: N must be at most {MAX_SHARDS}", path="--shard")
    if count < 1 or not 1 <= index <= count:
        raise UsageError(
            f"invalid shard {shown!r}: I must be between 1 and N, and N at least 1", path="--shard"
        )
    return index, count


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
