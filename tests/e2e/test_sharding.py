"""Sharding end to end through the CLI: `plan --shard`, `run --shard`, `report merge` of the shard
records, balance by the run history's durations, and the GitHub matrix of the shards."""

from __future__ import annotations

import json
import subprocess
import xml.etree.ElementTree as ET
from typing import TYPE_CHECKING, Any

import pytest

from ci_orchestrator.history.database import History
from tests.helpers import cli_environment, run_cli, start_cli

if TYPE_CHECKING:
    from pathlib import Path

SHARDS = 3


def generated_playbook() -> str:
    """30 steps, six of them matrices of three (42 instances), short chains of `needs`, and
    durations that differ so a split by count would not be a split by time. A step fails when
    `vars.fail` names it."""
    lines = ["name: thirty", "execution: parallel", "vars: {fail: none}", "steps:"]
    for number in range(30):
        lines.append(f"  - id: s{number:02d}")
        if number % 5 == 0:
            lines.append('    matrix: {py: ["3.11", "3.12", "3.13"]}')
        if number % 7 == 3:
            lines.append(f"    needs: [s{number - 1:02d}]")
        if number % 11 == 9:
            lines.append(f"    needs: [s{number - 2:02d}, s{number - 1:02d}]")
        seconds = 0.01 + (number * 37 % 10) * 0.02
        lines.append(f'    run: sleep {seconds:.2f} && [ "${{{{ vars.fail }}}}" != s{number:02d} ]')
    return "\n".join(lines) + "\n"


def plan_instances(work: Path, *args: str) -> list[dict[str, Any]]:
    process = run_cli(work, "plan", "--format", "json", *args)
    assert process.returncode == 0, process.stderr
    instances: list[dict[str, Any]] = json.loads(process.stdout)["instances"]
    return instances


def read(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("thirty")
    (work / "playbooks").mkdir()
    (work / "playbooks" / "ci.yml").write_text(generated_playbook(), encoding="utf-8")
    return work


@pytest.fixture(scope="module")
def shard_plans(project: Path) -> list[list[dict[str, Any]]]:
    return [plan_instances(project, "--shard", f"{index}/{SHARDS}") for index in range(1, SHARDS + 1)]


@pytest.fixture(scope="module")
def passing_shards(project: Path) -> list[Path]:
    return run_shards(project, "pass")


def test_three_shards_partition_the_single_run_plan(
    project: Path, shard_plans: list[list[dict[str, Any]]]
) -> None:
    whole = plan_instances(project)
    assert len(whole) == 42
    assert {instance["step"] for instance in whole} == {f"s{number:02d}" for number in range(30)}
    parts = shard_plans
    ids = [[instance["id"] for instance in part] for part in parts]
    assert all(ids), "three shards of 42 instances: none empty"
    seen = [instance_id for part in ids for instance_id in part]
    assert len(seen) == len(set(seen)), "an instance is on two shards"
    assert set(seen) == {instance["id"] for instance in whole}
    by_id = {instance["id"]: instance for instance in whole}
    for part in parts:
        members = {instance["id"] for instance in part}
        for instance in part:
            # The same instance as in the single run, and what it needs is on its shard.
            assert instance["matrix"] == by_id[instance["id"]]["matrix"]
            assert instance["needs"] == by_id[instance["id"]]["needs"]
            assert set(instance["needs"]) <= members
    # The matrix instances of one step spread over the shards.
    homes = {index for index, part in enumerate(ids) for i in part if i.startswith("s00 (")}
    assert len(homes) > 1


def test_github_matrix_of_the_shards_is_valid_strategy_json(
    project: Path, shard_plans: list[list[dict[str, Any]]]
) -> None:
    process = run_cli(project, "plan", "--shards", str(SHARDS), "--format", "github-matrix")
    assert process.returncode == 0, process.stderr
    matrix = json.loads(process.stdout)
    assert set(matrix) == {"include"}
    entries = matrix["include"]
    assert [entry["shard"] for entry in entries] == ["1/3", "2/3", "3/3"]
    for entry in entries:
        assert set(entry) == {"shard", "name", "steps", "instances"}
        assert all(isinstance(value, str) for value in entry["instances"])
    assert [entry["instances"] for entry in entries] == [[i["id"] for i in part] for part in shard_plans]
    assert [entry["steps"] for entry in entries] == [len(part) for part in shard_plans]
    assert sum(entry["steps"] for entry in entries) == 42


def run_shards(work: Path, prefix: str, *extra: str) -> list[Path]:
    """The three shards at once, each writing its own reports, as three runners would."""
    records = [work / f"{prefix}-{index}.json" for index in range(1, SHARDS + 1)]
    processes = [
        start_cli(
            work,
            "run",
            "--shard",
            f"{index}/{SHARDS}",
            "-j",
            "8",
            "--output",
            "quiet",
            "--json",
            str(record),
            "--junit",
            str(record.with_suffix(".xml")),
            "--summary",
            str(record.with_suffix(".md")),
            *extra,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for index, record in enumerate(records, start=1)
    ]
    for process in processes:
        _, err = process.communicate(timeout=120)
        assert process.returncode in (0, 1), err
    return records


def test_merged_shard_records_list_every_instance_once(project: Path, passing_shards: list[Path]) -> None:
    records = passing_shards
    shard_ids = [[step["id"] for step in read(record)["steps"]] for record in records]
    assert sum(len(ids) for ids in shard_ids) == 42

    merged = run_cli(
        project, "report", "merge", *map(str, records), "--json", "merged.json", "--junit", "merged.xml"
    )
    assert merged.returncode == 0, merged.stderr
    record = read(project / "merged.json")
    ids = [step["id"] for step in record["steps"]]
    assert len(ids) == len(set(ids)) == 42
    assert {instance["id"] for instance in plan_instances(project)} == set(ids)
    assert record["status"] == "passed"
    suite = ET.parse(project / "merged.xml").getroot().find("testsuite")
    assert suite is not None
    assert suite.get("tests") == "42"
    assert len(list(suite.iter("testcase"))) == 42
    summary = (project / ".ci-orchestrator" / "reports" / "summary.md").read_text(encoding="utf-8")
    assert "**42 instances**" in summary


def test_each_shard_record_says_which_shard_it_is(passing_shards: list[Path]) -> None:
    assert [read(record)["shard"] for record in passing_shards] == ["1/3", "2/3", "3/3"]


def test_a_merge_with_a_shard_missing_fails_and_says_which(project: Path, passing_shards: list[Path]) -> None:
    merged = run_cli(
        project, "report", "merge", str(passing_shards[2]), str(passing_shards[0]), "--json", "part.json"
    )

    assert merged.returncode == 1
    assert "warning: shard 2/3 is missing: its steps are in none of the merged records" in merged.stderr
    record = read(project / "part.json")
    assert record["status"] == "failed"
    assert record["notes"] == ["shard 2/3 is missing: its steps are in none of the merged records"]
    assert {step["status"] for step in record["steps"]} == {"passed"}
    summary = (project / ".ci-orchestrator" / "reports" / "summary.md").read_text(encoding="utf-8")
    assert "> ⚠️ shard 2/3 is missing" in summary


@pytest.mark.slow  # nine runs of the CLI
def test_merge_exits_as_a_run_with_those_results_would(project: Path, passing_shards: list[Path]) -> None:
    passed = passing_shards
    failing_step = read(passed[1])["steps"][0]["step"]
    failed = run_shards(project, "bad", "--var", f"fail={failing_step}", "--no-fail-fast")
    statuses = {step["id"]: step["status"] for record in failed for step in read(record)["steps"]}
    assert "failed" in statuses.values()

    with_failure = run_cli(project, "report", "merge", str(passed[0]), str(failed[1]), str(passed[2]))
    assert with_failure.returncode == 1, with_failure.stderr
    assert read(project / ".ci-orchestrator" / "reports" / "run.json")["status"] == "failed"

    # Records of the same instances: the one that finished last wins, whatever the order given.
    # The failing shards ran after the passing ones...
    for records in ([*failed, *passed], [*passed, *failed]):
        both = run_cli(project, "report", "merge", *map(str, records))
        assert both.returncode == 1, both.stderr
        assert "shard 2/3 was given 2 times" in both.stderr
        assert read(project / ".ci-orchestrator" / "reports" / "run.json")["status"] == "failed"
    # ... and a rerun that passed ran after them.
    rerun = run_shards(project, "rerun")
    for records in ([*failed, *rerun], [*rerun, *failed]):
        both = run_cli(project, "report", "merge", *map(str, records))
        assert both.returncode == 0, both.stderr
        merged = read(project / ".ci-orchestrator" / "reports" / "run.json")
        assert merged["status"] == "passed"
        assert len(merged["steps"]) == 42


def spread(sizes: list[float]) -> float:
    return (max(sizes) - min(sizes)) / max(sizes)


@pytest.mark.slow  # six runs of the CLI
def test_with_history_the_shards_take_about_the_same_time(tmp_path: Path) -> None:
    work = tmp_path
    (work / "playbooks").mkdir()
    (work / "playbooks" / "ci.yml").write_text(generated_playbook(), encoding="utf-8")
    by_count = [len(plan_instances(work, "--shard", f"{index}/{SHARDS}")) for index in range(1, SHARDS + 1)]
    assert max(by_count) - min(by_count) <= 1  # no history: balanced by count

    assert run_cli(work, "run", "-j", "8", "--output", "quiet").returncode == 0  # one whole run
    with History.open(work / ".ci-orchestrator" / "history.db") as history:
        durations = history.durations("thirty")
    assert len(durations) == 42

    # The shard runs add to the history, but not to the weights of the split: shards run one
    # after another in this folder still cover every instance exactly once.
    parts: list[list[str]] = []
    for index in range(1, SHARDS + 1):
        record = work / f"shard-{index}.json"
        shard = f"{index}/{SHARDS}"
        process = run_cli(
            work, "run", "--shard", shard, "-j", "8", "--output", "quiet", "--json", str(record)
        )
        assert process.returncode == 0, process.stderr
        parts.append([step["id"] for step in read(record)["steps"]])
    ran = [instance for part in parts for instance in part]
    assert len(ran) == len(set(ran)) == 42
    sizes = [sum(durations[instance] for instance in part) for part in parts]
    assert spread(sizes) <= 0.10, sizes


def test_merge_under_github_appends_the_summary_once_and_sets_outputs(
    project: Path, passing_shards: list[Path], tmp_path: Path
) -> None:
    summary_file = tmp_path / "step_summary.md"
    output_file = tmp_path / "output"
    summary_file.touch()
    output_file.touch()
    env = cli_environment(
        project, GITHUB_ACTIONS="true", GITHUB_STEP_SUMMARY=str(summary_file), GITHUB_OUTPUT=str(output_file)
    )
    process = run_cli(project, "report", "merge", *map(str, passing_shards), "--json", "gh.json", env=env)
    assert process.returncode == 0, process.stderr
    summary = summary_file.read_text(encoding="utf-8")
    assert summary.count("## ✅ thirty: passed") == 1
    outputs = output_file.read_text(encoding="utf-8")
    assert "\npassed\n" in outputs
    assert str(project / "gh.json") in outputs


def test_a_github_matrix_past_256_jobs_is_capped_or_warned_about(tmp_path: Path) -> None:
    """GitHub makes at most 256 jobs of one matrix: more shards are capped, and one entry per
    instance past that is written with a warning that says what to do."""
    (tmp_path / "playbooks").mkdir()
    lines = ["name: wide", "execution: parallel", "steps:"]
    for step in ("a", "b"):
        lines += [f"  - id: {step}", f"    matrix: {{n: {list(range(150))}}}", "    run: 'true'"]
    (tmp_path / "playbooks" / "ci.yml").write_text("\n".join(lines) + "\n", encoding="utf-8")

    capped = run_cli(tmp_path, "plan", "--format", "github-matrix", "--shards", "300")
    assert capped.returncode == 0, capped.stderr
    entries = json.loads(capped.stdout)["include"]
    assert len(entries) == 256
    assert entries[-1]["shard"] == "256/256"
    assert sum(entry["steps"] for entry in entries) == 300
    assert "--shards 300: GitHub runs at most 256 jobs of one matrix, so 256 shards" in capped.stderr

    wide = run_cli(tmp_path, "plan", "--format", "github-matrix")
    assert wide.returncode == 0, wide.stderr
    assert len(json.loads(wide.stdout)["include"]) == 300
    assert "300 matrix entries: GitHub runs at most 256 jobs" in wide.stderr
    assert "use --shards 256 or fewer" in wide.stderr

    fits = run_cli(tmp_path, "plan", "--format", "github-matrix", "--shards", "256")
    assert fits.returncode == 0
    # Nothing about the matrix's size; the split said to be by count, with no history here.
    assert fits.stderr == (
        "ci-orchestrator: warning: shards balanced by the number of instances: the run history"
        " holds no durations of this plan (of runs of the whole plan)\n"
    )
