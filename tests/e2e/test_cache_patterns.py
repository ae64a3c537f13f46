"""Cache patterns that match nothing, as a user meets them: an `inputs` glob with a typo, an
`outputs` path the step never writes. Real step processes, a real cache directory, the CLI."""

from __future__ import annotations

import json
import textwrap
from typing import TYPE_CHECKING

from tests.helpers import run_cli

if TYPE_CHECKING:
    from pathlib import Path


def project(work: Path, playbook: str) -> Path:
    """`work` with sources, tests and playbooks/ci.yml holding `playbook`'s steps."""
    (work / "src").mkdir(parents=True)
    (work / "src" / "app.py").write_text("print('v1')\n")
    (work / "tests").mkdir()
    (work / "tests" / "test_app.py").write_text("def test(): pass\n")
    (work / "playbooks").mkdir()
    (work / "playbooks" / "ci.yml").write_text("name: ci\n" + textwrap.dedent(playbook))
    return work


def run(work: Path, *args: str) -> tuple[dict[str, str], list[str]]:
    """Runs the playbook: instance id -> status, and the warnings said."""
    done = run_cli(work, "run", "--output", "quiet", *args)
    assert done.returncode == 0, done.stdout + done.stderr
    record = json.loads((work / ".ci-orchestrator" / "reports" / "run.json").read_text())
    return {step["id"]: step["status"] for step in record["steps"]}, warnings(done.stderr)


def warnings(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if "warning" in line]


TYPO = """
steps:
  - id: build
    inputs: ["scr/**"]
    run: echo build >> ran.log
  - id: test
    needs: [build]
    inputs: ["tests/**"]
    matrix: {py: ["3.11", "3.12"]}
    run: echo test >> ran.log
"""


def test_an_inputs_glob_that_matches_nothing_warns_and_never_serves_a_stale_result(tmp_path: Path) -> None:
    work = project(tmp_path, TYPO)
    statuses, said = run(work)
    assert set(statuses.values()) == {"passed"}
    # Once per run and pattern, naming the step and the pattern, with the folder it meant.
    assert len(said) == 1, said
    assert "'build'" in said[0] and "'scr/**'" in said[0] and "matches no file" in said[0]
    assert "did you mean 'src/**'" in said[0]

    # The sources change: the step runs again, and so does what waits for it.
    (work / "src" / "app.py").write_text("print('v2')\n")
    statuses, said = run(work)
    assert statuses == {"build": "passed", "test (3.11)": "passed", "test (3.12)": "passed"}
    assert len(said) == 1, said
    assert (work / "ran.log").read_text().count("build") == 2

    # Fixed: cached from the next run on, and nothing to warn about.
    playbook = work / "playbooks" / "ci.yml"
    playbook.write_text(playbook.read_text().replace("scr/**", "src/**"))
    assert run(work)[1] == []
    statuses, said = run(work)
    assert set(statuses.values()) == {"cached"}, statuses
    assert said == []


def test_plan_and_cache_explain_say_an_inputs_glob_matches_nothing(tmp_path: Path) -> None:
    work = project(tmp_path, TYPO)
    run(work)
    plan = run_cli(work, "plan", "--format", "json")
    assert plan.returncode == 0, plan.stderr
    assert {item["id"]: item["cache"] for item in json.loads(plan.stdout)["instances"]} == {
        "build": "miss",
        "test (3.11)": "miss",
        "test (3.12)": "miss",
    }
    said = warnings(plan.stderr)
    assert len(said) == 1 and "'scr/**'" in said[0], plan.stderr

    text = run_cli(work, "plan")
    assert len(warnings(text.stderr)) == 1, text.stderr

    explained = run_cli(work, "cache", "explain", "test")
    assert explained.returncode == 0, explained.stderr
    lines = explained.stdout.splitlines()
    assert lines[0] == "test (3.11): will run"
    assert "inputs pattern 'scr/**' of step 'build' matches no file" in lines[1]


def test_an_input_a_step_upstream_makes_is_no_warning_before_it_is_made(tmp_path: Path) -> None:
    work = project(
        tmp_path,
        """
        steps:
          - id: build
            inputs: ["src/**"]
            outputs: ["dist/"]
            run: mkdir -p dist && cp src/app.py dist/app.py
          - id: test
            needs: [build]
            inputs: ["dist/**", "tests/**"]
            run: test -f dist/app.py
        """,
    )
    plan = run_cli(work, "plan", "--format", "json")
    assert plan.returncode == 0 and warnings(plan.stderr) == [], plan.stderr
    assert run(work) == ({"build": "passed", "test": "passed"}, [])
    assert run(work) == ({"build": "cached", "test": "cached"}, [])


def test_a_declared_output_the_step_did_not_write_warns_and_nothing_is_stored(tmp_path: Path) -> None:
    work = project(
        tmp_path,
        """
        steps:
          - id: build
            inputs: ["src/**"]
            outputs: ["dist/app.whl", "build/"]
            run: mkdir -p dist build && echo whl > dist/app.tar && echo o > build/o && echo b >> ran.log
        """,
    )
    for count in (1, 2):
        statuses, said = run(work)
        assert statuses == {"build": "passed"}
        assert len(said) == 1, said
        assert "'build'" in said[0] and "'dist/app.whl'" in said[0] and "not cached" in said[0]
        assert (work / "ran.log").read_text() == "b\n" * count


def test_an_output_one_instance_makes_after_another_found_none_is_stored(tmp_path: Path) -> None:
    """Two instances share an `outputs` glob: the second writes its folder after the first found
    it missing; the second's result is stored all the same."""
    work = project(
        tmp_path,
        """
        steps:
          - id: gen
            matrix: {n: ["1", "2"]}
            inputs: ["src/**"]
            outputs: ["out/**"]
            run: if [ "$MATRIX_N" = 2 ]; then mkdir -p out && echo 2 > out/2.txt; fi
        """,
    )
    # One at a time, in plan order: the first ends before the second makes the folder.
    statuses, said = run(work, "--sequential")
    assert statuses == {"gen (1)": "passed", "gen (2)": "passed"}
    assert len(said) == 1 and "'out/**'" in said[0], said
    statuses, _ = run(work, "--sequential")
    assert statuses == {"gen (1)": "passed", "gen (2)": "cached"}
