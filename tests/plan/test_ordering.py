"""The order rules, lowered into the instance graph."""

from __future__ import annotations

import pytest

from ci_orchestrator.errors import PlanError
from ci_orchestrator.plan.ordering import build_plan
from ci_orchestrator.playbook.model import Execution, Group
from tests.helpers import instances, playbook, step


def waits(book):  # type: ignore[no-untyped-def]
    plan = build_plan(book, instances(book))
    return {node: list(befores) for node, befores in plan.waits_for.items()}


def test_serial_steps_wait_for_the_one_before() -> None:
    assert waits(playbook(step("a"), step("b"), step("c"))) == {"a": [], "b": ["a"], "c": ["b"]}


def test_a_run_of_parallel_steps_starts_together_and_the_next_waits_for_all() -> None:
    book = playbook(step("a"), step("b", parallel=True), step("c", parallel=True), step("d"))
    assert waits(book) == {"a": [], "b": ["a"], "c": ["a"], "d": ["b", "c"]}


def test_parallel_run_at_the_start_waits_for_nothing() -> None:
    book = playbook(step("a", parallel=True), step("b", parallel=True), step("c"))
    assert waits(book) == {"a": [], "b": [], "c": ["a", "b"]}


def test_parallel_execution_only_follows_needs() -> None:
    book = playbook(step("a"), step("b"), step("c", needs=("a",)), execution=Execution.PARALLEL)
    plan = build_plan(book, instances(book))
    assert dict(plan.waits_for) == {"a": (), "b": (), "c": ("a",)}
    assert plan.requires["c"] == frozenset({"a"})


def test_needs_add_edges_in_serial_execution_too() -> None:
    book = playbook(step("a"), step("b"), step("c", needs=("a",)))
    assert waits(book)["c"] == ["b", "a"]


def test_group_phases_wait_for_every_lower_phase() -> None:
    book = playbook(
        step("v1", group=1),
        step("v2", group=1),
        step("d1", group=2),
        step("d2", group=2),
        execution=Execution.PARALLEL,
    )
    assert waits(book) == {"v1": [], "v2": [], "d1": ["v1", "v2"], "d2": ["v1", "v2"]}


def test_group_phases_in_serial_execution_run_together() -> None:
    book = playbook(step("init"), step("v1", group=1), step("v2", group=1), step("d1", group=2), step("end"))
    assert waits(book) == {
        "init": [],
        "v1": ["init"],
        "v2": ["init"],
        "d1": ["v1", "v2"],
        "end": ["d1"],
    }


def test_groups_run_after_top_level_steps_and_in_order() -> None:
    book = playbook(
        step("setup"),
        step("lint", block="checks"),
        step("types", block="checks"),
        step("deploy", block="ship"),
        step("notify", block="ship"),
        groups=(
            Group(
                name="checks",
                location=step("x").location,
                execution=Execution.PARALLEL,
                step_ids=("lint", "types"),
            ),
            Group(name="ship", location=step("x").location, step_ids=("deploy", "notify")),
        ),
    )
    assert waits(book) == {
        "setup": [],
        "lint": ["setup"],
        "types": ["setup"],
        "deploy": ["lint", "types"],
        "notify": ["deploy"],
    }


def test_unknown_need_is_an_error_with_a_suggestion() -> None:
    book = playbook(step("install"), step("test", needs=("instal",)))
    with pytest.raises(PlanError, match=r"unknown step 'instal' \(did you mean 'install'\?\)"):
        build_plan(book, instances(book))


def test_a_cycle_is_an_error_that_names_its_steps() -> None:
    book = playbook(
        step("a", needs=("c",)),
        step("b", needs=("a",)),
        step("c", needs=("b",)),
        execution=Execution.PARALLEL,
    )
    with pytest.raises(PlanError, match="dependency cycle") as caught:
        build_plan(book, instances(book))
    message = str(caught.value)
    assert all(name in message for name in ("a", "b", "c"))


def test_a_cycle_through_the_order_rules_says_which_wait_they_made() -> None:
    # Serial order makes `b` wait for `a`; `a` needs `b`.
    book = playbook(step("a", needs=("b",)), step("b"))
    with pytest.raises(PlanError) as caught:
        build_plan(book, instances(book))
    assert str(caught.value).endswith(
        "dependency cycle: a -> b -> a ('b' waits for 'a' by the order rules, not `needs`: "
        "serial order, `group:` phases or the order of `groups:`)"
    )


def test_unknown_pool_and_too_small_pool_are_errors() -> None:
    book = playbook(step("a", resources={"gpu": 1}), step("b", resources={"db": 3}), resources={"db": 2})
    with pytest.raises(PlanError) as caught:
        build_plan(book, instances(book))
    lines = caught.value.lines()
    assert any("unknown resource pool 'gpu'" in line for line in lines)
    assert any("pool 'db', which holds 2" in line for line in lines)


def test_critical_path_defaults_to_one_per_instance_and_uses_known_durations() -> None:
    book = playbook(
        step("a"), step("b", needs=("a",)), step("c"), step("d", needs=("b",)), execution=Execution.PARALLEL
    )
    plan = build_plan(book, instances(book))
    assert plan.critical_path({}) == (["a", "b", "d"], 3.0)
    assert plan.critical_path({"c": 10.0})[0] == ["c"]


def test_plan_order_is_topological_and_stable() -> None:
    book = playbook(step("late", needs=("early",)), step("early"), execution=Execution.PARALLEL)
    assert build_plan(book, instances(book)).order == ["early", "late"]


def test_subset_keeps_order_through_dropped_steps() -> None:
    book = playbook(step("a"), step("b"), step("c"))
    plan = build_plan(book, instances(book)).subset(["a", "c"])
    assert dict(plan.waits_for) == {"a": (), "c": ("a",)}


def test_five_thousand_steps_plan_with_every_edge() -> None:
    steps = [step(f"s{i}", parallel=i % 3 != 0, needs=(f"s{i - 7}",) if i >= 7 else ()) for i in range(5000)]
    book = playbook(*steps)
    plan = build_plan(book, instances(book))
    waves = plan.waves()
    assert len(plan.instances) == 5000
    assert all(waves[before] < waves[node] for node, befores in plan.waits_for.items() for before in befores)
    assert "s4999" in plan.critical_path({})[0]
