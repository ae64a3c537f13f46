"""A step's own tests in the reports, end to end: real pytest runs in a fixture project with a
test broken on purpose (not this repository's suite), read back from summary.md, run.json, the
run's JUnit file and the one `report merge` writes; a cached run's counts; shards joined; GitHub
annotations at each failing test's line."""

from __future__ import annotations

import json
import os
import shutil
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import junitparser

from tests.helpers import FIXTURES, REPO, cli_environment, run_cli
from tests.reporters.test_junit_schema import schema_problems

PROJECT = FIXTURES / "junit" / "project"
BROKEN = "tests.test_arithmetic.TestSums.test_deliberately_broken"
PYTEST = "python -m pytest -q -p no:cacheprovider -o junit_family=xunit1"


def project(root: Path, playbook: str) -> Path:
    """The fixture project in `root`, with `playbook` as playbooks/ci.yml."""
    shutil.copytree(PROJECT, root, dirs_exist_ok=True)
    (root / "playbooks").mkdir(exist_ok=True)
    (root / "playbooks" / "ci.yml").write_text(playbook)
    return root


def tool_environment(work: Path, **extra: str) -> dict[str, str]:
    """The CLI's environment with this interpreter's scripts (pytest) first on PATH."""
    env = cli_environment(work, **extra)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    return env


def reports(work: Path, folder: str = ".ci-orchestrator/reports") -> tuple[str, dict[str, Any], str]:
    """summary.md, run.json and junit.xml of a run."""
    where = work / folder
    return (
        (where / "summary.md").read_text(),
        json.loads((where / "run.json").read_text()),
        (where / "junit.xml").read_text(),
    )


def step_tests(record: dict[str, Any], instance: str) -> dict[str, Any]:
    return next(step for step in record["steps"] if step["id"] == instance)["tests"]


def suite_of(document: str, instance: str) -> junitparser.TestSuite:
    suites = {suite.name: suite for suite in junitparser.JUnitXml.fromstring(document.encode())}
    return suites[instance]


def test_the_projects_own_playbook_names_a_broken_test_in_every_report(tmp_path: Path) -> None:
    """playbooks/ci.yml's `tests` step, run on a project whose test is broken: the test's name
    is in summary.md, run.json, the run's JUnit file and the JUnit file of `report merge`."""
    work = project(tmp_path, (REPO / "playbooks" / "ci.yml").read_text())
    env = tool_environment(work)
    ran = run_cli(work, "run", "ci", "--select", "tests", "--only", env=env)
    assert ran.returncode == 1, ran.stdout + ran.stderr
    assert "ci-orchestrator: warning" not in ran.stderr, ran.stderr
    summary, record, junit = reports(work)
    assert f"<code>{BROKEN}</code>: AssertionError: two and two make four, not five" in summary
    assert "**Failing tests**: 2 of 4 tests failed" in summary
    tests = step_tests(record, "tests")
    assert {key: tests[key] for key in ("total", "passed", "failed", "skipped")} == {
        "total": 4,
        "passed": 1,
        "failed": 2,
        "skipped": 1,
    }
    failures = {failure["name"]: failure for failure in tests["failures"]}  # in the order tests ended
    assert sorted(failures) == [f"tests :: {BROKEN}", "tests :: tests.test_arithmetic.test_setup_breaks"]
    broken = failures[f"tests :: {BROKEN}"]
    assert (broken["file"], broken["line"]) == ("tests/test_arithmetic.py", 11)
    for document in (junit, _merged_junit(work, env)):
        assert schema_problems(document) == []
        suite = suite_of(document, "tests")
        cases = {case.name: case for case in suite}
        assert cases["test_deliberately_broken"].classname == "tests.test_arithmetic.TestSums"
        assert cases["test_deliberately_broken"].is_failure
        assert "two and two make four" in (cases["test_deliberately_broken"].result[0].message or "")
        assert cases["test_setup_breaks"].is_error


def _merged_junit(work: Path, env: dict[str, str]) -> str:
    merged = run_cli(
        work, "report", "merge", ".ci-orchestrator/reports/run.json", "--junit", "merged/junit.xml", env=env
    )
    assert merged.returncode == 1, merged.stderr
    return (work / "merged" / "junit.xml").read_text()


CACHED = f"""\
name: fixture
steps:
  - id: unit
    inputs: ["tests/**"]
    run: {PYTEST} --junitxml=reports/unit.xml tests
    junit: [reports/unit.xml]
"""


def test_a_cached_step_reports_the_same_tests(tmp_path: Path) -> None:
    work = project(tmp_path, CACHED)
    source = work / "tests" / "test_arithmetic.py"
    fixed = source.read_text().replace("2 + 2 == 5", "2 + 2 == 4").replace("raise RuntimeError", "print")
    source.write_text(fixed)
    env = tool_environment(work)
    first = run_cli(work, "run", "ci", env=env)
    assert first.returncode == 0, first.stdout + first.stderr
    _, ran, ran_junit = reports(work)
    shutil.rmtree(work / "reports")  # restored from the cache with the step's result
    second = run_cli(work, "run", "ci", env=env)
    assert second.returncode == 0, second.stdout + second.stderr
    assert "ci-orchestrator: warning" not in second.stderr, second.stderr
    _, cached, cached_junit = reports(work)
    assert cached["steps"][0]["status"] == "cached"
    assert step_tests(cached, "unit") == step_tests(ran, "unit")
    assert step_tests(cached, "unit")["passed"] == 3 and step_tests(cached, "unit")["skipped"] == 1
    assert (work / "reports" / "unit.xml").is_file()
    names = [[case.name for case in suite_of(document, "unit")] for document in (ran_junit, cached_junit)]
    assert names[0] == names[1] and len(names[0]) == 4


SHARDED = f"""\
name: fixture
execution: parallel
steps:
  - id: unit
    run: {PYTEST} --junitxml=reports/unit.xml tests
    junit: [reports/unit.xml]
  - id: smoke
    run: {PYTEST} --junitxml=reports/smoke.xml -k small tests
    junit: [reports/smoke.xml]
"""


def test_report_merge_joins_the_tests_of_shards(tmp_path: Path) -> None:
    work = project(tmp_path, SHARDED)
    env = tool_environment(work)
    for index in (1, 2):
        shard = run_cli(work, "run", "ci", "--shard", f"{index}/2", "--json", f"shards/{index}.json", env=env)
        assert shard.returncode in (0, 1), shard.stderr
    merged = run_cli(work, "report", "merge", "shards/1.json", "shards/2.json", env=env)
    assert merged.returncode == 1, merged.stderr
    summary, record, junit = reports(work)
    assert step_tests(record, "unit")["failed"] == 2
    assert step_tests(record, "smoke")["total"] == step_tests(record, "smoke")["passed"] == 1
    assert f"<code>{BROKEN}</code>" in summary
    assert schema_problems(junit) == []
    root = ET.fromstring(junit)
    assert {suite.get("name") for suite in root.iter("testsuite")} == {"fixture", "unit", "smoke"}
    unit = suite_of(junit, "unit")
    # A run record keeps the failing tests: the merged suite lists those, and says so.
    assert sorted(case.name for case in unit) == ["test_deliberately_broken", "test_setup_breaks"]
    assert "4 tests ran: 1 passed, 2 failed, 1 skipped" in junit


MISSING = """\
name: fixture
steps:
  - id: quiet
    run: "true"
    junit: [reports/never-written.xml]
"""


def test_a_missing_junit_file_is_a_warning_not_a_failure(tmp_path: Path) -> None:
    work = project(tmp_path, MISSING)
    ran = run_cli(work, "run", "ci")
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert "quiet: junit: no file matches 'reports/never-written.xml'" in ran.stderr
    _, record, junit = reports(work)
    assert step_tests(record, "quiet") == {"total": 0, "passed": 0, "failed": 0, "skipped": 0, "failures": []}
    assert schema_problems(junit) == []


MANY = """\
name: fixture
steps:
  - id: many
    run: python write_failures.py
    junit: [many.xml]
"""
WRITE_FAILURES = """\
cases = "".join(
    f'<testcase classname="tests.test_many" name="test_{n}" file="tests/test_many.py" line="{n}">'
    f'<failure message="case {n} broke">tests/test_many.py:{n + 100}: AssertionError</failure></testcase>'
    for n in range(1, 16)
)
open("many.xml", "w").write(f"<testsuite>{cases}</testsuite>")
raise SystemExit(1)
"""


def test_under_github_failing_tests_are_annotated_at_their_line_within_the_cap(tmp_path: Path) -> None:
    work = project(tmp_path, MANY)
    (work / "write_failures.py").write_text(WRITE_FAILURES)
    summary_file, output_file = work / "step-summary.md", work / "outputs.txt"
    env = tool_environment(
        work, GITHUB_ACTIONS="true", GITHUB_STEP_SUMMARY=str(summary_file), GITHUB_OUTPUT=str(output_file)
    )
    ran = run_cli(work, "run", "ci", env=env)
    assert ran.returncode == 1, ran.stderr
    errors = [line for line in ran.stdout.splitlines() if line.startswith("::error ")]
    # GitHub keeps 10 a step: the step's own, 8 tests at their place, and one that counts the rest.
    assert len(errors) == 10, errors
    placed = [line for line in errors if line.startswith("::error file=tests/test_many.py,line=")]
    assert len(placed) == 8
    assert placed[0].startswith(
        "::error file=tests/test_many.py,line=101,title=many %3A%3A tests.test_many.test_1::"
    )
    assert "case 1 broke" in placed[0]
    assert "7 more failing tests" in errors[-1]
    assert "test_15" in summary_file.read_text()
