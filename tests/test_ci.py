"""Which CI a command runs under: one rule, read in one place."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from ci_orchestrator import ci

PACKAGE = Path(ci.__file__).parent


@pytest.mark.parametrize(
    ("environ", "provider"),
    [
        ({}, None),
        ({"CI": ""}, None),
        ({"CI": "0"}, None),
        ({"CI": "false"}, None),
        ({"CI": "FALSE"}, None),
        ({"CI": " no "}, None),
        ({"CI": "off"}, None),
        ({"CI": "true"}, "generic"),
        ({"CI": "1"}, "generic"),
        ({"CI": "yes"}, "generic"),
        ({"CI": "woodpecker"}, "generic"),
        ({"GITHUB_ACTIONS": "true"}, "github"),
        ({"GITHUB_ACTIONS": "true", "CI": "true"}, "github"),
        ({"GITHUB_ACTIONS": "true", "CI": "false"}, "github"),
        ({"GITHUB_ACTIONS": "false", "CI": "true"}, "generic"),
        ({"GITHUB_ACTIONS": "True"}, None),  # GitHub writes it in lower case only
    ],
)
def test_the_provider_of_an_environment(environ: dict[str, str], provider: str | None) -> None:
    assert ci.detect(environ) == provider
    assert ci.under_ci(environ) is (provider is not None)
    assert ci.under_github(environ) is (provider == "github")


def test_the_current_environment_is_read_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    assert ci.detect() is None
    monkeypatch.setenv("CI", "1")
    assert ci.detect() == "generic"


def test_no_other_module_reads_the_ci_variables() -> None:
    """A second reading would be a second rule: the server, the console, the settings and the
    GitHub reporter once disagreed on whether `CI=1` was CI."""
    for path in PACKAGE.rglob("*.py"):
        if path == PACKAGE / "ci.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and node.value in ("CI", "GITHUB_ACTIONS"):
                raise AssertionError(f"{path.relative_to(PACKAGE)}:{node.lineno} reads {node.value}")


def test_it_imports_os_alone() -> None:
    """Every command's start-up loads it (through the run server's `runtime`)."""
    tree = ast.parse((PACKAGE / "ci.py").read_text(encoding="utf-8"))
    imported = {alias.name for node in tree.body if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module for node in tree.body if isinstance(node, ast.ImportFrom)}
    assert imported == {"os", "__future__"}
