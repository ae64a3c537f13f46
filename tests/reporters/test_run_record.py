"""The run record: SPEC's run.json written and read back, shard records merged, and write_all."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

import pytest

from ci_orchestrator.errors import UsageError
from ci_orchestrator.reporters.merging import merge_results
from ci_orchestrator.reporters.run_record import read_run_record, write_run_record
from ci_orchestrator.reporters.writing import ReportError, ReportPaths, write_all
from ci_orchestrator.results import RunResult, RunStats, RunStatus, Status, speedup
from tests.helpers import T0, run_result, step_result

if TYPE_CHECKING:
    from pathlib import Path

ISO_Z = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z")


def full_run() -> RunResult:
    return run_result(
        step_result("install", Status.PASSED, stage="Setup", log=".ci-orchestrator/logs/install.log"),
        step_result(
            "test (3.12, x)", Status.FAILED, matrix={"python": "3.12", "os": "x"}, continue_on_error=True
        ),
        step_result("slow", Status.TIMED_OUT, exit_code=124, reason="timed out after 30s", group="checks"),
        step_result("deploy", Status.SKIPPED, reason="needs 'slow' failed"),
        step_result("build", Status.CACHED, cached=True),
        status=RunStatus.FAILED,
        stats=RunStats(
            max_concurrency_seen=3,
            resource_utilization={"db": 0.5},
            critical_path=("install", "slow"),
            serial_duration=6.0,
            speedup=0.6,
        ),
        vars={"ENV": "prod"},
        matrix_filters={"python": ("3.12",)},
        interrupted_by=None,
    )


def test_run_json_has_spec_keys_and_utc_microsecond_times(workdir: Path) -> None:
    write_run_record(full_run(), "reports/run.json")
    data = json.loads((workdir / "reports" / "run.json").read_text(encoding="utf-8"))

    assert {"run_id", "playbook", "status", "started", "finished", "steps", "stats"} <= set(data)
    assert data["status"] == "failed"
    assert data["started"] == "2026-11-25T10:00:00.123456Z"
    for entry in data["steps"]:
        assert {
            "id", "step", "matrix", "status", "exit_code", "started", "finished",
            "duration", "attempts", "cached", "reason", "log",
        } <= set(entry)  # fmt: skip
        for key in ("started", "finished"):
            assert entry[key] is None or ISO_Z.fullmatch(entry[key])
    skipped = data["steps"][3]
    assert (skipped["status"], skipped["exit_code"], skipped["reason"]) == (
        "skipped",
        None,
        "needs 'slow' failed",
    )
    assert data["steps"][1]["matrix"] == {"python": "3.12", "os": "x"}
    assert data["stats"] == {
        "max_concurrency_seen": 3,
        "resource_utilization": {"db": 0.5},
        "critical_path": ["install", "slow"],
        "serial_duration": 6.0,
        "speedup": 0.6,
    }


def test_run_json_round_trips(workdir: Path) -> None:
    original = full_run()
    write_run_record(original, "run.json")

    assert read_run_record("run.json") == original


def test_a_speed_up_that_means_nothing_is_null_and_reads_back_so(workdir: Path) -> None:
    original = run_result(step_result("a", Status.PASSED), stats=RunStats(serial_duration=2.0))
    write_run_record(original, "run.json")

    stats = json.loads((workdir / "run.json").read_text())["stats"]
    assert stats["speedup"] is None and stats["serial_duration"] == 2.0  # the keys kept, null allowed
    assert read_run_record("run.json").stats.speedup is None
    assert merge_results([read_run_record("run.json")]).stats.speedup is None  # one step ran


def test_local_times_are_written_in_utc(workdir: Path) -> None:
    paris = datetime(2026, 11, 25, 12, 0, 0, 5, tzinfo=timezone(timedelta(hours=1)))
    result = run_result(step_result("a", Status.PASSED, started=paris, finished=paris))
    write_run_record(result, "run.json")

    entry = json.loads((workdir / "run.json").read_text())["steps"][0]
    assert entry["started"] == "2026-11-25T11:00:00.000005Z"


def test_secret_values_are_not_written(workdir: Path) -> None:
    result = run_result(
        step_result("a", Status.FAILED, reason="bad token s3cr3t"),
        vars={"TOKEN": "s3cr3t"},
        secrets=("s3cr3t",),
    )
    write_run_record(result, "run.json")

    text = (workdir / "run.json").read_text()
    assert "s3cr3t" not in text
    assert "bad token ***" in text


def test_a_missing_run_record_is_a_usage_error_naming_it(workdir: Path) -> None:
    with pytest.raises(UsageError, match=r"shard-1\.json: run record not found"):
        read_run_record("shard-1.json")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", r"bad\.json:1:2: not a run record: invalid JSON"),
        ("[]", r"bad\.json: not a run record"),
        ('{"playbook": "ci"}', r"bad\.json: missing key 'status'"),
        (
            '{"run_id": "r", "playbook": "ci", "status": "passed", "started": "2026-11-25T10:00:00Z",'
            ' "finished": "2026-11-25T10:00:00Z", "steps": [{"id": "a", "step": "a", "status": "great"}]}',
            r"bad\.json: steps\[0\]\.status: unknown step status 'great'",
        ),
    ],
)
def test_an_invalid_run_record_is_a_usage_error_saying_where(
    workdir: Path, content: str, message: str
) -> None:
    (workdir / "bad.json").write_text(content)

    with pytest.raises(UsageError, match=message):
        read_run_record("bad.json")


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


def test_the_shard_is_recorded_and_read_back(workdir: Path) -> None:
    [shard] = shards_of(3, 2)
    write_run_record(shard, "run.json")

    assert json.loads((workdir / "run.json").read_text(encoding="utf-8"))["shard"] == "2/3"
    assert read_run_record("run.json") == shard
    write_run_record(full_run(), "whole.json")
    assert json.loads((workdir / "whole.json").read_text(encoding="utf-8"))["shard"] is None
    for bad in ("4/3", "0/3", "2 of 3", 2):
        (workdir / "bad.json").write_text(json.dumps({**record_of(shard), "shard": bad}), encoding="utf-8")
        with pytest.raises(UsageError, match="shard"):
            read_run_record("bad.json")


def record_of(result: RunResult) -> dict[str, Any]:
    from ci_orchestrator.reporters.run_record import record

    return record(result)


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


def test_write_all_writes_the_three_reports(workdir: Path) -> None:
    paths = ReportPaths(
        junit=workdir / "r" / "junit.xml", summary=workdir / "r" / "s.md", json=workdir / "r" / "run.json"
    )

    summary = write_all(full_run(), paths)

    assert (workdir / "r" / "s.md").read_text(encoding="utf-8") == summary
    assert read_run_record(workdir / "r" / "run.json") == full_run()
    assert ET.parse(workdir / "r" / "junit.xml").getroot().get("tests") == "5"


def test_a_report_that_cannot_be_written_does_not_stop_the_others(workdir: Path) -> None:
    (workdir / "blocked").write_text("a file where a folder should be")
    paths = ReportPaths(
        junit=workdir / "blocked" / "junit.xml", summary=workdir / "s.md", json=workdir / "run.json"
    )

    with pytest.raises(ReportError) as caught:
        write_all(full_run(), paths)

    assert caught.value.exit_code == 1
    assert "blocked/junit.xml" in str(caught.value)
    assert (workdir / "s.md").read_text(encoding="utf-8") == caught.value.summary
    assert (workdir / "run.json").exists()


@pytest.mark.parametrize(
    ("durations", "wall", "expected"),
    [
        ((2.0, 2.0), 2.5, 1.6),  # side by side: the durations over the wall time
        ((0.4, 0.4), 0.5, None),  # under a second: start-up weighs as much as the steps
        ((2.0,), 2.0, None),  # one step: nothing ran beside it
        ((0.5, 0.5), 1.2, None),  # below 1: nothing overlapped
    ],
)
def test_the_speed_up_is_said_only_where_it_means_something(
    durations: tuple[float, ...], wall: float, expected: float | None
) -> None:
    steps = [step_result(f"s{index}", duration=value) for index, value in enumerate(durations)]
    steps.append(step_result("c", Status.CACHED, duration=9.0))  # a cached step ran nothing here
    assert speedup(steps, wall) == expected
