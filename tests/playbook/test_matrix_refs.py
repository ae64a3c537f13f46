"""`${{ matrix.KEY }}` of a key the step's matrix does not have: a located error, as actionlint's."""

from __future__ import annotations

import json
import textwrap
from typing import TYPE_CHECKING

import pytest

from ci_orchestrator.errors import EXIT_USAGE, ExpressionError, PlaybookError
from ci_orchestrator.playbook import loader
from tests.helpers import run_cli

if TYPE_CHECKING:
    from pathlib import Path

TYPO = """\
name: ci
steps:
  - id: setup
    run: touch setup-ran
  - id: lint
    run: echo lint
  - id: test
    matrix:
      python: ["3.11", "3.12"]
      include:
        - {python: "3.12", experimental: true}
    env:
      PYTHON: ${{ matrix.python }}
    continue-on-error: ${{ matrix.experimental || false }}
    run: pytest --python ${{ matrix.pyhton }}
"""


def write(work: Path, text: str) -> Path:
    path = work / "playbooks" / "ci.yml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def problems(work: Path, text: str) -> list[str]:
    with pytest.raises(PlaybookError) as caught:
        loader.load_playbook(write(work, text))
    assert caught.value.exit_code == EXIT_USAGE
    return caught.value.lines()


@pytest.mark.parametrize("command", ["validate", "run", "plan"])
def test_a_misspelt_key_is_a_located_error_and_nothing_runs(workdir: Path, command: str) -> None:
    write(workdir, TYPO)
    done = run_cli(workdir, command, "ci")
    assert done.returncode == EXIT_USAGE, done.stdout + done.stderr
    assert done.stderr.splitlines() == [
        "ci-orchestrator: playbooks/ci.yml:15:10: steps[2].run: matrix has no key 'pyhton'"
        " (did you mean 'python'?)"
    ]
    assert not (workdir / "setup-ran").exists()
    assert not (workdir / ".ci-orchestrator" / "reports").exists()


def test_the_fixed_playbook_runs_with_its_values(workdir: Path) -> None:
    write(workdir, TYPO.replace("matrix.pyhton", "matrix.python").replace("pytest --python", "echo"))
    assert run_cli(workdir, "validate", "ci").returncode == 0
    done = run_cli(workdir, "run", "ci", "--output", "stream")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "[test (3.11)] 3.11" in done.stdout
    assert "[test (3.12, true)] 3.12" in done.stdout


# Each field whose text is evaluated for an instance, at the value that reads the key.
@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ("name: 'Test ${{ matrix.os }}'", "4:11: steps[0].name: matrix has no key 'os' (its keys: python)"),
        (
            "if: matrix.pyton != '3.11'",
            "4:9: steps[0].if: matrix has no key 'pyton' (did you mean 'python'?)",
        ),
        ("if: ${{ !matrix.pyton }}", "4:9: steps[0].if: matrix has no key 'pyton' (did you mean 'python'?)"),
        ("env: {PY: '${{ matrix.pyton }}'}", "4:15: steps[0].env.PY: matrix has no key 'pyton'"),
        ("working-directory: ${{ matrix.dir }}", "4:24: steps[0].working-directory: matrix has no key 'dir'"),
        ("timeout: ${{ matrix.minutes }}", "4:14: steps[0].timeout: matrix has no key 'minutes'"),
        ("continue-on-error: ${{ matrix.flaky }}", "4:24: steps[0].continue-on-error: matrix has no key"),
        ("inputs: ['src/${{ matrix.pkg }}/**']", "4:14: steps[0].inputs[0]: matrix has no key 'pkg'"),
        ("outputs: 'dist/${{ matrix.pkg }}'", "4:14: steps[0].outputs: matrix has no key 'pkg'"),
        ("env: {X: \"${{ matrix['Pyton'] }}\"}", "4:14: steps[0].env.X: matrix has no key 'Pyton'"),
    ],
)
def test_every_field_that_takes_expressions_is_checked(workdir: Path, entry: str, expected: str) -> None:
    text = f"name: x\nsteps:\n  - id: t\n    {entry}\n    run: 'true'\n    matrix: {{python: ['3.12']}}\n"
    [problem] = problems(workdir, text)
    assert problem.startswith(f"playbooks/ci.yml:{expected}"), problem


def test_commands_args_and_group_steps_are_checked(workdir: Path) -> None:
    text = """\
    name: x
    steps:
      - id: argv
        matrix: {os: [linux]}
        command: [echo, "${{ matrix.os }}", "${{ matrix.sos }}"]
    groups:
      - name: nightly
        steps:
          - id: plain
            run: echo ${{ matrix.os }}
    """
    assert problems(workdir, text) == [
        "playbooks/ci.yml:5:41: steps[0].command[2]: matrix has no key 'sos' (did you mean 'os'?)",
        "playbooks/ci.yml:10:14: groups[0].steps[0].run: matrix has no key 'os': the step has no matrix",
    ]


def test_script_args_are_checked(workdir: Path) -> None:
    (workdir / "playbooks").mkdir()
    (workdir / "playbooks" / "build.sh").write_text("echo $1\n", encoding="utf-8")
    text = """\
    name: x
    steps:
      - id: build
        script: build.sh
        matrix: {target: [x86]}
        args: ["${{ matrix.targte }}"]
    """
    assert problems(workdir, text) == [
        "playbooks/ci.yml:6:12: steps[0].args[0]: matrix has no key 'targte' (did you mean 'target'?)"
    ]


def test_the_playbook_env_and_defaults_may_read_the_key_of_any_step(workdir: Path) -> None:
    text = """\
    name: x
    env:
      PY: ${{ matrix.python }}
      TYPO: ${{ matrix.pyton }}
    defaults:
      working-directory: ${{ matrix.dir || '.' }}
    steps:
      - {id: a, run: "true"}
      - {id: b, run: "true", matrix: {python: ["3.12"]}}
    """
    assert problems(workdir, text) == [
        "playbooks/ci.yml:4:9: env.TYPO: matrix has no key 'pyton' in any step (did you mean 'python'?)",
        "playbooks/ci.yml:6:22: defaults.working-directory: matrix has no key 'dir' in any step"
        " (its keys: python)",
    ]
    no_matrix = "name: x\nenv: {PY: '${{ matrix.python }}'}\nsteps: [{id: a, run: 'true'}]\n"
    assert problems(workdir, no_matrix) == [
        "playbooks/ci.yml:2:11: env.PY: matrix has no key 'python': no step has a matrix"
    ]


def test_a_matrix_that_cannot_be_read_is_reported_alone(workdir: Path) -> None:
    text = """\
    name: x
    env: {PY: "${{ matrix.python }}"}
    steps:
      - {id: a, run: "echo ${{ matrix.python }}", matrix: {python: []}}
    """
    assert problems(workdir, text) == [
        "playbooks/ci.yml:4:64: steps[0].matrix.python: an axis must be a non-empty list of values,"
        " not an empty list"
    ]


def test_keys_and_reads_github_allows_are_valid(workdir: Path) -> None:
    text = """\
    name: x
    env: {ANY: "${{ matrix.extra }}"}
    steps:
      - id: t
        matrix:
          python: ["3.11", "3.12"]
          node: [{version: 20}]
          include:
            - {python: "3.12", extra: "yes"}
            - {other: "only here"}
          exclude:
            - {python: "3.11"}
        if: ${{ matrix.Python != '3.13' && !matrix.EXTRA || matrix.other }}
        env:
          WHOLE: ${{ toJSON(matrix) }}
          COMPUTED: ${{ matrix[format('py{0}', 'thon')] }}
          ALL: ${{ join(matrix.*, ' ') }}
          NESTED: ${{ matrix.node.version }} ${{ matrix['extra'] }}
          TEXT: matrix.nothing is not an expression here
        run: echo "$WHOLE"
      - id: plain
        env: {WHOLE: "${{ toJSON(matrix) }}"}
        run: echo "$WHOLE"
      - id: dynamic
        matrix: ${{ fromJSON('{"os":["linux"]}') }}
        run: echo ${{ matrix.os }} ${{ matrix.anything }}
    """
    playbook = loader.load_playbook(write(workdir, text))
    assert [step.id for step in playbook.steps] == ["t", "plain", "dynamic"]


def test_a_key_only_include_gives_can_be_chosen_with_matrix(workdir: Path) -> None:
    write(workdir, TYPO.replace("matrix.pyhton", "matrix.experimental").replace("pytest --python", "echo"))
    done = run_cli(workdir, "plan", "ci", "--matrix", "experimental=true", "--format", "json")
    assert done.returncode == 0, done.stderr
    ids = [instance["id"] for instance in json.loads(done.stdout)["instances"]]
    assert ids == ["setup", "lint", "test (3.12, true)"]
    # --matrix restricts or overrides an axis; it never adds a key, so none is valid because of it.
    added = run_cli(workdir, "plan", "ci", "--matrix", "os=linux")
    assert added.returncode == EXIT_USAGE
    assert "no step has a matrix axis 'os'" in added.stderr


def test_an_expression_that_does_not_parse_is_still_reported_by_the_expander(workdir: Path) -> None:
    from ci_orchestrator.matrix import expansion

    text = "name: x\nsteps:\n  - {id: a, run: 'echo ${{ matrix.os == }}', matrix: {os: [linux]}}\n"
    with pytest.raises(ExpressionError, match=r"steps\[0\]\.run"):
        expansion.expand(loader.load_playbook(write(workdir, text)))
