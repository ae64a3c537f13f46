"""Balancing weighted items across N bins, the shards of a split: the heaviest item first onto
the bin it leaves least loaded (LPT), then moves and swaps between the heaviest bin and another
while they lower it. An item may need shared costs (a setup step): a bin pays each shared cost
once, however many of its items need it.

Knows nothing of steps or graphs: items by index, their weights and the shared costs they need.
The same items give the same bins on every machine: every choice between equals goes to the
lower index.
"""

from __future__ import annotations

import bisect
import heapq
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

# The local search stops after this many evaluated moves and swaps: past a few hundred items
# LPT alone is within a few percent of the best split, and a plan of thousands must stay quick.
SEARCH_BUDGET = 20_000


@dataclass(frozen=True, slots=True, kw_only=True)
class Item:
    """One thing to place: its own weight, and the shared costs (by key) a bin pays once for it."""

    weight: float
    shared: frozenset[int] = frozenset()


@dataclass(slots=True)
class _Bin:
    items: list[int] = field(default_factory=list)
    load: float = 0.0
    uses: dict[int, int] = field(default_factory=dict)  # shared cost -> items here that need it


class _Bins:
    """The bins as they fill: each one's items, load, and how many of its items need each cost."""

    def __init__(self, items: Sequence[Item], costs: Mapping[int, float], count: int) -> None:
        self.items = items
        self.costs = costs
        self.bins = [_Bin() for _ in range(count)]

    def added(self, where: int, item: int, *, leaving: int | None = None) -> float:
        """What `item` adds to bin `where` (once `leaving`, an item of it, is gone)."""
        bin_ = self.bins[where]
        gone = self.items[leaving].shared if leaving is not None else frozenset()
        needed = self.items[item]
        return needed.weight + sum(
            self.costs[cost] for cost in needed.shared if bin_.uses.get(cost, 0) - (cost in gone) <= 0
        )

    def freed(self, where: int, item: int) -> float:
        """What taking `item` out of bin `where` takes off its load."""
        uses = self.bins[where].uses
        gone = self.items[item]
        return gone.weight + sum(self.costs[cost] for cost in gone.shared if uses[cost] == 1)

    def put(self, where: int, item: int) -> None:
        bin_ = self.bins[where]
        bin_.load += self.added(where, item)
        bin_.items.append(item)
        for cost in self.items[item].shared:
            bin_.uses[cost] = bin_.uses.get(cost, 0) + 1

    def take(self, where: int, item: int) -> None:
        bin_ = self.bins[where]
        bin_.load -= self.freed(where, item)
        bin_.items.remove(item)
        for cost in self.items[item].shared:
            bin_.uses[cost] -= 1
            if not bin_.uses[cost]:
                del bin_.uses[cost]

    def loads(self) -> list[float]:
        """Each bin's load summed anew (what `put` and `take` keep may drift by rounding)."""
        return [
            sum(self.items[item].weight for item in bin_.items) + sum(self.costs[cost] for cost in bin_.uses)
            for bin_ in self.bins
        ]


@dataclass(frozen=True, slots=True, kw_only=True)
class Balanced:
    """Each bin's item indexes, in index order, and its load (own weights plus shared costs)."""

    bins: tuple[tuple[int, ...], ...]
    loads: tuple[float, ...]


def balance(
    items: Sequence[Item], costs: Mapping[int, float], count: int, *, search: bool = True
) -> Balanced:
    """`count` bins holding every item once. No bin is left empty while another holds two items.

    Items go heaviest first (own weight plus shared costs) to the bin whose load grows least
    (fewest items, then lowest index, on a tie). Then, unless `search` is off, the heaviest bin
    gives an item to another bin, or swaps one with it, while that lowers it: LPT's worst
    cases (3, 3, 2, 2, 2 on two bins: 7 and 5, where 6 and 6 exist) are mended by one swap.
    When items share costs, a second fill that orders them by their own weight only (so that
    the items of one setup tend to gather where it is paid already) is searched too, and the
    better of the two kept.
    """
    if count < 1:
        raise ValueError(f"bin count must be at least 1, got {count}")

    def alone(item: int) -> float:
        return items[item].weight + sum(costs[cost] for cost in items[item].shared)

    orders = [sorted(range(len(items)), key=lambda item: (-alone(item), item))]
    if search and any(item.shared for item in items):
        orders.append(sorted(range(len(items)), key=lambda item: (-items[item].weight, item)))
    best: tuple[float, list[float], _Bins] | None = None
    for order in orders:
        bins = _fill(items, costs, count, order)
        if search:
            _improve(bins)
        loads = bins.loads()
        if best is None or max(loads) < best[0]:
            best = (max(loads), loads, bins)
    assert best is not None
    _, loads, bins = best
    return Balanced(bins=tuple(tuple(sorted(bin_.items)) for bin_ in bins.bins), loads=tuple(loads))


def _fill(items: Sequence[Item], costs: Mapping[int, float], count: int, order: Sequence[int]) -> _Bins:
    """Each item in `order` to the bin its load grows least (fewest items, then lowest index,
    on a tie: an empty bin is never passed over for one that grows by as little).

    The bins wait in a heap by load: an item adds at least its own weight to any bin, so once a
    bin's load plus that weight passes the best growth found, no bin after it can do better.
    """
    bins = _Bins(items, costs, count)
    waiting = [(0.0, 0, where) for where in range(count)]  # (load, items, bin), a heap
    for item in order:
        own = items[item].weight
        seen: list[tuple[float, int, int]] = []
        best: tuple[float, int, int] | None = None
        while waiting and (best is None or waiting[0][0] + own <= best[0]):
            entry = heapq.heappop(waiting)
            seen.append(entry)
            load, size, where = entry
            key = (load + bins.added(where, item), size, where)
            if best is None or key < best:
                best = key
        assert best is not None
        chosen = best[2]
        bins.put(chosen, item)
        for load, size, where in seen:
            grown = where == chosen
            heapq.heappush(waiting, (bins.bins[where].load if grown else load, size + grown, where))
    return bins


@dataclass(frozen=True, slots=True)
class _Change:
    """Move `item` from the heaviest bin to bin `to` (or swap it with `swapped` there); `pair`
    is the heavier of the two bins' loads after it."""

    pair: float
    item: int
    to: int
    swapped: int | None = None


def _improve(bins: _Bins) -> None:
    """Moves and swaps that lower the heaviest bin, the one that lowers it most first, until
    none does or the search budget is spent."""
    plain = not any(item.shared for item in bins.items)
    budget = [SEARCH_BUDGET]
    count = len(bins.bins)
    while budget[0] > 0:
        heaviest = max(range(count), key=lambda where: (bins.bins[where].load, -where))
        top = bins.bins[heaviest].load
        change = (_plain_change if plain else _shared_change)(bins, heaviest, budget)
        # A change must lower the heaviest bin by more than rounding.
        if change is None or change.pair >= top - 1e-9 * max(top, 1.0):
            return
        bins.take(heaviest, change.item)
        if change.swapped is not None:
            bins.take(change.to, change.swapped)
            bins.put(heaviest, change.swapped)
        bins.put(change.to, change.item)


def _plain_change(bins: _Bins, heaviest: int, budget: list[int]) -> _Change | None:
    """The best change when no item shares a cost: a bin's load is its items' weights, so the
    best partner of an item in another bin is found by bisection (the swap that evens the two
    bins moves half their difference)."""
    weight = [item.weight for item in bins.items]
    top = bins.bins[heaviest].load
    movable = len(bins.bins[heaviest].items) > 1  # a move never leaves a bin empty
    best: _Change | None = None
    for other, bin_ in enumerate(bins.bins):
        if other == heaviest:
            continue
        base = bin_.load
        ranked = sorted(bin_.items, key=lambda item: (weight[item], item))
        weights = [weight[item] for item in ranked]
        for item in bins.bins[heaviest].items:
            budget[0] -= 1
            if budget[0] < 0:
                return best
            if movable:
                pair = max(top - weight[item], base + weight[item])
                if best is None or pair < best.pair:
                    best = _Change(pair=pair, item=item, to=other)
            ideal = weight[item] - (top - base) / 2
            at = bisect.bisect_left(weights, ideal)
            for near in (at - 1, at):
                if 0 <= near < len(ranked):
                    swapped = ranked[near]
                    difference = weight[item] - weight[swapped]
                    pair = max(top - difference, base + difference)
                    if best is None or pair < best.pair:
                        best = _Change(pair=pair, item=item, to=other, swapped=swapped)
    return best


def _shared_change(bins: _Bins, heaviest: int, budget: list[int]) -> _Change | None:
    """The best change when items share costs: every move and swap is weighed."""
    top = bins.bins[heaviest].load
    items = bins.bins[heaviest].items
    movable = len(items) > 1
    freed_here = {item: bins.freed(heaviest, item) for item in items}
    best: _Change | None = None
    for other, bin_ in enumerate(bins.bins):
        if other == heaviest:
            continue
        base = bin_.load
        freed_there = {swapped: bins.freed(other, swapped) for swapped in bin_.items}
        for item in items:
            budget[0] -= 1 + len(bin_.items)
            if budget[0] < 0:
                return best
            if movable:
                pair = max(top - freed_here[item], base + bins.added(other, item))
                if best is None or pair < best.pair:
                    best = _Change(pair=pair, item=item, to=other)
            for swapped in bin_.items:
                here = top - freed_here[item] + bins.added(heaviest, swapped, leaving=item)
                there = base - freed_there[swapped] + bins.added(other, item, leaving=swapped)
                if best is None or max(here, there) < best.pair:
                    best = _Change(pair=max(here, there), item=item, to=other, swapped=swapped)
    return best
