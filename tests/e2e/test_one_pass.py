"""Every problem of a playbook in one `validate` (and `plan`, `run`) output: reading, expressions
and order rules checked on what could be read, sorted by place, one key path style; undeclared
variables; what a playbook argument that names nothing says."""

from __future__ import annotations

import re
import textwrap
from typing import TYPE_CHECKING

import pytest

from ci_orchestrator.errors import EXIT_USAGE
from tests.helpers import run_cli

if TYPE_CHECKING:
    import subprocess
    from pathlib import Path

MESSY = """\
name: messy
execution: parallel
resources: {db: 1}
vars: {FLAVOUR: fast}
scripts: automation
fail-fast: sometimes
steps:
  - id: unit
    run: pytest --python ${{ matrix.pyton }}
    matrix: {python: ["3.11", "3.12"]}
    timout: 5m
  - id: lint
    run: ruff check --select ${{ vars.FLAVOR }} ${{ secretz.TOKEN }}
    needs: [lint]
  - id: docs
    run: make docs ${{ matrix.os == }}
    needs: [nope]
    resources: {db: 2}
  - id: package
    run: echo ${{ bogus(1) }}
    needs: [publish]
    parallel: maybe
  - id: publish
    run: twine upload
    needs: [package]
    resources: [net]
  - name: Nothing to do
  - id: prep
    script: "0100"
"""

MESSY_PROBLEMS = [
    "playbooks/ci.yml:6:12: fail-fast: must be true or false, not 'sometimes'",
    "playbooks/ci.yml:9:10: steps[0].run: matrix has no key 'pyton' (did you mean 'python'?)",
    "playbooks/ci.yml:11:5: steps[0]: unknown key 'timout' (did you mean 'timeout'?)",
    "playbooks/ci.yml:13:5: steps[1].run: unknown context 'secretz' (did you mean 'secrets'? available:"
    " matrix, vars, env, runner, github, inputs, secrets, steps, needs) at position 2 in expression"
    " 'secretz.TOKEN'",
    "playbooks/ci.yml:13:10: steps[1].run: vars has no variable 'FLAVOR' (did you mean 'FLAVOUR'?)",
    "playbooks/ci.yml:14:5: steps[1].needs: step 'lint' needs itself",
    "playbooks/ci.yml:16:5: steps[2].run: unexpected end of expression at position 15 in expression"
    " 'matrix.os =='",
    "playbooks/ci.yml:17:5: steps[2].needs: unknown step 'nope'",
    "playbooks/ci.yml:18:5: steps[2].resources: needs 2 of pool 'db', which holds 1",
    "playbooks/ci.yml:20:5: steps[3].run: unknown function 'bogus' at position 2 in expression 'bogus(1)'",
    "playbooks/ci.yml:21:5: steps[3].needs: dependency cycle: package -> publish -> package",
    "playbooks/ci.yml:22:15: steps[3].parallel: must be true or false, not 'maybe'",
    "playbooks/ci.yml:26:5: steps[4].resources: unknown resource pool 'net'",
    "playbooks/ci.yml:27:5: steps[5]: a step needs one of 'run', 'script', 'command' or 'steps'",
    "playbooks/automation/0100_prep.sh:2:3: Timeout: invalid duration 'soon':"
    " use seconds or a form like 90s, 2m, 1h30m",
]
# FILE:LINE:COL: PATH: message, the path as reading writes it: `steps[N]...` (or a top-level
# key, or a numbered script's header key in the script's own file).
LOCATED = re.compile(r"[\w/.]+:\d+:\d+: (steps\[\d+\](\.[\w-]+)*|[\w-]+): .+")


def write(work: Path, text: str, name: str = "playbooks/ci.yml") -> Path:
    path = work / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def errors(done: subprocess.CompletedProcess[str]) -> list[str]:
    return [line.removeprefix("ci-orchestrator: ") for line in done.stderr.splitlines()]


@pytest.mark.parametrize("command", ["validate", "plan", "run"])
def test_every_problem_of_every_stage_is_in_one_output_sorted_with_one_path_style(
    workdir: Path, command: str
) -> None:
    write(workdir, MESSY)
    script = "#!/bin/bash\n# Timeout: soon\necho prep > prep-ran\n"
    write(workdir, script, "playbooks/automation/0100_prep.sh")
    done = run_cli(workdir, command)
    assert done.returncode == EXIT_USAGE, done.stdout + done.stderr
    assert errors(done) == MESSY_PROBLEMS
    assert all(LOCATED.fullmatch(line) for line in errors(done)), errors(done)
    assert done.stdout == ""
    assert not (workdir / "prep-ran").exists()
    assert not (workdir / ".ci-orchestrator" / "reports").exists()


def test_later_stages_check_what_could_be_read_without_cascading_errors(workdir: Path) -> None:
    """Each broken part is reported once: the steps that use it are checked but not blamed for
    it (no unknown pool, variable, step or script, no cycle made of what is broken: a second
    `x` in serial order would make one), and the problems of later stages elsewhere are still
    found."""
    write(
        workdir,
        """\
        name: broken-parts
        resources: {db: lots}
        vars: [FLAVOUR]
        scripts: automation
        steps:
          - id: x
            run: echo ${{ vars.FLAVOUR }}
            resources: [db]
          - id: y
            run: echo y
          - id: x
            run: echo again
          - id: prep
            script: "0100"
            needs: {x: 1}
          - id: lint all
            run: ruff check .
          - id: report
            run: echo ${{ nope.value }}
            needs: [packaged, lint all]
        groups:
          - execution: parallel
            steps:
              - id: packaged
                run: echo ${{ matrix.os }}
        """,
    )
    write(workdir, "#!/bin/bash\n# Timeout: soon\necho prep\n", "playbooks/automation/0100_prep.sh")
    done = run_cli(workdir, "validate")
    assert done.returncode == EXIT_USAGE
    assert errors(done) == [
        "playbooks/ci.yml:2:17: resources.db: must be a whole number, not 'lots'",
        "playbooks/ci.yml:3:7: vars: must be a mapping of names to values, not a list",
        "playbooks/ci.yml:11:5: steps[2].id: duplicate step id 'x' (first at line 6)",
        "playbooks/ci.yml:15:12: steps[3].needs: must be a list of strings, not a mapping",
        "playbooks/ci.yml:16:9: steps[4].id: 'lint all' is not a valid id: use ASCII letters, digits,"
        " '-', '_' and '.'",
        "playbooks/ci.yml:19:5: steps[5].run: unknown context 'nope' (available: matrix, vars, env, runner,"
        " github, inputs, secrets, steps, needs) at position 2 in expression 'nope.value'",
        "playbooks/ci.yml:22:5: groups[0]: a group needs a 'name'",
        "playbooks/ci.yml:25:14: groups[0].steps[0].run: matrix has no key 'os': the step has no matrix",
        "playbooks/automation/0100_prep.sh:2:3: Timeout: invalid duration 'soon':"
        " use seconds or a form like 90s, 2m, 1h30m",
    ]


def test_a_cycle_is_found_beside_reading_problems_and_named_at_a_written_needs(workdir: Path) -> None:
    write(
        workdir,
        """\
        name: serial-cycle
        steps:
          - id: build
            run: make
            timeout: forever
          - id: test
            run: make test
          - id: package
            run: make dist
            needs: [publish]
          - id: publish
            run: twine upload
        """,
    )
    done = run_cli(workdir, "plan")
    assert done.returncode == EXIT_USAGE
    assert errors(done) == [
        "playbooks/ci.yml:5:14: steps[0].timeout: invalid duration 'forever':"
        " use seconds or a form like 90s, 2m, 1h30m",
        "playbooks/ci.yml:10:5: steps[2].needs: dependency cycle: package -> publish -> package"
        " ('publish' waits for 'package' by the order rules, not `needs`: serial order, `group:` phases"
        " or the order of `groups:`)",
    ]


def test_a_misspelt_order_makes_no_cycle_of_the_order_it_would_give(workdir: Path) -> None:
    """Unread, `execution` (or a step's `parallel`, misspelt key or value) is not taken as its
    default, serial: steps that need later ones make no cycle then, a cycle of `needs` alone
    still does."""
    write(
        workdir,
        """\
        name: typo
        execution: paralel
        steps:
          - {id: test, run: pytest, needs: [build]}
          - {id: build, run: make}
        groups:
          - name: release
            execution: paralell
            steps:
              - {id: publish, run: twine upload, needs: [package]}
              - {id: package, run: make dist, needs: [publish]}
          - name: checks
            steps:
              - {id: lint, run: ruff, needs: [types], paralel: true}
              - {id: types, run: mypy, parallel: true}
        """,
    )
    done = run_cli(workdir, "validate")
    assert done.returncode == EXIT_USAGE
    assert errors(done) == [
        "playbooks/ci.yml:2:12: execution: must be one of serial, parallel, not 'paralel'"
        " (did you mean 'parallel'?)",
        "playbooks/ci.yml:8:16: groups[0].execution: must be one of serial, parallel, not 'paralell'"
        " (did you mean 'parallel'?)",
        "playbooks/ci.yml:10:42: groups[0].steps[0].needs: dependency cycle: publish -> package -> publish",
        "playbooks/ci.yml:14:47: groups[1].steps[0]: unknown key 'paralel' (did you mean 'parallel'?)",
    ]


# ---------------------------------------------------------------- variables

VARIABLES = """\
name: variables
vars: {FLAVOUR: fast}
env: {LEVEL: "${{ vars.LEVEL }}"}
steps:
  - id: build
    run: echo "${{ vars.flavour }}-${{ vars.TARGET }}" > built.txt
    matrix: {python: ["${{ fromJSON(vars.PYTHONS) }}"]}
    if: vars.TARGET != 'none'
"""


@pytest.mark.parametrize("command", ["validate", "plan", "run"])
def test_a_variable_neither_declared_nor_given_is_a_located_error(workdir: Path, command: str) -> None:
    write(workdir, VARIABLES)
    done = run_cli(workdir, command)
    assert done.returncode == EXIT_USAGE, done.stdout + done.stderr
    hint = ": declare it under 'vars:' or give it with --var"
    assert errors(done) == [
        f"playbooks/ci.yml:3:14: env.LEVEL: vars has no variable 'LEVEL'{hint} LEVEL=VALUE",
        f"playbooks/ci.yml:6:10: steps[0].run: vars has no variable 'TARGET'{hint} TARGET=VALUE",
        f"playbooks/ci.yml:7:23: steps[0].matrix.python[0]: vars has no variable 'PYTHONS'{hint}"
        " PYTHONS=VALUE",
        f"playbooks/ci.yml:8:9: steps[0].if: vars has no variable 'TARGET'{hint} TARGET=VALUE",
    ]
    assert not (workdir / "built.txt").exists()


@pytest.mark.parametrize("command", ["validate", "plan", "run"])
def test_a_variable_given_with_var_is_declared(workdir: Path, command: str) -> None:
    write(workdir, VARIABLES)
    given = ["--var", "LEVEL=3", "--var", "TARGET=prod", "--var", 'PYTHONS=["3.12"]']
    done = run_cli(workdir, command, *given)
    assert done.returncode == 0, done.stdout + done.stderr
    if command == "run":
        assert (workdir / "built.txt").read_text() == "fast-prod\n"


def test_a_misspelt_variable_suggests_the_declared_one(workdir: Path) -> None:
    write(workdir, "name: v\nvars: {FLAVOUR: fast}\nsteps:\n  - {id: a, run: 'echo ${{ vars.FLAVOR }}'}\n")
    done = run_cli(workdir, "validate", "--var", "OTHER=1")
    assert errors(done) == [
        "playbooks/ci.yml:4:18: steps[0].run: vars has no variable 'FLAVOR' (did you mean 'FLAVOUR'?)"
    ]


# ---------------------------------------------------------------- which playbook


def test_validate_without_an_argument_checks_playbooks_ci_yml(workdir: Path) -> None:
    write(workdir, "name: ci\nsteps:\n  - {id: a, run: 'true'}\n")
    done = run_cli(workdir, "validate")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "playbooks/ci.yml: valid (1 step, 1 instance)\n"
    (workdir / "playbooks" / "ci.yml").unlink()
    write(workdir, "name: nightly\nsteps:\n  - {id: a, run: 'true'}\n", "playbooks/nightly.yml")
    missing = run_cli(workdir, "validate")
    assert missing.returncode == EXIT_USAGE
    assert errors(missing) == ["no playbook given, and there is no playbooks/ci.yml; playbooks: nightly"]


def test_a_path_that_does_not_exist_says_so(workdir: Path) -> None:
    write(workdir, "name: ci\nsteps:\n  - {id: a, run: 'true'}\n")
    for path, hint in [
        ("nonexist.yml", ""),
        ("ci.yml", " (did you mean playbooks/ci.yml?)"),
        ("config/ci", ""),
    ]:
        done = run_cli(workdir, "validate", path)
        assert done.returncode == EXIT_USAGE
        assert errors(done) == [f"{path}: no such file{hint}"]


def test_an_unknown_name_lists_the_playbooks_that_exist(workdir: Path) -> None:
    write(workdir, "name: ci\nsteps:\n  - {id: a, run: 'true'}\n")
    write(workdir, "name: nightly\nsteps:\n  - {id: a, run: 'true'}\n", "playbooks/nightly.yaml")
    done = run_cli(workdir, "plan", "nigthly")
    assert done.returncode == EXIT_USAGE
    assert errors(done) == ["unknown playbook 'nigthly' (did you mean 'nightly'?); playbooks: ci, nightly"]
