"""What a run prints, as a person reads it in a real process's output: outside GitHub Actions a
passing step is one line and a failure shows the end of its log, every log whole in its file;
under GitHub each log is folded in a group; `--output` and the settings file choose otherwise."""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING

import pytest

from tests.helpers import cli_environment, run_cli

if TYPE_CHECKING:
    from pathlib import Path

DOTS = 1700  # lines of a test runner's progress
PLAYBOOK = f"""\
name: ci
steps:
  - id: install
    run: for i in $(seq 300); do echo "Collecting package-$i"; done
  - id: test
    run: |
      for i in $(seq {DOTS}); do echo "tests/test_$i.py ........................................ [ 50%]"; done
      if [ -e broken ]; then
        echo "___ test_answer ___"
        echo "E   assert 41 == 42"
        echo "FAILED tests/test_answer.py::test_answer - assert 41 == 42"
        echo "1 failed, {DOTS} passed"
        exit 1
      fi
      echo "{DOTS} passed"
  - id: lint
    run: echo "All checks passed!"
"""


@pytest.fixture
def project(workdir: Path) -> Path:
    (workdir / "ci.yml").write_text(PLAYBOOK)
    return workdir


def record(work: Path) -> dict[str, object]:
    loaded: dict[str, object] = json.loads((work / ".ci-orchestrator/reports/run.json").read_text())
    return loaded


def folded(out: str, title: str) -> list[str]:
    """The lines of the group whose title starts with `title`, GitHub's commands left out."""
    lines = out.splitlines()
    start = next(index for index, line in enumerate(lines) if line.startswith(f"::group::{title}"))
    end = lines.index("::endgroup::", start)
    return [line for line in lines[start + 1 : end] if not line.startswith("::")]


def test_a_green_run_off_a_terminal_prints_a_line_per_step_and_the_totals(project: Path) -> None:
    done = run_cli(project, "run", "ci.yml")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    run_id = record(project)["run_id"]
    assert lines[0] == f"ci: 3 steps (run {run_id})"
    assert [line.split()[:2] for line in lines[1:4]] == [
        ["passed", step] for step in ("install", "test", "lint")
    ]
    assert lines[4:7] == ["", "3 steps: 3 passed", f"step logs: .ci-orchestrator/logs/{run_id}/"]
    assert lines[7].startswith("ci passed in ")
    assert len(lines) == 8
    # Every line is in the logs.
    log = project / f".ci-orchestrator/logs/{run_id}/test.log"
    assert len(log.read_text().splitlines()) == DOTS + 1


def test_a_failure_off_a_terminal_shows_the_end_of_its_log_and_where_the_rest_is(project: Path) -> None:
    (project / "broken").touch()
    done = run_cli(project, "run", "ci.yml")
    assert done.returncode == 1
    out = done.stdout
    assert "Collecting package" not in out  # a passing step's log stays in its file
    assert "FAILED tests/test_answer.py::test_answer - assert 41 == 42" in out
    found = re.search(r"\.\.\. the last 500 lines \(([\d,]+) earlier lines in (\S+)\):", out)
    assert found, out
    left_out, log = int(found[1].replace(",", "")), project / found[2]
    assert left_out == DOTS + 4 - 500
    assert len(log.read_text().splitlines()) == DOTS + 4  # the whole log, in the file named
    shown = out[found.end() : out.index("\n          end of test")].splitlines()[1:]
    assert shown == log.read_text().splitlines()[left_out:]
    assert out.splitlines()[-1].startswith("ci failed in ")


def test_under_github_each_log_is_folded_in_a_group(project: Path, tmp_path: Path) -> None:
    files = {"GITHUB_STEP_SUMMARY": tmp_path / "summary.md", "GITHUB_OUTPUT": tmp_path / "output"}
    for path in files.values():
        path.touch()
    env = cli_environment(project, GITHUB_ACTIONS="true", CI="true", **{k: str(v) for k, v in files.items()})
    done = run_cli(project, "run", "ci.yml", env=env)
    assert done.returncode == 0, done.stderr
    assert folded(done.stdout, "passed    test") == [
        f"tests/test_{i}.py ........................................ [ 50%]" for i in range(1, DOTS + 1)
    ] + [f"{DOTS} passed"]


@pytest.mark.parametrize("how", ["option", "settings file"])
def test_grouped_asked_for_prints_every_log_whole(project: Path, how: str) -> None:
    if how == "option":
        done = run_cli(project, "run", "ci.yml", "--output", "grouped")
    else:
        (project / "ci-orchestrator.toml").write_text('output = "grouped"\n')
        done = run_cli(project, "run", "ci.yml")
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("Collecting package-") == 300
    assert done.stdout.count(" [ 50%]") == DOTS


def test_quiet_asked_for_under_github_folds_only_the_failures(project: Path, tmp_path: Path) -> None:
    (project / "broken").touch()
    summary = tmp_path / "summary.md"
    summary.touch()
    env = cli_environment(project, GITHUB_ACTIONS="true", CI="true", GITHUB_STEP_SUMMARY=str(summary))
    done = run_cli(project, "run", "ci.yml", "--output", "quiet", env=env)
    assert done.returncode == 1
    assert "Collecting package-" not in done.stdout
    assert "passed    install" in done.stdout
    # Folded, a failure's log is whole: it costs a reader nothing until opened.
    assert len(folded(done.stdout, "failed    test")) == DOTS + 4
