"""What a path the user names is (a file, a folder, something else, nothing), or why the system
will not say: `Path.is_file()` and its kin raise for a name too long or a folder that may not be
searched, where a user needs a sentence that names the path."""

from __future__ import annotations

import stat
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path


class Kind(Enum):
    FILE = "file"
    FOLDER = "folder"
    OTHER = "other"  # a FIFO, a device, a socket: reading one could block for ever
    MISSING = "missing"
    REFUSED = "refused"  # the system would not look: `Found.problem` says why


@dataclass(frozen=True, slots=True, kw_only=True)
class Found:
    kind: Kind
    problem: str | None = None


def look(path: Path) -> Found:
    """What `path` is, following symbolic links (one that leads nowhere is missing)."""
    try:
        mode = path.stat().st_mode
    except (FileNotFoundError, NotADirectoryError):
        return Found(kind=Kind.MISSING)
    except OSError as error:  # too long a name, no permission, a loop of links
        return Found(kind=Kind.REFUSED, problem=error.strerror or str(error))
    except ValueError:  # a NUL in the name: no such file can exist
        return Found(kind=Kind.MISSING)
    if stat.S_ISREG(mode):
        return Found(kind=Kind.FILE)
    return Found(kind=Kind.FOLDER if stat.S_ISDIR(mode) else Kind.OTHER)
