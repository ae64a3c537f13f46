"""Fixtures of the end-to-end tests: the step cache's fixture project and its cache folder."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.e2e.cache_project import FIXTURE


@pytest.fixture
def project(workdir: Path) -> Path:
    """The cache's fixture project, copied into the current working directory."""
    shutil.copytree(FIXTURE, workdir, dirs_exist_ok=True)
    return workdir


@pytest.fixture
def cache_dir() -> Path:
    """The cache folder the CLI uses (the test's own, as the root conftest sets it)."""
    return Path(os.environ["CI_ORCHESTRATOR_CACHE_DIR"])
