"""`--select` terms."""

from __future__ import annotations

import pytest

from ci_orchestrator.errors import UsageError
from ci_orchestrator.plan.ordering import build_plan
from ci_orchestrator.plan.selectors import select
from ci_orchestrator.playbook.model import Execution
from tests.helpers import instances, playbook, step


@pytest.fixture
def plan():  # type: ignore[no-untyped-def]
    book = playbook(
        step("0400", number="0400", stage="Testing", tags=("unit",)),
        step("0407", number="0407", stage="Testing", tags=("unit", "slow"), needs=("0400",)),
        step("0450", number="0450", stage="Testing"),
        step("0500", number="0500", stage="Reporting", needs=("0450",)),
        step("test-unit", tags=("unit",)),
        step("test-e2e"),
        execution=Execution.PARALLEL,
    )
    return build_plan(book, instances(book))


def chosen(plan, expression, only=False):  # type: ignore[no-untyped-def]
    return select(plan, expression, only=only).order


def test_no_expression_keeps_everything(plan) -> None:  # type: ignore[no-untyped-def]
    assert chosen(plan, None) == plan.order


def test_id_adds_what_it_needs_unless_only(plan) -> None:  # type: ignore[no-untyped-def]
    assert chosen(plan, "0407") == ["0400", "0407"]
    assert chosen(plan, "0407", only=True) == ["0407"]


def test_numeric_range_includes_both_ends(plan) -> None:  # type: ignore[no-untyped-def]
    assert chosen(plan, "0400-0450", only=True) == ["0400", "0407", "0450"]


def test_range_with_exclusion(plan) -> None:  # type: ignore[no-untyped-def]
    assert chosen(plan, "0400-0499,!0450") == ["0400", "0407"]


def test_wildcards(plan) -> None:  # type: ignore[no-untyped-def]
    assert chosen(plan, "04*", only=True) == ["0400", "0407", "0450"]
    assert chosen(plan, "test-*") == ["test-unit", "test-e2e"]


def test_stage_and_tag(plan) -> None:  # type: ignore[no-untyped-def]
    assert chosen(plan, "stage:reporting") == ["0450", "0500"]
    assert chosen(plan, "tag:unit", only=True) == ["0400", "0407", "test-unit"]


def test_only_exclusions_select_everything_else(plan) -> None:  # type: ignore[no-untyped-def]
    assert chosen(plan, "!tag:unit,!0500") == ["0450", "test-e2e"]


def test_needs_are_added_even_when_excluded(plan) -> None:  # type: ignore[no-untyped-def]
    assert chosen(plan, "0407,!0400") == ["0400", "0407"]


def test_a_term_matching_nothing_is_an_error_with_a_suggestion(plan) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(UsageError, match=r"'test-unti' matches no step \(did you mean 'test-unit'\?\)"):
        select(plan, "test-unti")


def test_a_selection_that_excludes_all_it_matches_is_an_error(plan) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(UsageError, match=r"--select '0407,!0407': every step it matches is excluded"):
        select(plan, "0407,!0407")


@pytest.mark.parametrize("expression", ["0499-0400", "lint,!0499-0400"])
def test_a_reversed_range_says_so(plan, expression: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(
        UsageError, match=r"^--select: invalid range '0499-0400': its start is after its end$"
    ):
        select(plan, expression)


def test_instance_ids_match() -> None:
    from ci_orchestrator.playbook.model import Instance

    book = playbook(step("test"))
    base = instances(book)[0]
    cells = [
        Instance(
            id=f"test ({v})",
            step=base.step,
            matrix={"python": v},
            name="test",
            run="true",
            env={},
            working_directory=".",
            timeout=None,
            continue_on_error=False,
        )
        for v in ("3.11", "3.12")
    ]
    plan = build_plan(book, cells)
    assert select(plan, "test (3.12)").order == ["test (3.12)"]
    assert select(plan, "test").order == ["test (3.11)", "test (3.12)"]


def test_an_instance_id_given_whole_selects_that_instance_whatever_it_holds() -> None:
    from ci_orchestrator.playbook.model import Instance

    book = playbook(step("t"))
    base = instances(book)[0]
    values = ("a,b", "a)b,c", "[x]", "a*", "ab")
    cells = [
        Instance(
            id=f"t ({v})",
            step=base.step,
            matrix={"v": v},
            name="t",
            run="true",
            env={},
            working_directory=".",
            timeout=None,
            continue_on_error=False,
        )
        for v in values
    ]
    plan = build_plan(book, cells)
    for value in values:
        assert select(plan, f"t ({value})").order == [f"t ({value})"]


def test_a_group_name_with_a_comma_given_whole_selects_that_group() -> None:
    from ci_orchestrator.playbook.model import Group

    lint = step("lint", block="lint, test")
    group = Group(name="lint, test", step_ids=("lint",), location=lint.location)
    book = playbook(step("setup"), lint, groups=(group,))
    plan = build_plan(book, instances(book))
    assert select(plan, "group:lint, test", only=True).order == ["lint"]
    assert select(plan, "group:LINT, TEST", only=True).order == ["lint"]
    with pytest.raises(UsageError, match="'group:lint' matches no step"):
        select(plan, "group:lint,setup")


def test_group_terms_take_the_names_of_the_playbook_groups_whole_beside_other_terms() -> None:
    from ci_orchestrator.playbook.model import Group

    lint, test = step("lint", block="lint, test"), step("test", block="lint, test")
    other = step("other-lint", block="lint")
    groups = (
        Group(name="lint, test", step_ids=("lint", "test"), location=lint.location),
        Group(name="lint", step_ids=("other-lint",), location=other.location),
    )
    book = playbook(step("setup"), lint, test, other, groups=groups, execution=Execution.PARALLEL)
    plan = build_plan(book, instances(book))
    assert select(plan, "group:lint, test,group:lint", only=True).order == ["lint", "test", "other-lint"]
    assert select(plan, "group:lint , group:LINT, TEST", only=True).order == ["lint", "test", "other-lint"]
    # No group is named `lint,test`: the longest name that ends at a comma is `lint`.
    assert select(plan, "group:lint,test", only=True).order == ["test", "other-lint"]
    assert select(plan, "!group:lint, test", only=True).order == ["setup", "other-lint"]
    with pytest.raises(UsageError, match="did you mean 'group:lint, test'"):
        select(plan, "group:lint; test")
