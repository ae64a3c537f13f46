"""GitHub's `hashFiles(patterns...)`: one SHA-256 over the SHA-256 of each file the patterns
match in the workspace, "" when they match none.

The patterns are read as GitHub's glob reader reads them: each argument may hold several, one a
line; a line starting with `!` leaves out what it matches, a later line deciding over an earlier
one; `#` starts a comment. A folder matched stands for every file below it (`cache.digests`
expands the patterns, as for `inputs`). Only files inside the workspace count, as on GitHub.
The files are taken in path order: the digest does not depend on the order a file system lists
them in (GitHub's does).
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

from ci_orchestrator.cache.digests import FileDigests

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

_CHUNK = 1024 * 1024


def hash_files(workspace: Path, patterns: Sequence[str]) -> str:
    """The digest `hashFiles` gives for these arguments in `workspace`. OSError when a matched
    file cannot be read."""
    digests = FileDigests(workspace)
    chosen: dict[str, None] = {}
    for line in (line.strip() for argument in patterns for line in argument.split("\n")):
        if not line or line.startswith("#"):
            continue
        leave_out = line.startswith("!")
        for name in digests.expand(line[1:] if leave_out else line):
            if name.startswith(("../", "/")) or name == "..":
                continue  # outside the workspace: GitHub passes over it
            if leave_out:
                chosen.pop(name, None)
            else:
                chosen[name] = None
    if not chosen:
        return ""
    total = hashlib.sha256()
    for name in sorted(chosen):
        one = hashlib.sha256()
        with (workspace / name).open("rb") as handle:
            while chunk := handle.read(_CHUNK):
                one.update(chunk)
        total.update(one.digest())
    return total.hexdigest()
