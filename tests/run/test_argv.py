"""Which `run:` texts start their program directly: one line with no shell syntax whose first
word the step's PATH finds, under bash or sh with no startup file named; everything else goes
through the shell."""

from __future__ import annotations

import os
import shutil

import pytest

from ci_orchestrator.run.argv import plain_command

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
