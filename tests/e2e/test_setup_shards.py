"""A real CI playbook split across runners: a setup step every test needs (`shard: all`) runs in
each shard, the tests and the independent lint are spread over the shards, balanced by the
durations of earlier runs; the shard jobs of a workflow run the plan job's split whatever
history they hold; `report merge` joins them with every instance once."""

from __future__ import annotations

import json
import shutil
from typing import TYPE_CHECKING, Any

import pytest

from bench.shards import optimum
from ci_orchestrator.history.database import History
from ci_orchestrator.plan.balance import Item
from tests.helpers import run_cli

if TYPE_CHECKING:
    from pathlib import Path

# Seconds each test part sleeps: a split of 1.9, 1.9 and 1.8 s (the setup in each) exists.
TESTS = {1: 1.0, 2: 0.9, 3: 0.8, 4: 0.7, 5: 0.6, 6: 0.5}
SETUP, LINT = 0.2, 0.5
CASES = " ".join(f"{part}) sleep {seconds};;" for part, seconds in TESTS.items())
PLAYBOOK = f"""\
name: real
execution: parallel
steps:
  - id: venv
    shard: all
    run: sleep {SETUP} && mkdir -p .venv && echo ready > .venv/ready
  - id: test
    needs: [venv]
    matrix: {{part: {list(TESTS)}}}
    run: |
      test -f .venv/ready
      case "${{{{ matrix.part }}}}" in {CASES} esac
  - id: lint
    run: sleep {LINT}
"""
TEST_IDS = [f"test ({part})" for part in TESTS]
ALL_IDS = ["venv", *TEST_IDS, "lint"]


def project(folder: Path, text: str = PLAYBOOK) -> Path:
    (folder / "playbooks").mkdir(parents=True)
    (folder / "playbooks" / "ci.yml").write_text(text, encoding="utf-8")
    return folder


def read(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def github_matrix(work: Path, shards: int) -> list[dict[str, Any]]:
    done = run_cli(work, "plan", "--format", "github-matrix", "--shards", str(shards))
    assert done.returncode == 0, done.stderr
    entries: list[dict[str, Any]] = json.loads(done.stdout)["include"]
    return entries


def run_shard_jobs(work: Path, entries: list[dict[str, Any]], *, given: bool = True) -> list[Path]:
    """Each entry's job on a runner of its own (a copy of `work`, with the history it holds):
    `run --shard I/N`, with the entry's instances when `given`. Their run records."""
    records = []
    for entry in entries:
        runner = work.with_name(f"{work.name}-shard-{entry['shard'].replace('/', '-')}")
        shutil.copytree(work, runner)
        options = ["--shard", entry["shard"]]
        if given:
            options += ["--shard-instances", json.dumps(entry["instances"])]
        done = run_cli(runner, "run", "-j", "8", "--output", "quiet", *options)
        assert done.returncode == 0, done.stdout + done.stderr
        records.append(runner / ".ci-orchestrator" / "reports" / "run.json")
    return records


def test_three_shards_each_run_the_setup_and_their_tests(tmp_path: Path) -> None:
    work = project(tmp_path / "work")
    entries = github_matrix(work, 3)
    assert [entry["shard"] for entry in entries] == ["1/3", "2/3", "3/3"]
    records = run_shard_jobs(work, entries)

    ran = [[step["id"] for step in read(record)["steps"]] for record in records]
    for steps, entry in zip(ran, entries, strict=True):
        assert steps == entry["instances"]
        assert steps[0] == "venv"  # on each runner, before its tests
        assert any(step in TEST_IDS for step in steps)
    tests = [step for steps in ran for step in steps if step in TEST_IDS]
    assert sorted(tests) == sorted(TEST_IDS)  # each test in exactly one shard
    assert sum(steps.count("lint") for steps in ran) == 1

    merged = run_cli(work, "report", "merge", *map(str, records), "--json", "merged.json")
    assert merged.returncode == 0, merged.stderr
    record = read(work / "merged.json")
    assert record["status"] == "passed"
    ids = [step["id"] for step in record["steps"]]
    assert sorted(ids) == sorted(ALL_IDS) and len(ids) == len(set(ids))
    # The setup once: the copy that took longest.
    copies = [step["duration"] for path in records for step in read(path)["steps"] if step["id"] == "venv"]
    [venv] = [step for step in record["steps"] if step["id"] == "venv"]
    assert (venv["shard"], venv["duration"]) == ("all", max(copies))


def test_a_shard_beyond_the_parts_is_a_usage_error_saying_how_many(tmp_path: Path) -> None:
    text = (
        "name: two\nexecution: parallel\nsteps:\n"
        "  - {id: build, run: 'true'}\n  - {id: pack, needs: [build], run: 'true'}\n"
        "  - {id: docs, run: 'true'}\n"
    )
    work = project(tmp_path, text)
    done = run_cli(work, "run", "--shard", "4/4")
    assert done.returncode == 2
    assert done.stderr == (
        "ci-orchestrator: --shard: 4/4: the plan has 2 independent parts, so shard 4 would run nothing;"
        " split it into at most 2 (--shard I/2)\n"
    )
    assert not (work / ".ci-orchestrator" / "reports" / "run.json").exists()
    assert run_cli(work, "run", "--shard", "2/2").returncode == 0


def whole_runs(work: Path, count: int) -> dict[str, float]:
    """`count` runs of the whole playbook, and the durations the history then gives the split."""
    for _ in range(count):
        done = run_cli(work, "run", "-j", "8", "--output", "quiet")
        assert done.returncode == 0, done.stderr
    with History.open(work / ".ci-orchestrator" / "history.db") as history:
        return history.durations("real", min_total=len(ALL_IDS))


@pytest.mark.slow  # two whole runs of two seconds, three shard runs
def test_with_two_runs_in_history_the_shard_loads_are_within_ten_percent(tmp_path: Path) -> None:
    work = project(tmp_path / "work")
    durations = whole_runs(work, 2)
    assert sorted(durations) == sorted(ALL_IDS)

    done = run_cli(work, "plan", "--format", "github-matrix", "--shards", "3")
    assert done.returncode == 0 and not done.stderr, done.stderr  # every duration known
    entries = json.loads(done.stdout)["include"]
    loads = [sum(durations[instance] for instance in entry["instances"]) for entry in entries]
    assert (max(loads) - min(loads)) / max(loads) <= 0.10, loads
    # Against the best split of the same durations: the setup paid once per shard needing it.
    items = [Item(weight=durations[test], shared=frozenset({0})) for test in TEST_IDS]
    best = optimum([*items, Item(weight=durations["lint"])], {0: durations["venv"]}, 3)
    assert max(loads) <= 1.05 * best, (loads, best)

    records = run_shard_jobs(work, entries)
    assert all(read(record)["steps"][0]["id"] == "venv" for record in records)


@pytest.mark.slow  # two whole runs, three shard runs
def test_shard_jobs_run_the_plan_jobs_split_whatever_history_they_hold(tmp_path: Path) -> None:
    planner = project(tmp_path / "planner")
    whole_runs(planner, 2)
    entries = github_matrix(planner, 3)
    # Runners that restored no history would split by count, and not as the plan job did.
    fresh = project(tmp_path / "fresh")
    by_count = github_matrix(fresh, 3)
    assert [entry["instances"] for entry in by_count] != [entry["instances"] for entry in entries]

    records = run_shard_jobs(fresh, entries)
    ran = [[step["id"] for step in read(record)["steps"]] for record in records]
    assert ran == [entry["instances"] for entry in entries]
    assert [read(record)["shard"] for record in records] == ["1/3", "2/3", "3/3"]


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ("[", "--shard-instances: not JSON: "),
        ('{"a": 1}', "--shard-instances: expected a JSON list of instance ids"),
        ("[]", "--shard-instances: names no instance: a shard runs at least one"),
        ('["tset (1)"]', "no instance 'tset (1)' in the playbook (did you mean 'test (1)'?)"),
    ],
)
def test_shard_instances_that_are_not_the_playbooks_are_usage_errors(
    tmp_path: Path, given: str, message: str
) -> None:
    work = project(tmp_path)
    done = run_cli(work, "run", "--shard", "1/3", "--shard-instances", given)
    assert done.returncode == 2
    assert message in done.stderr
    alone = run_cli(work, "run", "--shard-instances", '["lint"]')
    assert alone.returncode == 2
    assert "--shard-instances goes with --shard I/N" in alone.stderr


def artifacts(records: list[Path], folder: Path) -> Path:
    """The shard jobs' records as `actions/download-artifact` lays out their artifacts."""
    for index, record in enumerate(records):
        target = folder / f"run-{index}" / "reports" / "run.json"
        target.parent.mkdir(parents=True)
        shutil.copyfile(record, target)
    return folder


@pytest.mark.slow  # six shard runs
def test_the_merged_run_balances_the_next_workflow_runs_split(tmp_path: Path) -> None:
    """The first workflow run splits by count; its merge job records the merged run, whose
    history (carried as the action carries it) gives the next plan job every duration."""
    work = project(tmp_path / "work")
    records = run_shard_jobs(work, github_matrix(work, 3))
    merger = project(tmp_path / "merge-job")
    merged = run_cli(merger, "report", "merge", str(artifacts(records, tmp_path / "runs")))
    assert merged.returncode == 0, merged.stderr
    record = read(merger / ".ci-orchestrator" / "reports" / "run.json")
    assert sorted(step["id"] for step in record["steps"]) == sorted(ALL_IDS)
    assert run_cli(merger, "history", "export", str(tmp_path / "carried.db")).returncode == 0

    planner = project(tmp_path / "next-plan-job")
    assert run_cli(planner, "history", "import", str(tmp_path / "carried.db")).returncode == 0
    done = run_cli(planner, "plan", "--format", "github-matrix", "--shards", "3")
    assert done.returncode == 0 and not done.stderr, done.stderr  # every duration known
    with History.open(planner / ".ci-orchestrator" / "history.db") as history:
        durations = history.durations("real", min_total=len(ALL_IDS))
        [run] = history.runs()
    assert run.run_id == record["run_id"] and run.total == len(ALL_IDS)
    loads = [sum(durations[i] for i in entry["instances"]) for entry in json.loads(done.stdout)["include"]]
    assert (max(loads) - min(loads)) / max(loads) <= 0.10, loads


def test_a_folder_of_artifacts_is_merged_whole(tmp_path: Path) -> None:
    work = project(tmp_path / "work", "name: real\nexecution: parallel\nsteps:\n  - {id: a, run: 'true'}\n")
    done = run_cli(work, "run", "--output", "quiet")
    assert done.returncode == 0, done.stderr
    runs = artifacts([work / ".ci-orchestrator" / "reports" / "run.json"], tmp_path / "runs")
    (runs / "run-0" / "logs").mkdir()
    (runs / "run-0" / "logs" / "a.log").write_text("not a record", encoding="utf-8")
    assert run_cli(work, "report", "merge", str(runs), "--json", "merged.json").returncode == 0
    assert [step["id"] for step in read(work / "merged.json")["steps"]] == ["a"]
    (tmp_path / "empty").mkdir()
    nothing = run_cli(work, "report", "merge", str(tmp_path / "empty"))
    assert nothing.returncode == 2
    assert nothing.stderr == f"ci-orchestrator: {tmp_path / 'empty'}: no run.json in this folder\n"


def test_a_setup_step_that_waits_for_another_step_is_said_to_run_once(tmp_path: Path) -> None:
    work = project(
        tmp_path,
        "name: tied\nexecution: parallel\nsteps:\n"
        "  - {id: fetch, run: 'true'}\n"
        "  - {id: venv, shard: all, needs: [fetch], run: 'true'}\n"
        "  - {id: test, needs: [venv], matrix: {part: [1, 2]}, run: 'true'}\n"
        "  - {id: lint, run: 'true'}\n",
    )
    done = run_cli(work, "plan", "--format", "github-matrix", "--shards", "2")
    assert done.returncode == 0, done.stderr
    assert (
        "warning: step 'venv' is `shard: all` but waits for 'fetch', which does not run in every shard:"
        " it runs in one shard, with what it waits for and what waits for it"
    ) in done.stderr
    entries = json.loads(done.stdout)["include"]
    assert [entry["instances"] for entry in entries] == [["fetch", "venv", "test (1)", "test (2)"], ["lint"]]
