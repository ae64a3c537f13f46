"""Shards: whole components, balanced by weight, the same split on every machine."""

from __future__ import annotations

import random
from typing import TYPE_CHECKING

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ci_orchestrator.plan.graph import components, reachable
from ci_orchestrator.plan.shards import fill_weights, independent_parts, split

if TYPE_CHECKING:
    from collections.abc import Collection, Mapping, Sequence


def assign_shards(
    preds: Mapping[str, Sequence[str]],
    weights: Mapping[str, float],
    count: int,
    everywhere: Collection[str] = (),
) -> list[list[str]]:
    """The shards' nodes, unknown weights filled as the split fills them."""
    parts = independent_parts(preds, everywhere)
    return [
        list(shard) for shard in split(preds, fill_weights(list(preds), weights), count, parts=parts).shards
    ]


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


def test_unknown_nodes_weigh_the_median_of_the_known_ones() -> None:
    preds = {"long": [], "short": [], "a": [], "b": []}
    # a and b weigh 3 each, the median of 4 and 2: 6 on each shard.
    assert assign_shards(preds, {"long": 4.0, "short": 2.0}, 2) == [["long", "short"], ["a", "b"]]
    assert fill_weights(["x", "y"], {}) == {"x": 1.0, "y": 1.0}  # nothing known: a count
    assert fill_weights(["x", "y"], {"x": -2.0}) == {"x": 0.0, "y": 0.0}


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


# ------------------------------------------------------------------ steps that run everywhere

SETUP = {
    "venv": [],
    **{f"test-{number}": ["venv"] for number in range(1, 7)},
    "lint": [],
}


def test_a_setup_step_runs_in_every_shard_and_does_not_tie_what_waits_for_it() -> None:
    shards = assign_shards(SETUP, {}, 3, everywhere=["venv"])
    assert all(shard[0] == "venv" for shard in shards), shards
    tests = [node for shard in shards for node in shard if node.startswith("test-")]
    assert sorted(tests) == [f"test-{number}" for number in range(1, 7)]
    assert sum(shard.count("lint") for shard in shards) == 1
    assert [len(shard) for shard in shards] == [4, 3, 3]  # the setup, two tests each, and lint


def test_without_the_mark_the_setup_ties_everything_waiting_for_it() -> None:
    parts = independent_parts(SETUP)
    assert [len(group) for group in parts.groups] == [7, 1]
    assert independent_parts(SETUP, ["venv"]).groups == (*((f"test-{n}",) for n in range(1, 7)), ("lint",))


def test_each_shard_runs_the_setups_its_steps_wait_for_and_no_other() -> None:
    preds = {
        "node": [],
        "venv": [],
        "app": ["node"],
        "ui-test": ["app"],
        "py-test": ["venv"],
        "both": ["venv", "node"],
    }
    parts = independent_parts(preds, ["node", "venv", "app"])
    assert parts.everywhere == {"node", "venv", "app"}
    assert parts.groups == (("ui-test",), ("py-test",), ("both",))
    assert parts.setups == (frozenset({"node", "app"}), frozenset({"venv"}), frozenset({"venv", "node"}))
    shards = assign_shards(preds, {"node": 1, "venv": 1, "app": 1}, 3, everywhere=["node", "venv", "app"])
    assert sorted(shards) == [["node", "app", "ui-test"], ["node", "venv", "both"], ["venv", "py-test"]]


def test_steps_that_also_wait_for_each_other_stay_together() -> None:
    preds = {**SETUP, "test-2": ["venv", "test-1"]}
    parts = independent_parts(preds, ["venv"])
    assert ("test-1", "test-2") in parts.groups


def test_a_marked_step_that_waits_for_an_unmarked_one_is_placed_as_any_step() -> None:
    preds = {"checkout": [], "venv": ["checkout"], "more": ["venv"], "test": ["more"], "lint": []}
    parts = independent_parts(preds, ["venv", "more"])
    assert parts.tied == ("venv", "more")
    assert not parts.everywhere
    assert parts.groups == (("checkout", "venv", "more", "test"), ("lint",))


def test_a_marked_step_nothing_waits_for_runs_in_one_shard() -> None:
    preds = {"warm-up": [], "a": [], "b": []}
    parts = independent_parts(preds, ["warm-up"])
    assert not parts.everywhere
    shards = assign_shards(preds, {}, 3, everywhere=["warm-up"])
    assert shards == [["warm-up"], ["a"], ["b"]]


def test_a_setup_is_counted_in_each_load_that_runs_it() -> None:
    weights = {"venv": 10.0, **{f"test-{number}": 1.0 for number in range(1, 7)}, "lint": 3.0}
    result = split(SETUP, weights, 3, parts=independent_parts(SETUP, ["venv"]))
    assert result.parts == 7
    # A setup this long is best paid twice: lint alone, and three tests beside each setup.
    assert result.shards[0] == ("lint",)
    assert result.loads == (3.0, 13.0, 13.0)
    for shard, load in zip(result.shards, result.loads, strict=True):
        assert load == sum(weights[node] for node in shard)


def test_empty_shards_are_the_last_ones() -> None:
    result = split(SETUP, fill_weights(list(SETUP), {}), 9, parts=independent_parts(SETUP, ["venv"]))
    assert [bool(shard) for shard in result.shards] == [True] * 7 + [False] * 2


@given(graphs, st.data())
def test_marked_nodes_run_where_they_are_waited_for_and_the_rest_once(
    case: tuple[list[str], list[tuple[int, int]], list[float], int], data: st.DataObject
) -> None:
    nodes, edges, values, count = case
    preds: dict[str, list[str]] = {node: [] for node in nodes}
    for later, earlier in edges:
        if later > earlier:
            preds[nodes[later]].append(nodes[earlier])
    marked = data.draw(st.sets(st.sampled_from(nodes)))
    weights = dict(zip(nodes, values, strict=True))
    parts = independent_parts(preds, marked)
    result = split(preds, weights, count, parts=parts)
    assert result == split(preds, weights, count, parts=independent_parts(preds, marked))
    placed = [node for shard in result.shards for node in shard if node not in parts.everywhere]
    assert sorted(placed) == sorted(set(nodes) - parts.everywhere)
    for shard in result.shards:
        # Everything a shard's nodes wait for runs there too, and nothing else of the marked.
        assert reachable(preds, shard) <= set(shard)
        own = [node for node in shard if node not in parts.everywhere]
        assert set(shard) & parts.everywhere == reachable(preds, own) & parts.everywhere
        assert list(shard) == [node for node in nodes if node in shard]
