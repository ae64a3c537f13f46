"""A run record is untrusted input (another job's artifact): `report merge` opens no file a
record names, shows what a record says only as text, and lets nothing in it reach GitHub as a
workflow command, whatever the record holds."""

from __future__ import annotations

import json
import re
import sqlite3
import xml.etree.ElementTree as ET
from typing import TYPE_CHECKING, Any

import pytest

from tests.github_runner import Runner
from tests.helpers import cli_environment, repro_record, run_cli

if TYPE_CHECKING:
    from pathlib import Path

LOOT = "AWS_SECRET_ACCESS_KEY=loot-7d1f0e"


def step(step_id: str, status: str = "failed", **fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "id": step_id,
        "step": step_id.split(" ", maxsplit=1)[0],
        "matrix": {},
        "status": status,
        "exit_code": 1 if status == "failed" else 0,
        "started": "2026-11-25T10:00:00.000000Z",
        "finished": "2026-11-25T10:00:02.000000Z",
        "duration": 2.0,
        "attempts": 1,
        "cached": False,
        "reason": None,
        "log": None,
    }
    return base | fields


def record(*steps: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {
        "run_id": "r-1",
        "playbook": "ci",
        "status": "failed",
        "started": "2026-11-25T10:00:00.000000Z",
        "finished": "2026-11-25T10:00:05.000000Z",
        "steps": list(steps),
        "stats": {},
    } | fields


def merge(work: Path, *records: dict[str, Any]) -> tuple[Any, Runner, dict[str, str]]:
    names = []
    for number, data in enumerate(records, start=1):
        (work / f"run-{number}.json").write_text(json.dumps(data), encoding="utf-8")
        names.append(f"run-{number}.json")
    files = {"GITHUB_STEP_SUMMARY": work / "step_summary.md", "GITHUB_OUTPUT": work / "output"}
    for path in files.values():
        path.touch()
    env = cli_environment(work, GITHUB_ACTIONS="true", CI="true", **{k: str(v) for k, v in files.items()})
    process = run_cli(work, "report", "merge", *names, env=env)
    runner = Runner().read(process.stdout).read(process.stderr)
    reports = work / ".ci-orchestrator" / "reports"
    texts = {
        name: path.read_text(encoding="utf-8") if path.exists() else ""
        for name, path in {
            "summary": reports / "summary.md",
            "junit": reports / "junit.xml",
            "json": reports / "run.json",
            "step_summary": files["GITHUB_STEP_SUMMARY"],
            "output": files["GITHUB_OUTPUT"],
        }.items()
    }
    texts["stdout"], texts["stderr"] = process.stdout, process.stderr
    return process, runner, texts


def outside_code(markdown: str) -> str:
    """The summary without its fenced blocks and code spans: where markup would act."""
    without_blocks = re.sub(r"(?ms)^(`{3,}).*?^\1$", "", markdown)
    return re.sub(r"(`+)(?:(?!\1).)+?\1", "", without_blocks)


def test_merge_reads_no_file_a_record_names(tmp_path: Path) -> None:
    (tmp_path / "credentials").write_text(f"{LOOT}\n", encoding="utf-8")
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "env").write_text(f"{LOOT}\n", encoding="utf-8")
    work = tmp_path / "merge-job"
    work.mkdir()
    (work / "step.log").write_text(f"{LOOT}\n", encoding="utf-8")
    crafted = record(
        step("relative", log="step.log"),
        step("parent", log="../credentials"),
        step("absolute", log=str(tmp_path / "elsewhere" / "env")),
        step("timed", "timed-out", exit_code=124, log="/proc/self/environ"),
    )
    process, _, texts = merge(work, crafted)

    assert process.returncode == 1, process.stderr
    for name, text in texts.items():
        assert "loot-7d1f0e" not in text, name
    # Where the log is, said instead of its lines; a JUnit failure always has text.
    summary = texts["summary"]
    assert "../credentials" in summary and "not in the run record" in summary
    failures = {
        case.get("name"): case.find("failure") for case in ET.fromstring(texts["junit"]).iter("testcase")
    }
    for name, failure in failures.items():
        assert failure is not None, name
        assert (failure.text or "").strip(), name
    assert "../credentials" in (failures["parent"].text or "")


def test_the_tail_a_record_carries_is_shown_as_text_and_kept_short(tmp_path: Path) -> None:
    hostile = "```` </details> <script>x</script> ::error::pwn ##[error]pwn"
    tail = "\n".join(f"line {n} {hostile}" for n in range(5000))
    crafted = record(step("build", log="build.log", log_tail=tail))
    process, runner, texts = merge(tmp_path, crafted)

    assert process.returncode == 1, process.stderr
    assert [command.name for command in runner.commands] == []
    summary = texts["summary"]
    assert "<script>" not in outside_code(summary)
    assert outside_code(summary).count("<details>") == outside_code(summary).count("</details>") == 1
    assert "line 4999" in summary and "line 0 " not in summary  # the end of it, not the whole
    again = json.loads(texts["json"])
    assert len(again["steps"][0]["log_tail"].encode("utf-8")) <= 16 * 1024


HOSTILE_ID = "x (</details><script>alert(1)</script> ##[error]pwn | ``` [l](http://e) ::warning::pwn)"


def test_record_text_is_text_in_every_merged_report(tmp_path: Path) -> None:
    crafted = record(
        step(HOSTILE_ID, reason="<img src=x onerror=alert(1)> ##[add-mask]pwn", log_tail="boom"),
        step("::error::pwn", "skipped", reason="</details>", exit_code=None),
        playbook="##[error]pwn </details>",
        notes=["##[error]pwn"],
        stats={"critical_path": [HOSTILE_ID]},
    )
    process, runner, texts = merge(tmp_path, crafted)

    assert process.returncode == 1, process.stderr
    assert [command.name for command in runner.commands] == []
    # Markup from the record never becomes markup: no raw tag, balanced details and fences.
    text = outside_code(texts["summary"])
    assert "<script>" not in text and "<img" not in text
    assert text.count("<details>") == text.count("</details>")
    assert "](http" not in text
    ET.fromstring(texts["junit"])  # well-formed


@pytest.mark.parametrize(
    "change",
    [
        {"status": "##[error]pwn"},
        {"steps": [step("a", "::error::pwn\n::warning::pwn")]},
        {"shard": "##[add-mask]pwn"},
        {"started": "##[error]pwn"},
        {"steps": [step("a") | {"outputs": {"::error::pwn": 1}}]},
        {"steps": [step("a") | {"outputs": ["##[error]pwn"]}]},
    ],
)
def test_a_bad_record_is_an_error_that_acts_as_no_command(tmp_path: Path, change: dict[str, Any]) -> None:
    process, runner, _ = merge(tmp_path, record(step("a")) | change)
    assert process.returncode == 2
    assert "run-1.json" in process.stderr and "Traceback" not in process.stderr
    assert [command.name for command in runner.commands] == []


def record_commands(work: Path) -> list[tuple[str, ...]]:
    """Every command that reads a run record, given `crafted.json` (and a playbook `ci` to run)."""
    (work / "playbooks").mkdir(exist_ok=True)
    (work / "playbooks" / "ci.yml").write_text(
        "name: ci\nsteps:\n  - id: a\n    run: 'true'\n", encoding="utf-8"
    )
    return [
        ("report", "merge", "crafted.json"),
        ("report", "compare", "crafted.json", "crafted.json"),
        ("report", "comment", "crafted.json", "--pr", "1"),
        ("repro", "crafted.json"),
        ("run", "--baseline", "crafted.json"),
    ]


def test_a_shard_count_past_the_limit_is_refused_at_once(tmp_path: Path) -> None:
    # Before, the merge counted the shards of a set of 99,999,999,999,999 one by one: it never ended.
    crafted = record(step("a"), shard="1/99999999999999")
    (tmp_path / "crafted.json").write_text(json.dumps(crafted), encoding="utf-8")
    for command in record_commands(tmp_path):
        process = run_cli(tmp_path, *command, timeout=30)
        assert process.returncode == 2, (command, process.stderr)
        assert (
            "crafted.json: shard: invalid shard '1/99999999999999': N must be at most 256" in process.stderr
        )


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        # 128 + -128: before, a failed merge exited 0, and 128 + 10**30 was a traceback.
        ({"interrupted_by": -128}, "interrupted_by: -128 is not from 1 to 64"),
        ({"interrupted_by": 10**30}, "interrupted_by: 1000000000000000000000000000000 is not from 1 to 64"),
        ({"steps": [step("a", exit_code=-256)]}, "steps[0].exit_code: -256 is not from 0 to 255"),
        ({"steps": [step("a", duration=1e308)]}, "steps[0].duration: 1e+308 is not from 0 to 1,000,000,000"),
        ({"steps": [step("a", attempts=-1)]}, "steps[0].attempts: -1 is not from 0 to"),
        (
            {"stats": {"resource_utilization": {"cpu": "x"}}},
            "stats.resource_utilization.cpu: unexpected value",
        ),
        (
            {"stats": {"max_concurrency_seen": 10**20}},
            "stats.max_concurrency_seen: 100000000000000000000 is not",
        ),
        ({"matrix_filters": {"os": 5}}, "matrix_filters.os: expected a list of values"),
        ({"started": "0001-01-01T00:00:00+14:00"}, "started: not an ISO 8601 time"),
        ({"steps": [step("a", tests={"total": 10**20})]}, "steps[0].tests.total: expected a count from 0 to"),
        ({"version": 1.5}, "version: run record version 1.5 is unknown"),
    ],
)
def test_a_records_numbers_are_held_to_what_a_run_writes(
    tmp_path: Path, change: dict[str, Any], expected: str
) -> None:
    process, runner, texts = merge(tmp_path, record(step("a")) | change)
    assert process.returncode == 2, process.stderr
    assert f"run-1.json: {expected}" in process.stderr
    assert [command.name for command in runner.commands] == []
    assert "Traceback" not in process.stderr and not texts["json"]


DEEP = json.loads("[" * 500 + "]" * 500)
NOT_TEXT = [[1]]


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        # Before: turned into text by `str()`, as deep as the parser went: a RecursionError
        # wherever a report later walked it with less stack left.
        ({"vars": {"X": NOT_TEXT}}, "vars.X: expected text"),
        ({"notes": [NOT_TEXT]}, "notes[0]: expected text"),
        ({"stats": {"critical_path": [{"a": 1}]}}, "stats.critical_path[0]: expected text"),
        (
            {"steps": [step("a", matrix={"k": DEEP})]},
            "not a run record: invalid JSON (arrays and objects nested more than 100 deep)",
        ),
    ],
)
def test_a_records_values_are_of_the_kinds_a_run_writes(
    tmp_path: Path, change: dict[str, Any], expected: str
) -> None:
    process, _, texts = merge(tmp_path, record(step("a")) | change)
    assert process.returncode == 2, process.stderr
    assert f"run-1.json: {expected}" in process.stderr
    assert "Traceback" not in process.stderr and not texts["json"]


def test_a_record_past_64_mib_is_refused_unread(tmp_path: Path) -> None:
    text = json.dumps(record(step("a")))
    with (tmp_path / "crafted.json").open("w", encoding="utf-8") as file:
        file.write(text)
        file.write(" " * (64 * 1024 * 1024 - len(text) + 1))  # still a valid record: blanks after it
    for command in record_commands(tmp_path):
        process = run_cli(tmp_path, *command)
        assert process.returncode == 2, (command, process.stderr)
        expected = "crafted.json: cannot read run record: 67,108,865 bytes, more than the 64 MiB read"
        assert expected in process.stderr, process.stderr


@pytest.mark.parametrize(
    ("text", "place"),
    [
        ('{"run_id": "\\udc80", "playbook": "ci"}', "1:13"),
        ('{"run_id": "r",\n "vars": {"\\ud83d": "x"}}', "2:12"),
        ('{"run_id": "r", "notes": ["\\ud83d\\u0041"]}', "1:28"),  # a first half, no second
    ],
)
def test_lone_surrogate_escapes_in_a_record_are_refused_where_they_are(
    tmp_path: Path, text: str, place: str
) -> None:
    # Before: a traceback from whatever wrote the text first (a report, the console, sqlite).
    (tmp_path / "crafted.json").write_text(text, encoding="utf-8")
    for command in record_commands(tmp_path):
        process = run_cli(tmp_path, *command)
        assert process.returncode == 2, (command, process.stderr)
        assert f"crafted.json:{place}: not a run record: '\\u" in process.stderr, process.stderr
        assert "is not valid Unicode text (half of a character)" in process.stderr
        assert "Traceback" not in process.stderr


def test_a_surrogate_pair_and_escaped_backslashes_are_text(tmp_path: Path) -> None:
    crafted = json.dumps(record(step("a"), vars={"X": "\U0001f600 \\ud800"}))  # an emoji; `\ud800` as text
    assert "\\ud83d\\ude00" in crafted and "\\\\ud800" in crafted
    (tmp_path / "crafted.json").write_text(crafted, encoding="utf-8")
    process = run_cli(tmp_path, "report", "merge", "crafted.json")
    assert process.returncode == 1, process.stderr
    again = json.loads((tmp_path / ".ci-orchestrator" / "reports" / "run.json").read_text(encoding="utf-8"))
    assert again["vars"] == {"X": "\U0001f600 \\ud800"}


@pytest.mark.parametrize("depth", [101, 100_000])
def test_json_nested_past_100_deep_is_refused_by_every_reader_alike(tmp_path: Path, depth: int) -> None:
    # Before: 100,000 deep was a RecursionError traceback; 101 to some 970 deep was read by some
    # commands and refused by others, by how deep in the interpreter each read it.
    nested = "[" * depth + "]" * depth
    too_deep = "invalid JSON (arrays and objects nested more than 100 deep)"
    text = json.dumps(record(step("a", matrix={"k": "NESTED"}))).replace('"NESTED"', nested)
    (tmp_path / "crafted.json").write_text(text, encoding="utf-8")
    for command in record_commands(tmp_path):
        process = run_cli(tmp_path, *command)
        assert process.returncode == 2, (command, process.stderr)
        assert f"crafted.json: not a run record: {too_deep}" in process.stderr
        assert "Traceback" not in process.stderr

    (tmp_path / "good.json").write_text(json.dumps(record(step("a"))), encoding="utf-8")
    event = tmp_path / "event.json"
    event.write_text(f'{{"pull_request": {nested}}}', encoding="utf-8")
    env = cli_environment(tmp_path, GITHUB_EVENT_PATH=str(event), GITHUB_TOKEN="t", GITHUB_REPOSITORY="o/r")
    commented = run_cli(tmp_path, "report", "comment", "good.json", env=env)
    assert commented.returncode == 0, commented.stderr
    assert f"the event file $GITHUB_EVENT_PATH ({event}) is not read: {too_deep}" in commented.stderr

    assert run_cli(tmp_path, "run").returncode == 0
    assert run_cli(tmp_path, "history", "export", "carried.db").returncode == 0
    with sqlite3.connect(tmp_path / "carried.db") as connection:
        connection.execute("UPDATE runs SET run_id = 'carried'")
        connection.execute("UPDATE steps SET run_id = 'carried', matrix = ?", (nested,))
    connection.close()
    imported = run_cli(tmp_path, "history", "import", "carried.db")
    assert imported.returncode == 0, imported.stderr
    assert imported.stdout.startswith("imported 0 runs from carried.db (1 passed over")


def merged_record(work: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((work / ".ci-orchestrator" / "reports" / "run.json").read_text("utf-8"))
    return data


def test_a_failure_shows_in_a_merge_whatever_the_order_of_the_records(tmp_path: Path) -> None:
    # Before: of two records with the same instance, the last given won; a failure vanished (exit 0).
    failed = record(step("t"))
    passed = record(step("t", "passed"), run_id="r-2", status="passed")
    for records in ((failed, passed), (passed, failed)):
        process, _, _ = merge(tmp_path, *records)
        assert process.returncode == 1, process.stderr
        merged = merged_record(tmp_path)
        assert (merged["status"], [s["status"] for s in merged["steps"]]) == ("failed", ["failed"])

    later = step("t", "passed", started="2026-11-25T11:00:00.000000Z", finished="2026-11-25T11:00:02.000000Z")
    rerun = record(later, run_id="r-2", status="passed", finished="2026-11-25T11:00:05.000000Z")
    for records in ((failed, rerun), (rerun, failed)):
        process, _, _ = merge(tmp_path, *records)
        assert process.returncode == 0, process.stderr  # a job run again, which passed
        assert [s["status"] for s in merged_record(tmp_path)["steps"]] == ["passed"]


def test_an_instance_two_shards_both_ran_fails_the_merge(tmp_path: Path) -> None:
    # Shards that split different plans (each job's own history): one ran what another ran too,
    # and what neither ran is in no record. Before: the merge passed.
    first = record(step("s1", "passed"), shard="1/2", status="passed")
    second = record(step("s1", "passed"), step("s3", "passed"), run_id="r-2", shard="2/2", status="passed")
    for records in ((first, second), (second, first)):
        process, _, texts = merge(tmp_path, *records)
        assert process.returncode == 1, process.stderr
        expected = "an instance ran in more than one shard of a set: 's1' (1/2, 2/2); the shards split"
        assert expected in process.stderr
        merged = merged_record(tmp_path)
        assert merged["status"] == "failed"
        assert sorted(s["id"] for s in merged["steps"]) == ["s1", "s3"]
        assert expected in texts["summary"]


REPRO_PLAYBOOK = """\
name: ci
vars: {TARGET: all}
steps:
  - id: build
    matrix: {py: ["3.11", "3.12"]}
    run: echo building ${{ vars.TARGET }} for ${{ matrix.py }}; exit 1
"""


def repro_project(tmp_path: Path) -> tuple[Path, dict[str, Any]]:
    """A project whose playbook pastes a variable and a matrix value into its command (as many
    do), and the record of its run, failed."""
    work = tmp_path / "project"
    (work / "playbooks").mkdir(parents=True)
    (work / "playbooks" / "ci.yml").write_text(REPRO_PLAYBOOK, encoding="utf-8")
    assert run_cli(work, "run").returncode == 1
    recorded: dict[str, Any] = json.loads((work / ".ci-orchestrator/reports/run.json").read_text("utf-8"))
    return work, recorded


@pytest.mark.parametrize("named", ["artifact/ci.yml", "../elsewhere/ci.yml", "ABSOLUTE"])
def test_repro_runs_a_playbook_of_this_project_never_one_a_record_names(tmp_path: Path, named: str) -> None:
    # Before: the file the record named ran, wherever it was (a file that came with the artifact).
    work, recorded = repro_project(tmp_path)
    evil = (
        "name: ci\nsteps:\n  - id: build\n    matrix: {py: ['3.11', '3.12']}\n    run: touch PWNED; exit 1\n"
    )
    for folder in (work / "artifact", tmp_path / "elsewhere"):
        folder.mkdir()
        (folder / "ci.yml").write_text(evil, encoding="utf-8")
    path = str(tmp_path / "elsewhere" / "ci.yml") if named == "ABSOLUTE" else named
    (work / "crafted.json").write_text(json.dumps(recorded | {"playbook_path": path}), encoding="utf-8")
    rerun = run_cli(work, "repro", "crafted.json")
    assert rerun.returncode == 1, rerun.stderr  # the project's playbook, of the same name, failed
    expected = f"the run's playbook {path!r} is not one of this project's: rerunning playbooks/ci.yml"
    assert expected in rerun.stderr
    assert not list(tmp_path.rglob("PWNED"))

    other = recorded | {"playbook_path": path, "playbook": "nightly"}  # of no playbook here
    (work / "other.json").write_text(json.dumps(other), encoding="utf-8")
    refused = run_cli(work, "repro", "other.json")
    assert refused.returncode == 2, refused.stderr
    assert f"other.json: the run's playbook {path!r} is not one of this project's playbooks" in refused.stderr
    assert "give the playbook to rerun with --playbook" in refused.stderr
    chosen = run_cli(work, "repro", "other.json", "--playbook", "ci")
    assert chosen.returncode == 1, chosen.stderr
    assert not list(tmp_path.rglob("PWNED"))


def test_repro_takes_no_value_a_record_brings_unless_it_is_given(tmp_path: Path) -> None:
    # Before: the record's variables and matrix values were pasted into the steps' commands.
    work, recorded = repro_project(tmp_path)
    value = "3.11; touch PWNED_MATRIX"
    crafted = recorded | {
        "vars": {"TARGET": "all; touch PWNED_VARS"},
        "matrix_filters": {"py": [value]},
        "steps": [recorded["steps"][0] | {"id": f"build ({value})", "matrix": {"py": value}}],
    }
    (work / "crafted.json").write_text(json.dumps(crafted), encoding="utf-8")
    reports = work / ".ci-orchestrator" / "reports"
    before = sorted(path.name for path in reports.iterdir())
    refused = run_cli(work, "repro", "crafted.json")
    assert refused.returncode == 2, refused.stderr
    assert (
        "crafted.json: the record runs the steps with values that the playbook does not have:"
        " --var 'TARGET=all; touch PWNED_VARS', --matrix 'py=3.11; touch PWNED_MATRIX'"
    ) in refused.stderr
    assert sorted(path.name for path in reports.iterdir()) == before  # nothing ran
    assert not list(work.glob("PWNED*"))

    # Values the playbook has are taken as they are: a --matrix that chose among its instances.
    chose = recorded | {"matrix_filters": {"py": ["3.12"]}, "steps": [recorded["steps"][1]]}
    (work / "chose.json").write_text(json.dumps(chose), encoding="utf-8")
    rerun = run_cli(work, "repro", "chose.json")
    assert rerun.returncode == 1, rerun.stderr
    assert [step["id"] for step in repro_record(work, rerun)["steps"]] == ["build (3.12)"]

    # Given again, having read them, they are the user's: the rerun runs with them.
    given = run_cli(
        work, "repro", "crafted.json", "--var", "TARGET=all; touch PWNED_VARS", "--matrix", f"py={value}"
    )
    assert given.returncode == 1, given.stderr
    assert sorted(path.name for path in work.glob("PWNED*")) == ["PWNED_MATRIX", "PWNED_VARS"]
