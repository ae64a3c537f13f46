"""`export playbook-digest`: the SHA-256 of the playbook file a run would read, for a key of
another system's cache (the action's, for actions/cache).

The file's bytes only: what its steps read is the step cache's to compare, step by step.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING

from ci_orchestrator.errors import Location, PlaybookError
from ci_orchestrator.output.paths import shown_path
from ci_orchestrator.playbook import loader

if TYPE_CHECKING:
    from ci_orchestrator.options import Selection


def playbook_digest(selection: Selection) -> str:
    """The hex SHA-256 of the playbook `selection` names, found as `run` finds it."""
    path = loader.find_playbook(selection.playbook, root=Path.cwd())
    try:
        data = path.read_bytes()
    except OSError as error:
        where = Location(file=shown_path(path))
        raise PlaybookError(f"cannot read the file: {error.strerror or error}", location=where) from None
    return hashlib.sha256(data).hexdigest()
