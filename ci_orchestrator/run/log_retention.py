"""How long step logs are kept: the folders of the newest runs, the older ones removed.

Each run writes its logs to `.ci-orchestrator/logs/RUN_ID/`, a file per step and attempt. Without
an end, a workspace that is run in all day (a laptop, a self-hosted runner that keeps its
checkout) would gather them without bound. Run ids begin with their UTC start time, so their
names sort oldest first; only folders named like a run id are ever removed.
"""

from __future__ import annotations

import os
import re
import shutil
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path

KEEP_LOG_RUNS = 50  # the logs of the newest runs; the history keeps its own 500 runs

_RUN_ID = re.compile(r"\d{8}T\d{6}-[0-9a-f]{6}")


def prune_logs(logs_root: Path, *, current: str, keep: int = KEEP_LOG_RUNS) -> int:
    """Removes the log folders of all runs but the newest `keep` (and `current`, always kept);
    returns how many went. Best effort: what cannot be read or removed is left as it is."""
    try:
        # A scan gives each entry's type with its name: no stat for each of the kept folders.
        with os.scandir(logs_root) as entries:
            runs = sorted(entry.name for entry in entries if _RUN_ID.fullmatch(entry.name) and entry.is_dir())
    except OSError:
        return 0
    older = [name for name in runs[: max(len(runs) - keep, 0)] if name != current]
    for name in older:
        shutil.rmtree(logs_root / name, ignore_errors=True)
    return len(older)
