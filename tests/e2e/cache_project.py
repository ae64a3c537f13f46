"""The step cache's end-to-end fixture project (tests/data/cache), as its tests drive it: the CLI
run in it, the status of each instance, and which steps' commands really ran."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from tests.helpers import FIXTURES, invoke

if TYPE_CHECKING:
    from typer.testing import Result

FIXTURE = FIXTURES / "cache"


def run(*args: str, code: int = 0) -> Result:
    result = invoke("run", "--output", "quiet", *args)
    assert result.exit_code == code, result.output + result.stderr
    return result


def statuses(workspace: Path | None = None) -> dict[str, str]:
    record = (workspace or Path.cwd()) / ".ci-orchestrator" / "reports" / "run.json"
    return {step["id"]: step["status"] for step in json.loads(record.read_text())["steps"]}


def ran() -> list[str]:
    """The steps whose commands really ran since the last call (each appends to ran.log)."""
    log = Path("ran.log")
    lines = log.read_text().splitlines() if log.exists() else []
    log.unlink(missing_ok=True)
    return sorted(lines)
