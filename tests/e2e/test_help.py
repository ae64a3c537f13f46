"""`--help` of every command says what each option takes: a metavar naming the value (PATH, DIR,
N|auto, KEY=VALUE, ...) instead of a type (TEXT, <str>), the choices of the enumerated options,
and the terms `--select` understands."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import pytest
import typer
from typer.core import TyperArgument, TyperOption

from ci_orchestrator.cli import app
from ci_orchestrator.output.mode import OutputMode
from ci_orchestrator.plan.views import PlanFormat
from tests.helpers import run_cli

if TYPE_CHECKING:
    from pathlib import Path


def commands(command: Any = None, path: tuple[str, ...] = ()) -> dict[tuple[str, ...], Any]:
    """Every command and command group of the app, by the words that name it."""
    command = command or typer.main.get_command(app)
    found = {path: command}
    for name, sub in getattr(command, "commands", {}).items():
        found |= commands(sub, (*path, name))
    return found


COMMANDS = commands()
# The metavars a type gives when none is written, as typer and click print them.
GENERIC = re.compile(r"<(str|int|float|path|bool)>|\b(TEXT|INTEGER|FLOAT|BOOLEAN|FILENAME)\b")


def help_of(work: Path, path: tuple[str, ...]) -> str:
    result = run_cli(work, *path, "--help")
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.mark.parametrize("path", list(COMMANDS), ids=lambda path: " ".join(path) or "app")
def test_help_names_each_value_instead_of_its_type(workdir: Path, path: tuple[str, ...]) -> None:
    text = help_of(workdir, path)
    assert not GENERIC.search(text), text
    # Help text is wrapped at hyphens: no line may cut the tool's own folder or file names.
    assert not re.search(r"\bci-$", text, re.MULTILINE), text
    for param in COMMANDS[path].params:
        if isinstance(param, TyperArgument):
            # typer shows an argument by its parameter's name (`[playbook]`, `{records}...`)
            # unless it is given a metavar.
            assert not re.search(rf"[\[{{]{param.name}[\]}}]", text), text
            assert param.metavar and param.metavar != param.name
        elif isinstance(param, TyperOption) and not param.is_flag and param.name != "help":
            assert param.metavar, f"{' '.join(path)} {param.opts[0]} has no metavar"


def options_of(text: str) -> str:
    """The help text with its lines joined, as one line of words."""
    return " ".join(text.split())


def test_run_help_lists_the_choices_and_the_forms_of_values(workdir: Path) -> None:
    text = options_of(help_of(workdir, ("run",)))
    assert f"--output {'|'.join(mode.value for mode in OutputMode)}" in text
    for shown in (
        "-j, --concurrency N|auto",
        "--select EXPR",
        "--matrix KEY=V1,V2",
        "--var KEY=VALUE",
        "--timeout DURATION",
        "--shard I/N",
        "--junit PATH",
        "--summary PATH",
        "--json PATH",
        "--cache-dir DIR",
        "--profile NAME",
        "--config PATH",
    ):
        assert shown in text, shown
    # The terms of a selection, in --select's own help.
    for term in ("0407", "0400-0499", "test-*", "stage:NAME", "tag:NAME", "group:NAME", "!TERM"):
        assert term in text, term
    assert "Usage: ci-orchestrator run [OPTIONS] [PLAYBOOK]" in text


def test_plan_help_lists_its_formats(workdir: Path) -> None:
    text = options_of(help_of(workdir, ("plan",)))
    assert f"--format {'|'.join(kind.value for kind in PlanFormat)}" in text
    assert "--shards N" in text


@pytest.mark.parametrize(
    ("path", "usage"),
    [
        (("validate",), "validate [OPTIONS] [PLAYBOOK...]"),
        # typer shows a required argument in { }.
        (("report", "merge"), "report merge [OPTIONS] {RUN.json...}"),
        (("repro",), "repro [OPTIONS] {RUN.json} [INSTANCE|STEP]"),
        (("cache", "explain"), "cache explain [OPTIONS] [PLAYBOOK] STEP"),
        (("config", "get"), "config get [OPTIONS] {KEY}"),
        (("history",), "history [OPTIONS] [show RUN_ID|import FILE|export FILE]"),
    ],
)
def test_usage_names_the_arguments_as_the_readme_does(
    workdir: Path, path: tuple[str, ...], usage: str
) -> None:
    assert f"Usage: ci-orchestrator {usage}" in help_of(workdir, path)


def test_validate_without_a_playbook_checks_playbooks_ci_yml(workdir: Path) -> None:
    (workdir / "playbooks").mkdir()
    (workdir / "playbooks" / "ci.yml").write_text("name: ci\nsteps:\n  - {id: a, run: 'true'}\n")
    result = run_cli(workdir, "validate")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("playbooks/ci.yml: valid")
