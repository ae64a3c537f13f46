"""`config get`: one effective setting and the level that set it."""

from __future__ import annotations

import os
from pathlib import Path

from ci_orchestrator.settings import reading


def config_get(key: str, *, profile: str | None, config: str | None) -> str:
    """`concurrency = 4  (profile ci, ci-orchestrator.toml:7)`."""
    loaded = reading.read_settings(
        Path.cwd(), config=Path(config) if config else None, profile=profile, environ=os.environ
    )
    setting = loaded.get(key)
    return f"{setting.key} = {setting.text}  ({setting.origin})"
