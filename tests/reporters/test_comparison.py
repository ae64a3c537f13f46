"""The comparison of two runs: each list's rule, the duration thresholds, what a selection left
out, the tests of the steps' JUnit files (new failures, fixed, and where nothing is claimed), and
the comparison as run.json holds it (written, read back, merged from shards)."""

from __future__ import annotations

import dataclasses
import json
from typing import TYPE_CHECKING

import pytest

from ci_orchestrator.errors import UsageError
from ci_orchestrator.reporters.changes import changes_markdown
from ci_orchestrator.reporters.comparison import compare
from ci_orchestrator.reporters.markdown import render_summary
from ci_orchestrator.reporters.run_record import merge_results, read_run_record, write_run_record
from ci_orchestrator.results import (
    Comparison,
    DurationChange,
    Status,
    TestCaseResult,
    TestOutcome,
    TestResults,
)
from tests.helpers import run_result, step_result

if TYPE_CHECKING:
    from pathlib import Path


def test_each_instance_lands_in_the_list_its_change_says() -> None:
    before = run_result(
        step_result("breaks"),
        step_result("heals", Status.FAILED),
        step_result("still", Status.TIMED_OUT),
        step_result("from cache", Status.CACHED),
        step_result("gone"),
        step_result("same"),
        run_id="base",
        branch="main",
        commit="c" * 40,
    )
    after = run_result(
        step_result("breaks", Status.FAILED),
        step_result("heals", Status.CACHED),
        step_result("still", Status.FAILED),
        step_result("from cache", Status.TIMED_OUT),
        step_result("same"),
        step_result("new"),
        step_result("retried", attempts=2),
    )
    found = compare(before, after)
    assert found.baseline_run_id == "base"
    assert (found.baseline_branch, found.baseline_commit) == ("main", "c" * 40)
    assert found.new_failures == ("breaks", "from cache")
    assert found.fixed == ("heals",)
    assert found.still_failing == ("still",)
    assert found.added == ("new", "retried")
    assert found.removed == ("gone",)
    assert found.flaky == ("retried",)
    assert found.lists_something()


@pytest.mark.parametrize(
    ("before", "after", "slower", "faster"),
    [
        (10.0, 12.0, True, False),  # 1.2x and 2 s more
        (10.0, 11.9, False, False),  # 2 s more, under 1.2x
        (2.0, 2.9, False, False),  # 1.45x, under a second more
        (2.0, 3.0, True, False),  # 1.5x and a second more
        (12.0, 10.0, False, True),
        (3.0, 2.0, False, True),
        (0.1, 0.5, False, False),  # 5x, but 0.4 s
    ],
)
def test_durations_change_notably_at_1_2x_and_a_second(
    before: float, after: float, slower: bool, faster: bool
) -> None:
    found = compare(
        run_result(step_result("job", duration=before)), run_result(step_result("job", duration=after))
    )
    change = DurationChange(id="job", before=before, after=after)
    assert found.slower == ((change,) if slower else ())
    assert found.faster == ((change,) if faster else ())


def test_only_instances_that_ran_in_both_are_timed() -> None:
    before = run_result(step_result("a", Status.CACHED, duration=1.0), step_result("b", duration=1.0))
    after = run_result(step_result("a", duration=30.0), step_result("b", Status.TIMED_OUT, duration=30.0))
    found = compare(before, after)
    assert found.slower == found.faster == ()


def test_the_biggest_changes_come_first() -> None:
    before = run_result(*(step_result(name, duration=10.0) for name in "abc"))
    after = run_result(
        step_result("a", duration=15.0), step_result("b", duration=40.0), step_result("c", duration=20.0)
    )
    assert [change.id for change in compare(before, after).slower] == ["b", "c", "a"]


def test_what_a_selection_left_out_is_neither_added_nor_removed() -> None:
    whole = run_result(step_result("lint"), step_result("test"), step_result("docs"))
    selected = run_result(step_result("lint"), step_result("new"), select="lint,new")
    # From the records alone: a selective run removes nothing it did not run.
    assert compare(whole, selected).removed == ()
    # Knowing the playbook's instances: one no longer there was removed, one left out was not.
    known = compare(whole, selected, planned={"lint", "test", "new"})
    assert known.removed == ("docs",)
    assert known.added == ("new",)
    # A selective baseline says nothing of what it did not run: nothing is "added".
    assert compare(selected, whole).added == ()
    sharded = run_result(step_result("lint"), shard="1/2")
    assert compare(sharded, whole).added == ()
    filtered = run_result(step_result("lint"), matrix_filters={"python": ("3.12",)})
    assert compare(whole, filtered, planned={"lint"}).removed == ()


def test_nothing_changed_says_so() -> None:
    run = run_result(step_result("lint"))
    found = compare(run, run)
    assert not found.lists_something()
    assert "No changes" in changes_markdown(found)


def test_the_comparison_reads_back_from_run_json(tmp_path: Path) -> None:
    comparison = Comparison(
        baseline_run_id="base",
        baseline_branch="main",
        baseline_commit="abc",
        new_failures=("a",),
        slower=(DurationChange(id="b", before=1.0, after=3.0),),
    )
    path = tmp_path / "run.json"
    write_run_record(
        run_result(step_result("a"), comparison=comparison, branch="feature", commit="def"), path
    )
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data["branch"] == "feature"
    assert data["commit"] == "def"
    assert data["comparison"]["baseline"] == {"run_id": "base", "branch": "main", "commit": "abc"}
    assert data["comparison"]["slower"] == [{"id": "b", "before": 1.0, "after": 3.0}]
    back = read_run_record(path)
    assert back.comparison == comparison
    assert (back.branch, back.commit) == ("feature", "def")


@pytest.mark.parametrize(
    ("value", "where"),
    [
        ("yes", "comparison"),
        ({"new_failures": []}, "comparison.baseline"),
        ({"baseline": {"run_id": "x"}, "fixed": [1]}, "comparison.fixed"),
        (
            {"baseline": {"run_id": "x"}, "slower": [{"id": "a", "before": "1", "after": 2}]},
            "comparison.slower",
        ),
        ({"baseline": {"run_id": "x", "branch": 3}}, "comparison.baseline.branch"),
    ],
)
def test_a_comparison_not_of_its_form_is_a_located_error(tmp_path: Path, value: object, where: str) -> None:
    path = tmp_path / "run.json"
    write_run_record(run_result(step_result("a")), path)
    data = json.loads(path.read_text(encoding="utf-8"))
    data["comparison"] = value
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(UsageError) as caught:
        read_run_record(path)
    assert where in str(caught.value)


def test_shards_merge_their_comparisons() -> None:
    first = run_result(
        step_result("a", Status.FAILED),
        shard="1/2",
        comparison=Comparison(baseline_run_id="base-1", new_failures=("a",)),
    )
    second = run_result(
        step_result("b", offset=1.0),
        shard="2/2",
        comparison=Comparison(baseline_run_id="base-2", fixed=("b",)),
    )
    merged = merge_results([first, second]).comparison
    assert merged is not None
    assert (merged.new_failures, merged.fixed) == (("a",), ("b",))
    # A shard without a comparison: the merged run has none rather than a part of one.
    assert merge_results([first, run_result(step_result("b"), shard="2/2")]).comparison is None


def test_the_summary_leads_with_what_changed() -> None:
    comparison = Comparison(baseline_run_id="base", baseline_branch="main", new_failures=("a",))
    summary = render_summary(run_result(step_result("a", Status.FAILED), comparison=comparison))
    lines = summary.splitlines()
    assert lines[0].startswith("## ❌ ci: failed")
    assert lines[2] == "### Changes since run `base` on `main`"
    assert "❌ **1 new failure**: `a`" in summary
    assert summary.index("Changes since") < summary.index("### Steps")


def test_long_lists_are_counted_past_ten() -> None:
    ids = tuple(f"t{index}" for index in range(25))
    text = changes_markdown(Comparison(baseline_run_id="b", new_failures=ids))
    assert "`t9` and 15 more" in text
    assert "`t10`" not in text
    assert "`t24`" in changes_markdown(Comparison(baseline_run_id="b", new_failures=ids), shown=None)


# ------------------------------------------------------------------ tests of the steps' JUnit files


def junit_results(**outcomes: str) -> TestResults:
    """The results of a run being made: every case held, `name=outcome` in file order."""
    return TestResults.of(
        [
            TestCaseResult(
                classname="suite", name=name, outcome=TestOutcome(outcome), message=f"{name} broke"
            )
            for name, outcome in outcomes.items()
        ]
    )


def recorded(tests: TestResults, *, failed: int | None = None) -> TestResults:
    """`tests` as a run record or the run history gives them back: counts and failing tests only
    (`failed`: a count larger than the failing tests listed, as a record cut at 50 has)."""
    return dataclasses.replace(tests, cases=(), failed=tests.failed if failed is None else failed)


def test_tests_that_fail_now_and_did_not_are_new_and_the_reverse_fixed() -> None:
    before = junit_results(steady="passed", breaks="passed", heals="failed", still="failed", gone="failed")
    after = junit_results(
        steady="passed", breaks="failed", heals="passed", still="error", added="failed", gone_skip="skipped"
    )
    found = compare(
        run_result(step_result("unit", tests=recorded(before))), run_result(step_result("unit", tests=after))
    )
    # A test named anew that fails did not fail before: a new failure.
    assert found.new_test_failures == ("unit :: suite.breaks", "unit :: suite.added")
    # `gone` is in no case of the run being made (deleted or renamed): not claimed fixed.
    assert found.fixed_tests == ("unit :: suite.heals",)
    assert found.lists_something()
    text = changes_markdown(found)
    assert "- ❌ **2 new test failures**: `unit :: suite.breaks`, `unit :: suite.added`" in text
    assert "- ✅ **1 fixed test**: `unit :: suite.heals`" in text


def test_a_test_skipped_now_is_not_fixed() -> None:
    found = compare(
        run_result(step_result("unit", tests=recorded(junit_results(flaky="failed")))),
        run_result(step_result("unit", tests=junit_results(flaky="skipped", other="passed"))),
    )
    assert found.fixed_tests == ()


def test_two_records_compare_by_their_failing_tests() -> None:
    """`report compare` of two records: no cases held, so a test no longer failing is fixed."""
    before = recorded(junit_results(heals="failed", gone="failed", still="failed"))
    after = recorded(junit_results(heals="passed", still="failed", breaks="failed"))
    found = compare(
        run_result(step_result("unit", tests=before)), run_result(step_result("unit", tests=after))
    )
    assert found.new_test_failures == ("unit :: suite.breaks",)
    assert found.fixed_tests == ("unit :: suite.heals", "unit :: suite.gone")


@pytest.mark.parametrize(
    "baseline",
    [
        pytest.param(None, id="no junit in the baseline"),
        pytest.param(TestResults(), id="no JUnit file read in the baseline"),
    ],
)
def test_without_the_baselines_tests_nothing_is_claimed(baseline: TestResults | None) -> None:
    found = compare(
        run_result(step_result("unit", Status.FAILED, tests=baseline)),
        run_result(step_result("unit", Status.FAILED, tests=junit_results(a="failed", b="passed"))),
    )
    assert (found.new_test_failures, found.fixed_tests) == ((), ())
    # Nor the other way: a run that read no test of the instance fixed none.
    back = compare(
        run_result(step_result("unit", tests=recorded(junit_results(a="failed")))),
        run_result(step_result("unit", Status.FAILED, tests=baseline)),
    )
    assert (back.new_test_failures, back.fixed_tests) == ((), ())
    # An instance the baseline does not have: added, its tests not compared.
    added = compare(run_result(), run_result(step_result("unit", tests=junit_results(a="failed"))))
    assert added.new_test_failures == ()


def test_what_a_record_left_out_makes_no_claim() -> None:
    # The baseline failed 80 tests and kept the first 2: `c` may have been one of the others.
    before = recorded(junit_results(a="failed", b="failed"), failed=80)
    found = compare(
        run_result(step_result("unit", tests=before)),
        run_result(step_result("unit", tests=junit_results(a="passed", b="failed", c="failed"))),
    )
    assert found.new_test_failures == ()
    assert found.fixed_tests == ("unit :: suite.a",)  # it passed: that is known
    # A head record that kept only some of its failing tests: `b` may still fail among the rest.
    head = recorded(junit_results(c="failed"), failed=80)
    found = compare(
        run_result(step_result("unit", tests=recorded(junit_results(b="failed")))),
        run_result(step_result("unit", tests=head)),
    )
    assert found.fixed_tests == ()
    assert found.new_test_failures == ("unit :: suite.c",)


def test_test_lists_travel_in_run_json_and_merge(tmp_path: Path) -> None:
    comparison = Comparison(
        baseline_run_id="base",
        new_test_failures=("unit (3.12) :: suite.a",),
        fixed_tests=("unit (3.12) :: suite.b",),
    )
    path = tmp_path / "run.json"
    write_run_record(run_result(step_result("unit (3.12)"), comparison=comparison), path)
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data["comparison"]["new_test_failures"] == ["unit (3.12) :: suite.a"]
    assert data["comparison"]["fixed_tests"] == ["unit (3.12) :: suite.b"]
    assert read_run_record(path).comparison == comparison
    # A record written before tests were compared has neither list: nothing was claimed.
    for key in ("new_test_failures", "fixed_tests"):
        del data["comparison"][key]
    path.write_text(json.dumps(data), encoding="utf-8")
    back = read_run_record(path).comparison
    assert back is not None
    assert (back.new_test_failures, back.fixed_tests) == ((), ())
    data["comparison"]["fixed_tests"] = [3]
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(UsageError) as caught:
        read_run_record(path)
    assert "comparison.fixed_tests: expected a list of test names" in str(caught.value)

    shards = [
        run_result(
            step_result("a"),
            shard="1/2",
            comparison=Comparison(baseline_run_id="b", fixed_tests=("a :: t.x",)),
        ),
        run_result(
            step_result("b"),
            shard="2/2",
            comparison=Comparison(baseline_run_id="b", new_test_failures=("b :: t.y",)),
        ),
    ]
    merged = merge_results(shards).comparison
    assert merged is not None
    assert (merged.new_test_failures, merged.fixed_tests) == (("b :: t.y",), ("a :: t.x",))


def test_a_secret_in_a_test_name_is_masked_in_the_comparison(tmp_path: Path) -> None:
    comparison = Comparison(baseline_run_id="base", new_test_failures=("unit :: suite.test_hunter2",))
    path = tmp_path / "run.json"
    write_run_record(run_result(step_result("unit"), comparison=comparison, secrets=("hunter2",)), path)
    assert json.loads(path.read_text(encoding="utf-8"))["comparison"]["new_test_failures"] == [
        "unit :: suite.test_***"
    ]
