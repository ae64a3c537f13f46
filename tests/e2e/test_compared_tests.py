"""The tests of a step's JUnit files compared across runs, end to end: real pytest runs writing real
JUnit files in a project whose tests change between two runs; the second run compared with the
first through the run history (`--baseline auto`) and through its record (`report compare`), and
its pull-request comment posted to a server on 127.0.0.1 that plays GitHub's API."""

from __future__ import annotations

import json
import shutil
import textwrap
from typing import TYPE_CHECKING, Any

from tests.commands.fake_github import FakeGitHub, serve
from tests.e2e.test_junit_steps import PYTEST, reports, tool_environment
from tests.helpers import run_cli

if TYPE_CHECKING:
    from pathlib import Path

PLAYBOOK = f"""\
name: demo
steps:
  - id: unit
    run: {PYTEST} --junitxml=reports/unit.xml tests
    junit: [reports/unit.xml]
  - id: later
    run: {PYTEST} --junitxml=reports/later.xml later
"""
# The second run reads `later`'s JUnit file too: the first did not, so nothing is claimed of it.
WITH_LATER = PLAYBOOK + "    junit: [reports/later.xml]\n"

BODIES = {
    "passed": "assert True",
    "failed": 'assert 2 + 2 == 5, "{name} is broken"',
    "skipped": 'pytest.skip("not here")',
}


def write_tests(folder: Path, **outcomes: str) -> None:
    """A test module whose `test_NAME` ends as `outcomes` says, in the order given."""
    folder.mkdir(exist_ok=True)
    functions = [
        f"def test_{name}():\n    {BODIES[outcome].format(name=name)}\n" for name, outcome in outcomes.items()
    ]
    (folder / "test_mod.py").write_text("import pytest\n\n\n" + "\n\n".join(functions))


def unit(name: str) -> str:
    return f"unit :: tests.test_mod.test_{name}"


def run(work: Path, playbook: str) -> dict[str, Any]:
    (work / "playbooks").mkdir(exist_ok=True)
    (work / "playbooks" / "ci.yml").write_text(playbook)
    done = run_cli(work, "run", "--no-fail-fast", env=tool_environment(work))
    assert done.returncode == 1, done.stdout + done.stderr
    assert "ci-orchestrator: warning" not in done.stderr, done.stderr
    return reports(work)[1]


def two_runs(work: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """The first run (its record kept as base.json), then the second, with the tests changed."""
    write_tests(work / "tests", a="passed", b="failed", c="failed", e="failed", gone="failed")
    write_tests(work / "later", old="failed")
    first = run(work, PLAYBOOK)
    shutil.copy(work / ".ci-orchestrator/reports/run.json", work / "base.json")
    # a breaks, b is fixed, c still fails, e is skipped now, `gone` is deleted, `new` is new and fails.
    write_tests(work / "tests", a="failed", b="passed", c="failed", e="skipped", new="failed")
    write_tests(work / "later", old="failed", fresh="failed")
    return first, run(work, WITH_LATER)


def posted_comment(work: Path) -> str:
    """The body `report comment --mode failures` posts for the last run, on a new pull request."""
    for github in serve(FakeGitHub()):
        env = {**github.pull_request_environment(work, number=9), "GITHUB_TOKEN": "ghs_token"}
        done = run_cli(work, "report", "comment", "--mode", "failures", env=tool_environment(work, **env))
        assert done.returncode == 0, done.stderr
        (posted,) = github.calls("POST")
    body: str = posted.body["body"]
    return body


def test_tests_that_fail_since_the_last_run_and_those_fixed(tmp_path: Path) -> None:
    first, second = two_runs(tmp_path)
    comparison = second["comparison"]
    assert comparison["baseline"]["run_id"] == first["run_id"]  # from the run history
    assert comparison["new_test_failures"] == [unit("a"), unit("new")]
    # Skipped or deleted is not fixed: the run being made knows its every test.
    assert comparison["fixed_tests"] == [unit("b")]
    # `unit` failed in both runs: the instance is still failing, its tests say what changed.
    assert comparison["still_failing"] == ["unit", "later"]

    summary = reports(tmp_path)[0]
    top = summary[: summary.index("### Steps")]
    assert f"- ❌ **2 new test failures**: `{unit('a')}`, `{unit('new')}`" in top
    assert f"- ✅ **1 fixed test**: `{unit('b')}`" in top
    assert "**Failing tests**: 3 of 5 tests failed, 2 new" in summary
    # Under the step, what fails since the baseline first, marked.
    section = summary[summary.index("#### ❌ `unit`") :]
    assert section.index("🆕 <code>tests.test_mod.test_a</code>") < section.index(
        "<code>tests.test_mod.test_c</code>"
    )
    assert "🆕 <code>tests.test_mod.test_new</code>: AssertionError: new is broken" in section
    assert "🆕 <code>tests.test_mod.test_c</code>" not in section

    # The same two runs from their records: a record keeps the failing tests only, so a test
    # no longer failing there is fixed, skipped or deleted alike.
    printed = run_cli(tmp_path, "report", "compare", "base.json", "--format", "json")
    assert printed.returncode == 0, printed.stderr
    recorded = json.loads(printed.stdout)
    assert recorded["new_test_failures"] == comparison["new_test_failures"]
    assert recorded["fixed_tests"] == [unit("b"), unit("e"), unit("gone")]
    text = run_cli(tmp_path, "report", "compare", "base.json").stdout
    assert f"- ❌ **2 new test failures**: `{unit('a')}`, `{unit('new')}`" in text

    # Against the first run's record (`--baseline`), the second run says what it said before.
    again = run_cli(
        tmp_path, "run", "--no-fail-fast", "--baseline", "base.json", env=tool_environment(tmp_path)
    )
    assert again.returncode == 1, again.stderr
    assert reports(tmp_path)[1]["comparison"]["new_test_failures"] == comparison["new_test_failures"]


def test_the_pull_request_comment_names_the_failing_tests_new_ones_first(tmp_path: Path) -> None:
    two_runs(tmp_path)
    body = posted_comment(tmp_path)
    assert body.startswith("<!-- ci-orchestrator: demo -->")
    assert f"- ❌ **2 new test failures**: `{unit('a')}`, `{unit('new')}`" in body
    assert "**Tests 7**: ✅ 1 passed · ❌ 5 failed · ⏭️ 1 skipped" in body
    section = body[body.index("#### ❌ `unit`") : body.index("#### ❌ `later`")]
    assert "**Failing tests**: 3 of 5 tests failed, 2 new" in section
    new_a, new_new = (section.index(f"🆕 <code>tests.test_mod.test_{name}</code>") for name in ("a", "new"))
    assert new_a < new_new < section.index("<code>tests.test_mod.test_c</code>")
    # Each with its message, and the first lines of its text.
    assert "<code>tests.test_mod.test_a</code>: AssertionError: a is broken" in section
    assert "assert 2 + 2 == 5" in section
    # `later` read no JUnit file in the first run: its tests fail, none of them is called new.
    later = body[body.index("#### ❌ `later`") :]
    assert "<code>later.test_mod.test_fresh</code>" in later
    assert "🆕" not in later


def test_a_step_that_passes_with_failing_tests_is_commented_in_failures_mode(tmp_path: Path) -> None:
    write_tests(tmp_path / "tests", a="failed", b="passed")
    playbook = textwrap.dedent(
        f"""\
        name: demo
        steps:
          - id: unit
            run: {PYTEST} --junitxml=reports/unit.xml tests || true
            junit: [reports/unit.xml]
        """
    )
    (tmp_path / "playbooks").mkdir()
    (tmp_path / "playbooks" / "ci.yml").write_text(playbook)
    assert run_cli(tmp_path, "run", env=tool_environment(tmp_path)).returncode == 0
    assert "<code>tests.test_mod.test_a</code>" in posted_comment(tmp_path)
