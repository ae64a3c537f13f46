"""Balancing: LPT, mended by moves and swaps, measured against the best split there is."""

from __future__ import annotations

import random

import pytest

from bench.shards import optimum, random_case, small_cases
from ci_orchestrator.plan.balance import Item, balance


def items_of(*weights: float) -> list[Item]:
    return [Item(weight=weight) for weight in weights]


def test_lpts_classic_worst_case_is_mended_by_a_swap() -> None:
    items = items_of(3, 3, 2, 2, 2)
    assert max(balance(items, {}, 2, search=False).loads) == 7  # LPT: 3+2+2 and 3+2
    mended = balance(items, {}, 2)
    assert mended.loads == (6, 6)
    assert sorted(mended.bins) == [(0, 1), (2, 3, 4)]


def test_a_shared_cost_is_paid_once_per_bin_that_needs_it() -> None:
    items = [Item(weight=1, shared=frozenset({0})), Item(weight=1, shared=frozenset({0})), Item(weight=5)]
    result = balance(items, {0: 4}, 2)
    assert result.bins == ((2,), (0, 1))
    assert result.loads == (5, 6)


def test_items_of_a_costly_setup_gather_where_it_is_paid() -> None:
    """From the random cases where LPT alone paid a setup twice: the items that need it are
    best on one bin, the others spread over the rest."""
    items = [
        *items_of(0.17, 0.42, 2.51, 3.08, 0.97),
        Item(weight=0.89, shared=frozenset({0})),
        *items_of(0.71),
        Item(weight=0.41, shared=frozenset({0})),
        *items_of(0.72),
    ]
    costs = {0: 3.09}
    best = optimum(items, costs, 3)
    assert max(balance(items, costs, 3, search=False).loads) > 1.2 * best
    result = balance(items, costs, 3)
    assert max(result.loads) == pytest.approx(best)
    assert any({5, 7} <= set(bin_) for bin_ in result.bins)


def test_no_bin_is_empty_while_another_holds_two() -> None:
    rng = random.Random(3)
    for _ in range(200):
        items, costs, count = random_case(rng)
        sizes = [len(bin_) for bin_ in balance(items, costs, count).bins]
        assert min(sizes) > 0 or max(sizes) <= 1, sizes
        assert sorted(item for bin_ in balance(items, costs, count).bins for item in bin_) == list(
            range(len(items))
        )


def test_the_same_items_give_the_same_bins() -> None:
    rng = random.Random(5)
    for _ in range(50):
        items, costs, count = random_case(rng)
        assert balance(items, costs, count) == balance(list(items), dict(costs), count)


def test_the_split_is_close_to_the_best_one() -> None:
    """On 300 small random cases: never worse than LPT alone, on average within 1% of the best
    split, and within LPT's bound for two to four bins (4/3 - 1/(3m)) where no costs are shared."""
    lpt, ours = small_cases(cases=300, seed=11)
    assert ours.mean <= lpt.mean
    assert ours.mean < 1.01
    assert ours.best_found > 0.8
    rng = random.Random(13)
    for _ in range(300):
        items, costs, count = random_case(rng)
        if costs:
            continue
        assert (
            max(balance(items, costs, count).loads)
            <= (4 / 3 - 1 / (3 * count)) * optimum(items, costs, count) + 1e-9
        )


def test_a_bin_count_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        balance(items_of(1), {}, 0)
