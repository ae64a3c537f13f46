"""Shards: whole components, balanced by weight, the same split on every machine."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ci_orchestrator.plan.graph import components
from ci_orchestrator.plan.shards import assign_shards


def test_connected_nodes_stay_on_one_shard() -> None:
    preds = {
        "install": [],
        "lint": ["install"],
        "test": ["install"],
        "docs": [],
        "build": [],
        "pack": ["build"],
    }
    weights = {"install": 1, "lint": 1, "test": 1, "docs": 3, "build": 1, "pack": 1}
    assert assign_shards(preds, weights, 3) == [["install", "lint", "test"], ["docs"], ["build", "pack"]]


def test_heaviest_parts_go_first_onto_the_lightest_shard() -> None:
    preds = {name: [] for name in "abcdef"}
    weights = {"a": 1, "b": 2, "c": 3, "d": 4, "e": 5, "f": 6}
    shards = assign_shards(preds, weights, 2)
    # f, e, then d onto e's shard, c onto f's, b on the tie to shard 1, a onto the lighter
    assert shards == [["b", "c", "f"], ["a", "d", "e"]]
    assert [sum(weights[node] for node in shard) for shard in shards] == [11, 10]


def test_ties_follow_node_order_and_shard_number() -> None:
    preds = {name: [] for name in ["w", "x", "y", "z"]}
    assert assign_shards(preds, {}, 2) == [["w", "y"], ["x", "z"]]
    assert assign_shards(preds, {}, 2) == assign_shards(dict(preds), {}, 2)


def test_unknown_nodes_weigh_one() -> None:
    preds = {"long": [], "a": [], "b": [], "c": []}
    assert assign_shards(preds, {"long": 3.0}, 2) == [["long"], ["a", "b", "c"]]


def test_more_shards_than_parts_leaves_some_empty() -> None:
    preds = {"a": [], "b": ["a"]}
    assert assign_shards(preds, {}, 3) == [["a", "b"], [], []]


def test_a_shard_count_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        assign_shards({"a": []}, {}, 0)


def test_the_shards_together_are_the_whole_graph_each_node_once() -> None:
    preds = {f"n{number}": ([f"n{number - 1}"] if number % 3 else []) for number in range(12)}
    shards = assign_shards(preds, {}, 4)
    chosen = [node for shard in shards for node in shard]
    assert sorted(chosen) == sorted(preds)
    assert shards[1] == ["n3", "n4", "n5"]  # `--shard 2/4`


@pytest.mark.parametrize("count", [2, 3, 4])
def test_thirty_random_weights_balance_within_ten_percent(count: int) -> None:
    for seed in range(20):
        rng = random.Random(seed)
        weights = {f"n{number}": rng.uniform(1, 100) for number in range(30)}
        shards = assign_shards({node: [] for node in weights}, weights, count)
        loads = [sum(weights[node] for node in shard) for shard in shards]
        assert max(loads) / min(loads) < 1.1


graphs = st.integers(min_value=1, max_value=25).flatmap(
    lambda size: st.tuples(
        st.just([f"n{number}" for number in range(size)]),
        st.lists(st.tuples(st.integers(0, size - 1), st.integers(0, size - 1)), max_size=size),
        st.lists(st.floats(min_value=0, max_value=1000), min_size=size, max_size=size),
        st.integers(min_value=1, max_value=6),
    )
)


@given(graphs)
def test_every_node_is_on_exactly_one_shard_with_its_component(
    case: tuple[list[str], list[tuple[int, int]], list[float], int],
) -> None:
    nodes, edges, values, count = case
    preds: dict[str, list[str]] = {node: [] for node in nodes}
    for later, earlier in edges:
        if later > earlier:
            preds[nodes[later]].append(nodes[earlier])
    weights = dict(zip(nodes, values, strict=True))
    shards = assign_shards(preds, weights, count)
    assert len(shards) == count
    placed = [node for shard in shards for node in shard]
    assert sorted(placed) == sorted(nodes)
    home = {node: index for index, shard in enumerate(shards) for node in shard}
    for part in components(preds):
        assert len({home[node] for node in part}) == 1
    for shard in shards:
        assert shard == [node for node in nodes if node in shard]
    assert assign_shards(preds, weights, count) == shards
