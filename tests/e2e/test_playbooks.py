"""Every playbook shipped in `playbooks/` is valid, as `validate` sees it from the repository root."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from ci_orchestrator.playbook.loader import EXTENSIONS
from tests.helpers import REPO, invoke

if TYPE_CHECKING:
    from pathlib import Path

PLAYBOOKS = sorted(path for path in (REPO / "playbooks").iterdir() if path.suffix in EXTENSIONS)


def test_the_project_ships_its_playbooks() -> None:
    assert {"ci", "demo"} <= {path.stem for path in PLAYBOOKS}


@pytest.mark.parametrize("path", PLAYBOOKS, ids=[path.name for path in PLAYBOOKS])
def test_playbook_validates(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)
    result = invoke("validate", f"playbooks/{path.name}")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"playbooks/{path.name}: valid (")
