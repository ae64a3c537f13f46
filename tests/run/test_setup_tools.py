"""Which version a setup step asks for, and whether a tool of this machine fits it."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from ci_orchestrator.run.setup_tools import ToolNotFoundError, fits, wanted_versions

if TYPE_CHECKING:
    from pathlib import Path


@pytest.mark.parametrize(
    ("version", "wanted", "expected"),
    [
        ("3.12.1", "3.12", True),
        ("3.12.1", "3.x", True),
        ("3.11.7", ">=3.12", False),
        ("3.13.0", ">=3.10", True),
        ("20.20.2", "lts/*", True),
        ("20.20.2", "^18", False),
        ("3.13.0", "3.13-dev", True),
        ("3.12.1", "pypy3.10", False),
        ("3.12.1", "3.1", False),
    ],
)
def test_versions_fit_as_setup_actions_read_them(version: str, wanted: str, expected: bool) -> None:
    assert fits(version, wanted) is expected


def test_version_files_are_read_as_setup_python_reads_them(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\nrequires-python = ">=3.10, <4"\n')
    (tmp_path / ".tool-versions").write_text("nodejs 20.1.0\npython 3.12.1\n")
    (tmp_path / ".python-version").write_text("# pinned\n3.11\n")

    def wanted(name: str) -> list[str]:
        return wanted_versions("setup-python", {"python-version-file": name}, tmp_path)

    assert wanted("pyproject.toml") == [">=3.10"]
    assert wanted(".tool-versions") == ["3.12.1"]
    assert wanted(".python-version") == ["3.11"]
    assert wanted_versions("setup-python", {"python-version": "3.11\n3.12"}, tmp_path) == ["3.11", "3.12"]
    with pytest.raises(ToolNotFoundError, match="'missing' cannot be read"):
        wanted("missing")
    (tmp_path / "pyproject.toml").write_text("[project\n")
    with pytest.raises(ToolNotFoundError, match="cannot be read as TOML"):
        wanted("pyproject.toml")
