"""`config get`: one effective setting and the level that set it, or its value alone for scripts."""

from __future__ import annotations

import os
from pathlib import Path

from ci_orchestrator.settings import reading


def config_get(key: str, *, profile: str | None, config: str | None, value_only: bool = False) -> str:
    """`concurrency = 4  (profile ci, ci-orchestrator.toml:7)`; with `value_only`, `4`.

    The value alone is what a script would use: a folder as the absolute path `run` would use
    (a relative one is the working directory's), nothing for a setting no level gives.
    """
    loaded = reading.read_settings(
        Path.cwd(), config=Path(config) if config else None, profile=profile, environ=os.environ
    )
    setting = loaded.get(key)
    if not value_only:
        return f"{setting.key} = {setting.text}  ({setting.origin})"
    if setting.value is None:
        return ""
    return str(setting.value.absolute()) if isinstance(setting.value, Path) else setting.text
