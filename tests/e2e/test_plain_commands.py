"""A one-line `run:` with no shell syntax starts its program directly, as make does: the same
output, exit code and environment as through the shell, without the shell's start."""

from __future__ import annotations

import json
import os
import shutil
import textwrap
from typing import TYPE_CHECKING

import pytest

from ci_orchestrator.run.argv import plain_command
from tests.helpers import run_cli

if TYPE_CHECKING:
    from pathlib import Path

ENV = {"PATH": os.environ["PATH"]}
TRUE = shutil.which("true")
ECHO = shutil.which("echo")


@pytest.mark.parametrize(
    ("run", "argv"),
    [
        ("true", (TRUE,)),
        ("  true\n", (TRUE,)),
        ("echo hello world", (ECHO, "hello", "world")),
        ("echo 'two words' \"and more\" --flag=x,y:z", (ECHO, "two words", "and more", "--flag=x,y:z")),
        (f"{TRUE} -q", (TRUE, "-q")),
    ],
)
def test_plain_commands_are_started_without_the_shell(run: str, argv: tuple[str, ...]) -> None:
    assert plain_command(run, "bash", env=ENV) == argv
    assert plain_command(run, "sh", env=ENV) == argv


@pytest.mark.parametrize(
    "run",
    [
        "echo $HOME",  # expansion
        "echo `date`",
        "echo ~",
        "ls *.py",  # glob
        "echo a{b,c}",
        "true && false",  # lists, pipes, redirections, comments
        "true; false",
        "echo hi | cat",
        "echo hi > out.txt",
        "true # comment",
        "echo one\necho two",  # more than one line
        "FOO=bar env",  # an assignment
        "cd sub",  # builtins and reserved words
        "exit 3",
        "export A=b",
        "test -f x",
        "time true",
        "echo --help",  # the program answers these, the builtin does not
        "true --version",
        "no-such-program-here",  # the shell's own "command not found"
        "./relative/tool",
        "echo 'unclosed",
        "",
    ],
)
def test_everything_else_goes_through_the_shell(run: str) -> None:
    assert plain_command(run, "bash", env=ENV) is None


def test_only_bash_and_sh_and_only_when_no_startup_file_is_named() -> None:
    assert plain_command("true", "python", env=ENV) is None
    assert plain_command("true", "perl {0}", env=ENV) is None
    assert plain_command("true", "bash", env={**ENV, "BASH_ENV": "/tmp/setup.sh"}) is None
    assert plain_command("echo hi", "bash", env={**ENV, "POSIXLY_CORRECT": "1"}) is None


def test_the_programs_path_is_the_steps_own() -> None:
    assert plain_command("true", "bash", env={"PATH": "/nonexistent"}) is None


def test_a_plain_step_behaves_as_it_does_through_the_shell(workdir: Path) -> None:
    """The same step, once plain and once with shell syntax that changes nothing: same output,
    exit code and environment (the step's directory in PWD, as bash sets it)."""
    (workdir / "sub").mkdir()
    (workdir / "show.py").write_text(
        textwrap.dedent(
            """
            import json, os, sys
            print(json.dumps({"args": sys.argv[1:], "pwd": os.environ["PWD"], "cwd": os.getcwd(),
                              "step": os.environ["CI_ORCHESTRATOR_STEP_ID"]}))
            sys.exit(int(sys.argv[1]))
            """
        )
    )
    python = shutil.which("python3")
    assert python is not None
    (workdir / "ci.yml").write_text(
        textwrap.dedent(
            f"""
            name: same
            execution: parallel
            steps:
              - id: plain
                run: {python} ../show.py 3 'a b' --x=y
                working-directory: sub
                continue-on-error: true
              - id: shell
                run: {python} ../show.py 3 'a b' --x=y; true
                working-directory: sub
                continue-on-error: true
            """
        )
    )
    result = run_cli(workdir, "run", "ci.yml")
    assert result.returncode == 0, result.stderr
    record = json.loads((workdir / ".ci-orchestrator" / "reports" / "run.json").read_text())
    steps = {step["id"]: step for step in record["steps"]}
    outputs = {name: json.loads((workdir / steps[name]["log"]).read_text()) for name in ("plain", "shell")}
    assert steps["plain"]["exit_code"] == steps["shell"]["exit_code"] == 3
    assert outputs["plain"] == {**outputs["shell"], "step": "plain"}
    assert outputs["plain"]["pwd"] == outputs["plain"]["cwd"] == str(workdir / "sub")
    scratch = workdir / ".ci-orchestrator" / "logs" / record["run_id"] / "scripts"
    assert [path.name.split("-")[0] for path in scratch.iterdir()] == ["shell"]  # no file for plain
