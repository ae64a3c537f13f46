"""Every playbook shipped in `playbooks/` is valid, as `validate` sees it from the repository root."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from ci_orchestrator.cli import app
from ci_orchestrator.playbook.loader import EXTENSIONS

REPO = Path(__file__).resolve().parents[2]
PLAYBOOKS = sorted(path for path in (REPO / "playbooks").iterdir() if path.suffix in EXTENSIONS)


def test_the_project_ships_its_playbooks() -> None:
    assert {"ci", "demo"} <= {path.stem for path in PLAYBOOKS}


@pytest.mark.parametrize("path", PLAYBOOKS, ids=[path.name for path in PLAYBOOKS])
def test_playbook_validates(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)
    result = CliRunner().invoke(app, ["validate", f"playbooks/{path.name}"])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"playbooks/{path.name}: valid (")
