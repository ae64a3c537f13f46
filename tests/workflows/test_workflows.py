"""GitHub workflows run here: the jobs' steps in one environment, GitHub's rules, GitHub's refusals."""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING
from xml.etree import ElementTree

from tests.helpers import cli_environment, run_cli

if TYPE_CHECKING:
    from pathlib import Path

ACTION = """\
name: greet
inputs:
  who: {default: world}
outputs:
  said: {value: "${{ steps.s.outputs.said }}"}
runs:
  using: composite
  steps:
    - id: s
      shell: bash
      run: echo "said=hello ${{ inputs.who }}" >> "$GITHUB_OUTPUT"
"""

WORKFLOW = """\
name: t
on: push
jobs:
  build:
    runs-on: ubuntu-latest
    strategy:
      matrix: {n: [1, 2]}
    outputs:
      v: ${{ steps.o.outputs.v }}
    steps:
      - uses: actions/checkout@v4
      - id: o
        run: |
          echo "v=built-${{ matrix.n }}" >> "$GITHUB_OUTPUT"
          echo "X=from-env" >> "$GITHUB_ENV"
          mkdir -p tools && printf '#!/bin/sh\\necho tool-ran\\n' > tools/mytool && chmod +x tools/mytool
          echo "$PWD/tools" >> "$GITHUB_PATH"
      - run: test "$X" = from-env && test "$(mytool)" = tool-ran
      - id: g
        uses: ./act
        with: {who: ci}
      - run: test "${{ steps.g.outputs.said }}" = "hello ci"
      - id: allowed
        run: exit 4
        continue-on-error: true
      - run: echo "outcome=${{ steps.allowed.outcome }} conclusion=${{ steps.allowed.conclusion }}"
      - uses: some/action@v1
  fails:
    runs-on: ubuntu-latest
    steps:
      - run: exit 1
      - run: echo not-after-a-failure
      - run: echo always-after-a-failure
        if: always()
  after:
    needs: [build, fails]
    if: always()
    runs-on: ubuntu-latest
    steps:
      - run: echo after ran
  skipped:
    needs: fails
    runs-on: ubuntu-latest
    steps:
      - run: echo never
"""


def _project(tmp_path: Path) -> Path:
    (tmp_path / ".github" / "workflows").mkdir(parents=True)
    (tmp_path / ".github" / "workflows" / "t.yml").write_text(WORKFLOW)
    (tmp_path / "act").mkdir()
    (tmp_path / "act" / "action.yml").write_text(ACTION)
    return tmp_path


def test_a_workflow_runs_its_jobs_with_githubs_rules(tmp_path: Path) -> None:
    work = _project(tmp_path)
    done = run_cli(work, "run", ".github/workflows/t.yml")
    assert done.returncode == 1, done.stderr
    record = json.loads((work / ".ci-orchestrator" / "reports" / "run.json").read_text())
    status = {step["id"]: step["status"] for step in record["steps"]}
    assert status == {
        "build (1)": "passed",
        "build (2)": "passed",
        "fails": "failed",
        "after": "passed",
        "skipped": "skipped",
    }
    logs = {step["id"]: (work / step["log"]).read_text() for step in record["steps"] if step["log"]}
    build = logs["build (1)"]
    assert "outcome=failure conclusion=success" in build
    assert "skipped  Run some/action@v1  (uses: some/action@v1 is not run here)" in build
    assert "output v=built-1" in build
    assert "not-after-a-failure" not in logs["fails"].split("==> Steps")[0].replace("echo not-after", "")
    assert "always-after-a-failure\n" in logs["fails"]
    # Each step of a job is a test case of the job's suite, in the JUnit file and in run.json.
    suites = {
        suite.get("name"): suite
        for suite in ElementTree.parse(work / ".ci-orchestrator" / "reports" / "junit.xml").getroot()
    }
    cases = [(case.get("name"), [child.tag for child in case]) for case in suites["fails"]]
    assert cases == [
        ("Run exit 1", ["failure"]),
        ("Run echo not-after-a-failure", ["skipped"]),
        ("Run echo always-after-a-failure", []),
    ]
    tests = {step["id"]: step["tests"] for step in record["steps"]}
    assert tests["fails"]["failed"] == 1 and tests["fails"]["skipped"] == 1
    assert tests["build (1)"]["total"] == 8 and tests["build (1)"]["failed"] == 0  # allowed failure


def test_import_prints_a_playbook_that_validates(tmp_path: Path) -> None:
    work = _project(tmp_path)
    done = run_cli(work, "import", "github-workflow", ".github/workflows/t.yml", "--job", "after")
    assert done.returncode == 0, done.stderr
    (work / "imported.yml").write_text(done.stdout)
    assert "runs-on: [ubuntu-latest]" in done.stdout
    listed = run_cli(work, "list", "imported.yml")
    assert listed.returncode == 0, listed.stderr
    assert "skipped" not in listed.stdout  # --job after: it and what it needs, not `skipped`
    assert "build" in listed.stdout and "fails" in listed.stdout


def test_what_github_refuses_is_a_located_error(tmp_path: Path) -> None:
    (tmp_path / "w.yml").write_text(
        "on: push\njobs:\n  a:\n    runs-on: x\n    needs: b\n    steps:\n      - run: echo ${{ steps }}\n"
        "        uses: actions/checkout@v4\n  c:\n    if: ${{ steps.x }}\n    runs-on: x\n    steps:\n"
        "      - run: echo\n        shelll: bash\n"
    )
    done = run_cli(tmp_path, "validate", "w.yml")
    assert done.returncode == 2
    assert "w.yml:4:5: jobs.a.needs: job 'a' depends on unknown job 'b'" in done.stderr
    assert "w.yml:7:9: jobs.a.steps[0]: a step has either 'run' or 'uses', not both" in done.stderr
    assert "w.yml:10:9: jobs.c.if: unknown context 'steps'" in done.stderr
    assert "unknown key 'shelll' (did you mean 'shell'?)" in done.stderr
    assert "Traceback" not in done.stderr


NEEDS_WORKFLOW = """\
name: needs
on: push
jobs:
  build:
    runs-on: ubuntu-latest
    strategy:
      matrix: {n: [1, 2]}
    outputs:
      v: ${{ steps.o.outputs.v }}
    steps:
      - id: o
        run: echo "v=built" >> "$GITHUB_OUTPUT"
  flaky:
    runs-on: ubuntu-latest
    continue-on-error: true
    steps:
      - run: exit 3
  broken:
    runs-on: ubuntu-latest
    steps:
      - run: exit 1
  report:
    needs: [build, flaky, broken]
    if: ${{ !cancelled() && needs.broken.result == 'failure' }}
    runs-on: ubuntu-latest
    steps:
      - run: echo "v=${{ needs.build.outputs.v }} flaky=${{ needs.flaky.result }}"
      - if: needs.broken.result == 'failure'
        run: echo broken-seen
      - if: needs.build.result != 'success'
        run: echo never-printed
  on-success:
    needs: broken
    if: needs.broken.result == 'success'
    runs-on: ubuntu-latest
    steps:
      - run: echo never
"""


def test_jobs_read_needs_results_and_outputs_at_job_level_and_in_their_steps(tmp_path: Path) -> None:
    (tmp_path / "needs.yml").write_text(NEEDS_WORKFLOW)
    done = run_cli(tmp_path, "run", "needs.yml")
    assert done.returncode == 1, done.stderr
    record = json.loads((tmp_path / ".ci-orchestrator" / "reports" / "run.json").read_text())
    status = {step["id"]: step["status"] for step in record["steps"]}
    # GitHub: a failed job allowed by continue-on-error is a success for those that need it.
    assert status == {
        "build (1)": "passed",
        "build (2)": "passed",
        "flaky": "failed",
        "broken": "failed",
        "report": "passed",
        "on-success": "skipped",
    }
    report = next(step for step in record["steps"] if step["id"] == "report")
    log = (tmp_path / report["log"]).read_text()
    assert "v=built flaky=success\n" in log
    assert "broken-seen\n" in log
    assert "skipped  Run echo never-printed  (condition is false)" in log


REAL_WORLD_FORMS = """\
on: [push, workflow_dispatch]
jobs:
  typecheck:
    runs-on: ${{ matrix.os_python[0] }}
    strategy:
      matrix:
        os_python:
          - [ubuntu-latest, '3.13']
          - [windows-2022, '3.12']
    steps:
      - run: echo "python ${{ matrix.os_python[1] }}"
  build:
    runs-on: ubuntu-latest
    strategy:
      matrix:
        os: [linux, macos]
        target: [undefined]
        include:
          - {os: linux, target: x86_64}
          - {os: macos, target: aarch64}
        exclude:
          - target: undefined
    steps:
      - run: echo "${{ matrix.os }}-${{ matrix.target }}"
  pick:
    runs-on: ubuntu-latest
    strategy:
      matrix:
        runner: ${{ github.repository == 'numpy/numpy' && fromJSON('["big"]') || fromJSON('["small"]') }}
    steps:
      - run: echo "${{ matrix.runner }}"
  publish:
    runs-on: ubuntu-latest
    env: {PROJECT: https://pypi.org/p/example}
    environment:
      name: release
      url: ${{ env.PROJECT }}
    steps:
      - run: echo publish
"""


def test_forms_github_accepts_in_real_workflows_are_read(tmp_path: Path) -> None:
    """Each form from a well-known project's workflow: a list of lists as an axis's values, an
    `exclude` that removes the whole product while `include` adds the combinations, a matrix
    that reads `github`, and an environment `url` that reads `env`."""
    (tmp_path / "forms.yml").write_text(REAL_WORLD_FORMS)
    done = run_cli(tmp_path, "plan", "forms.yml", "--format", "json")
    assert done.returncode == 0, done.stderr
    ids = [instance["id"] for instance in json.loads(done.stdout)["instances"]]
    assert ids == [
        "typecheck (ubuntu-latest, 3.13)",
        "typecheck (windows-2022, 3.12)",
        "build (linux, x86_64)",
        "build (macos, aarch64)",
        "pick (small)",
        "publish",
    ]
    ran = run_cli(tmp_path, "run", "forms.yml", "--select", "typecheck")
    assert ran.returncode == 0, ran.stderr
    record = json.loads((tmp_path / ".ci-orchestrator" / "reports" / "run.json").read_text())
    linux, windows = record["steps"]
    assert "python 3.13\n" in (tmp_path / linux["log"]).read_text()
    # runs-on names the runner's system: a Windows runner's combination is not run on Linux.
    assert (windows["status"], windows["reason"]) == (
        "skipped",
        "runs-on windows-2022: a Windows runner, and this machine runs Linux",
    )


FAIL_FAST = """\
on: push
jobs:
  test:
    runs-on: ubuntu-latest
    strategy:
      max-parallel: 2
      matrix:
        n: [1, 2, 3]
    steps:
      - run: |
          if [ "${{ matrix.n }}" = 1 ]; then exit 1; fi
          sleep 30
  all:
    runs-on: ubuntu-latest
    strategy:
      fail-fast: false
      matrix:
        n: [1, 2]
    steps:
      - run: test "${{ matrix.n }}" = 2
"""


def test_a_failed_combination_cancels_the_others_unless_fail_fast_is_false(tmp_path: Path) -> None:
    (tmp_path / "ff.yml").write_text(FAIL_FAST)
    done = run_cli(tmp_path, "run", "ff.yml")
    assert done.returncode == 1, done.stderr
    record = json.loads((tmp_path / ".ci-orchestrator" / "reports" / "run.json").read_text())
    found = {step["id"]: (step["status"], step["reason"]) for step in record["steps"]}
    # max-parallel 2: (1) and (2) start; (1) fails, (2) is stopped, (3) never starts.
    assert found["test (1)"] == ("failed", "exit code 1")
    assert found["test (2)"] == ("cancelled", "cancelled: fail-fast: 'test (1)' failed")
    assert found["test (3)"] == ("skipped", "fail-fast: 'test (1)' failed")
    assert found["all (1)"][0] == "failed"
    assert found["all (2)"][0] == "passed"
    stopped = next(step for step in record["steps"] if step["id"] == "test (2)")
    assert stopped["duration"] < 30  # stopped, not left to sleep its 30 seconds out


TIMEOUTS = """\
on: push
jobs:
  slow:
    runs-on: ubuntu-latest
    timeout-minutes: ${{ matrix.minutes }}
    strategy:
      matrix:
        minutes: [0.1]
    steps:
      - run: echo first
        timeout-minutes: ${{ fromJSON('0.02') }}
      - run: sleep 60
"""


def test_timeout_minutes_given_by_an_expression_applies(tmp_path: Path) -> None:
    (tmp_path / "t.yml").write_text(TIMEOUTS)
    done = run_cli(tmp_path, "run", "t.yml")
    assert done.returncode == 1, done.stderr
    record = json.loads((tmp_path / ".ci-orchestrator" / "reports" / "run.json").read_text())
    (step,) = record["steps"]
    assert (step["status"], step["reason"]) == ("timed-out", "timed out after 6s")
    imported = run_cli(tmp_path, "import", "github-workflow", "t.yml").stdout
    assert "timeout: \"${{ format('{0}m', fromJSON('0.02')) }}\"" in imported


CALLER = """\
on: push
jobs:
  prepare:
    runs-on: ubuntu-latest
    outputs: {flavour: "${{ steps.f.outputs.flavour }}"}
    steps:
      - id: f
        run: echo "flavour=mint" >> "$GITHUB_OUTPUT"
  call:
    needs: prepare
    uses: ./.github/workflows/reused.yml
    with:
      who: ci-${{ needs.prepare.outputs.flavour }}
      loud: true
  after:
    needs: call
    runs-on: ubuntu-latest
    steps:
      - run: echo "called said ${{ needs.call.outputs.said }} (${{ needs.call.result }})"
"""

REUSED = """\
on:
  workflow_call:
    inputs:
      who: {type: string, required: true}
      loud: {type: boolean, default: false}
      greeting: {type: string, default: hello}
    outputs:
      said: {value: "${{ jobs.second.outputs.said }}"}
jobs:
  first:
    runs-on: ubuntu-latest
    outputs: {text: "${{ steps.t.outputs.text }}"}
    steps:
      - id: t
        run: echo "text=${{ inputs.greeting }} ${{ inputs.who }}" >> "$GITHUB_OUTPUT"
  second:
    needs: first
    runs-on: ubuntu-latest
    outputs: {said: "${{ steps.s.outputs.said }}"}
    steps:
      - id: s
        if: inputs.loud
        run: echo "said=${{ needs.first.outputs.text }}!" >> "$GITHUB_OUTPUT"
"""


def test_a_reusable_workflow_of_the_repository_runs_as_its_jobs(tmp_path: Path) -> None:
    (tmp_path / ".github" / "workflows").mkdir(parents=True)
    (tmp_path / ".github" / "workflows" / "caller.yml").write_text(CALLER)
    (tmp_path / ".github" / "workflows" / "reused.yml").write_text(REUSED)
    done = run_cli(tmp_path, "run", ".github/workflows/caller.yml")
    assert done.returncode == 0, done.stdout + done.stderr
    record = json.loads((tmp_path / ".ci-orchestrator" / "reports" / "run.json").read_text())
    assert [step["id"] for step in record["steps"]] == [
        "prepare",
        "call_first",
        "call_second",
        "call",
        "after",
    ]
    after = next(step for step in record["steps"] if step["id"] == "after")
    assert "called said hello ci-mint! (success)\n" in (tmp_path / after["log"]).read_text()


SETUP = """\
on: push
jobs:
  tools:
    runs-on: ubuntu-latest
    steps:
      - id: uv
        uses: astral-sh/setup-uv@v6
        with: {version: "0.5", python-version: "3.12"}
      - run: |
          test "$(uv --version)" = "uv 0.5.3"
          test "$UV_PYTHON" = 3.12
          echo "found ${{ steps.uv.outputs.uv-version }}"
      - uses: actions/setup-node@v4
        with: {node-version: "99"}
      - run: echo never
"""


def test_setup_steps_take_the_fitting_tool_of_this_machine_or_fail_naming_what_there_is(
    tmp_path: Path,
) -> None:
    tools = tmp_path / "tools"
    tools.mkdir()
    (tools / "uv").write_text("#!/bin/sh\necho 'uv 0.5.3'\n")
    (tools / "uv").chmod(0o755)
    (tmp_path / "setup.yml").write_text(SETUP)
    env = cli_environment(tmp_path) | {"PATH": f"{tools}:{os.environ['PATH']}"}
    done = run_cli(tmp_path, "run", "setup.yml", env=env)
    assert done.returncode == 1, done.stderr
    record = json.loads((tmp_path / ".ci-orchestrator" / "reports" / "run.json").read_text())
    log = (tmp_path / record["steps"][0]["log"]).read_text()
    assert "found 0.5.3\n" in log
    assert "actions/setup-node@v4 wants version 99; this machine has " in log
    assert "skipped  Run echo never  (a step before it failed)" in log


def test_repro_reruns_a_failed_job_with_its_matrix_values_and_event(tmp_path: Path) -> None:
    (tmp_path / "w.yml").write_text(
        "on: [push, pull_request]\njobs:\n  t:\n    runs-on: x\n    strategy:\n      fail-fast: false\n"
        "      matrix: {n: [1, 2]}\n    steps:\n"
        '      - run: echo "ran ${{ matrix.n }} for ${{ github.event_name }}" >> ran.txt\n'
        '      - run: test "${{ matrix.n }}" = 2\n'
    )
    done = run_cli(tmp_path, "run", "w.yml", "--event", "pull_request")
    assert done.returncode == 1, done.stderr
    (tmp_path / "ran.txt").unlink()
    again = run_cli(tmp_path, "repro", ".ci-orchestrator/reports/run.json")
    assert again.returncode == 1, again.stderr
    assert (tmp_path / "ran.txt").read_text() == "ran 1 for pull_request\n"  # (1) alone, as it ran
