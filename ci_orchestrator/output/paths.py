"""How a path is shown to the user, in error locations, messages and reports."""

from __future__ import annotations

from pathlib import Path


def shown_path(path: Path, base: Path | None = None) -> str:
    """`path` as the user would type it: relative to `base` (the working directory when not
    given) where it is inside it, else as given."""
    try:
        return str(path.resolve().relative_to((Path.cwd() if base is None else base).resolve()))
    except (ValueError, OSError):  # outside `base`, or a folder that cannot be resolved
        return str(path)
