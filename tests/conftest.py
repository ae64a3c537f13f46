"""Shared fixtures: a clean environment and reports, cache and logs kept in the test's own folder."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import pytest

from ci_orchestrator import notices

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No GitHub or CI variables leak in from the machine running the tests."""
    for name in list(os.environ):
        if name.startswith(("GITHUB_", "CI_ORCHESTRATOR", "RUNNER_")) or name == "CI":
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CI_ORCHESTRATOR_CACHE_DIR", str(tmp_path / ".cache-dir"))
    # Each command runs in its own process, as under CI; the run server's tests turn it on.
    monkeypatch.setenv("CI_ORCHESTRATOR_SERVER", "off")


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh working directory, made current."""
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    return work


@pytest.fixture
def warned() -> Iterator[list[str]]:
    """The warnings said during the test, in order; none reaches stderr."""
    said: list[str] = []
    with notices.sent_to(said.append):
        yield said
