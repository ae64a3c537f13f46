"""`report merge`: shard records joined into one run, each instance once, shards missing or
repeated said; reruns and copies of `shard: all` steps chosen between."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

import pytest

from ci_orchestrator.errors import UsageError
from ci_orchestrator.reporters.merging import merge_results
from ci_orchestrator.reporters.run_record import read_run_record, write_run_record
from ci_orchestrator.results import RunResult, RunStats, RunStatus, Status
from tests.helpers import T0, run_result, step_result

if TYPE_CHECKING:
    from pathlib import Path


def three_shards() -> list[RunResult]:
    return [
        run_result(
            step_result("lint", Status.PASSED, duration=1),
            step_result("test (3.11)", Status.FAILED, offset=1, duration=4),
            run_id="shard-1",
            seconds=5,
            stats=RunStats(
                critical_path=("lint", "test (3.11)"),
                max_concurrency_seen=2,
                resource_utilization={"db": 1.0},
            ),
        ),
        run_result(
            step_result("test (3.12)", Status.PASSED, offset=2, duration=3),
            run_id="shard-2",
            offset=2,
            seconds=4,
            stats=RunStats(
                critical_path=("test (3.12)",), max_concurrency_seen=1, resource_utilization={"db": 0.0}
            ),
        ),
        run_result(
            step_result("docs", Status.CACHED, cached=True),
            step_result("package", Status.PASSED, offset=3, duration=6),
            run_id="shard-3",
            offset=3,
            seconds=6,
            stats=RunStats(critical_path=("package",), max_concurrency_seen=4),
        ),
    ]


def test_merging_three_shards_lists_every_instance_once(workdir: Path) -> None:
    shards = three_shards()
    for number, shard in enumerate(shards, 1):
        write_run_record(shard, f"shard-{number}.json")

    merged = merge_results([read_run_record(f"shard-{number}.json") for number in (1, 2, 3)])

    assert [s.id for s in merged.steps] == ["lint", "test (3.11)", "test (3.12)", "docs", "package"]
    assert merged.status is RunStatus.FAILED
    assert merged.started == T0 and merged.finished == T0 + timedelta(seconds=9)
    assert merged.stats.serial_duration == 14.0
    assert merged.stats.speedup == pytest.approx(14.0 / 9.0, abs=1e-3)
    assert merged.stats.max_concurrency_seen == 4
    assert merged.stats.critical_path == ("package",)  # 6 s, the longest of the three
    assert merged.stats.resource_utilization["db"] == pytest.approx((1.0 * 5 + 0.0 * 4) / 15)
    assert merged.run_id.startswith("merged-")


def test_a_merged_run_of_one_step_has_no_speed_up(workdir: Path) -> None:
    write_run_record(
        run_result(step_result("a", Status.PASSED), stats=RunStats(serial_duration=2.0)), "run.json"
    )
    assert merge_results([read_run_record("run.json")]).stats.speedup is None  # one step ran


def test_a_later_record_wins_for_the_same_instance(workdir: Path) -> None:
    rerun = run_result(
        step_result("test (3.11)", Status.PASSED, offset=20, duration=3), run_id="rerun", offset=20, seconds=3
    )

    merged = merge_results([*three_shards(), rerun])

    assert [s.id for s in merged.steps].count("test (3.11)") == 1
    assert next(s for s in merged.steps if s.id == "test (3.11)").status is Status.PASSED
    assert merged.status is RunStatus.PASSED
    assert merged.stats.serial_duration == 13.0


def test_the_record_that_finished_an_instance_last_wins_whatever_the_order() -> None:
    rerun = run_result(
        step_result("test (3.11)", Status.PASSED, offset=20, duration=3), run_id="rerun", offset=20, seconds=3
    )
    stale = run_result(
        step_result("test (3.11)", Status.FAILED, offset=-9, duration=1), run_id="stale", offset=-9, seconds=1
    )

    merged = merge_results([rerun, *three_shards(), stale])

    assert [s.id for s in merged.steps].count("test (3.11)") == 1
    assert next(s for s in merged.steps if s.id == "test (3.11)").status is Status.PASSED
    assert merged.status is RunStatus.PASSED


def shards_of(count: int, *indexes: int) -> list[RunResult]:
    return [
        run_result(
            step_result(f"s{index}", Status.PASSED, offset=index),
            run_id=f"r{index}",
            shard=f"{index}/{count}",
        )
        for index in indexes
    ]


def test_a_merge_with_shards_missing_fails_and_says_which() -> None:
    whole = merge_results(shards_of(3, 1, 2, 3))
    assert whole.status is RunStatus.PASSED and not whole.notes

    merged = merge_results(shards_of(3, 3, 1))
    assert merged.status is RunStatus.FAILED
    assert merged.notes == ("shard 2/3 is missing: its steps are in none of the merged records",)

    merged = merge_results([*shards_of(5, 1, 3), *shards_of(2, 1, 2)])
    assert merged.status is RunStatus.FAILED
    assert merged.notes == (
        "shards 2/5, 4/5, 5/5 are missing: their steps are in none of the merged records",
    )


def test_a_shard_given_twice_is_a_note_not_a_failure() -> None:
    merged = merge_results([*shards_of(2, 1, 2), *shards_of(2, 2)])
    assert merged.status is RunStatus.PASSED
    assert merged.notes == (
        "shard 2/2 was given 2 times: each instance is taken from the record that finished it last",
    )
    assert merge_results([run_result(), *shards_of(2, 1, 2)]).notes == ()  # a whole run is not a shard


def test_merged_status_follows_continue_on_error_and_interruption() -> None:
    tolerated = run_result(step_result("flaky", Status.FAILED, continue_on_error=True))
    interrupted = run_result(
        step_result("b", Status.CANCELLED, reason="interrupted"), run_id="r2", interrupted_by=2
    )

    assert merge_results([tolerated]).status is RunStatus.PASSED
    assert merge_results([tolerated, interrupted]).status is RunStatus.CANCELLED


def test_merge_refuses_nothing_and_mixed_playbooks() -> None:
    with pytest.raises(UsageError, match="no run records"):
        merge_results([])
    with pytest.raises(UsageError, match="different playbooks"):
        merge_results([run_result(), run_result(playbook="nightly")])


def setup_shards(*venvs: tuple[Status, float], offset: float = 0.0) -> list[RunResult]:
    """A set of shards, each running the `shard: all` step `venv` (status, seconds) and a test."""
    count = len(venvs)
    return [
        run_result(
            step_result("venv", status, duration=seconds, offset=offset, shard_all=True),
            step_result(
                f"test ({index})",
                Status.PASSED if status is Status.PASSED else Status.SKIPPED,
                offset=offset + seconds,
                duration=1,
            ),
            run_id=f"shard-{index}-at-{offset}",
            shard=f"{index}/{count}",
            offset=offset,
        )
        for index, (status, seconds) in enumerate(venvs, start=1)
    ]


def test_an_instance_another_split_put_on_another_shard_is_a_rerun_and_said() -> None:
    """Shards of one set run after the history changed may split otherwise: an instance in two
    shards' records is then run twice, the later result counts, and a note says so."""
    failed = run_result(step_result("test (1)", Status.FAILED, duration=9), run_id="a", shard="1/2")
    other = run_result(step_result("lint"), run_id="b", shard="2/2")
    rerun = run_result(step_result("test (1)", offset=60, duration=1), run_id="c", shard="2/2", offset=60)
    for records in ([failed, other, rerun], [rerun, other, failed]):
        merged = merge_results(records)
        assert [(step.id, step.status) for step in merged.steps if step.id == "test (1)"] == [
            ("test (1)", Status.PASSED)
        ]
        assert any("'test (1)' (1/2, 2/2)" in note for note in merged.notes), merged.notes


def venv_of(merged: RunResult) -> tuple[Status, float]:
    [venv] = [step for step in merged.steps if step.id == "venv"]
    return venv.status, venv.duration


def test_a_setup_step_of_every_shard_shows_once_the_slowest_copy() -> None:
    shards = setup_shards((Status.PASSED, 2.0), (Status.PASSED, 5.0), (Status.PASSED, 3.0))
    for records in (shards, shards[::-1], [shards[1], shards[2], shards[0]]):
        merged = merge_results(records)
        assert [step.id for step in merged.steps].count("venv") == 1
        assert venv_of(merged) == (Status.PASSED, 5.0)
        assert merged.stats.serial_duration == 5.0 + 3 * 1.0  # the setup counted once
        assert merged.status is RunStatus.PASSED and not merged.notes


def test_a_setup_step_that_failed_in_one_shard_shows_that_failure() -> None:
    shards = setup_shards((Status.PASSED, 2.0), (Status.FAILED, 0.5), (Status.PASSED, 3.0))
    for records in (shards, shards[::-1]):
        merged = merge_results(records)
        assert venv_of(merged) == (Status.FAILED, 0.5)
        assert merged.status is RunStatus.FAILED


def test_a_rerun_shard_replaces_its_own_failed_copy_of_the_setup() -> None:
    first = setup_shards((Status.PASSED, 2.0), (Status.FAILED, 0.5), (Status.PASSED, 3.0))
    [_, rerun, _] = setup_shards((Status.PASSED, 2.0), (Status.PASSED, 4.0), (Status.PASSED, 3.0), offset=60)
    for records in ([*first, rerun], [rerun, *first], [first[1], rerun, first[0], first[2]]):
        merged = merge_results(records)
        assert venv_of(merged) == (Status.PASSED, 4.0)
        assert merged.status is RunStatus.PASSED
        assert merged.notes == (
            "shard 2/3 was given 2 times: each instance is taken from the record that finished it last",
        )
