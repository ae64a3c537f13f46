"""The cache inputs of a job from a workflow: the files of the working copy git does not ignore.

A job's steps may read any file of its checkout, so its key must change when any of them does;
the files git tracks (or would: new ones not ignored) are those a checkout has. A build's
output, a virtual environment, `__pycache__` are not, and would change the key at every run.
The globs are compact: one per top folder and file extension (`ci_orchestrator/**/*.py`), a
file by its own name where a glob would hold nothing else (`pyproject.toml`). The workflow
file itself is left out: the job's own definition is in its key already, so editing one job
does not make the others run again.
"""

from __future__ import annotations

import glob
import subprocess
from pathlib import PurePosixPath
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path


def tracked_files(root: Path) -> list[str] | None:
    """The files under `root` that git tracks or would track (not ignored), as relative POSIX
    paths; None when `root` is not in a git working copy (or git cannot be run)."""
    try:
        done = subprocess.run(
            # The tool's own folder (runs, caches, the job's Pythons) is never an input.
            [
                *("git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"),
                "-x",
                ".ci-orchestrator/",
            ],
            cwd=root,
            capture_output=True,
            check=False,
            timeout=30,
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if done.returncode != 0:
        return None
    names = done.stdout.decode("utf-8", errors="surrogateescape").split("\0")
    # A file deleted but not yet staged is still listed: not a file the job can read.
    return sorted({name for name in names if name and (root / name).is_file()})


def input_globs(files: list[str], *, leave_out: str | None = None) -> list[str]:
    """Globs that match these files' kinds: `TOP/**/*.EXT` for each top folder and extension
    of two files or more, any other file by its own name; the files of a glob that would match
    `leave_out` named one by one instead."""
    groups: dict[tuple[str, str], list[str]] = {}
    for name in files:
        path = PurePosixPath(name)
        top = path.parts[0] if len(path.parts) > 1 else ""
        groups.setdefault((top, path.suffix), []).append(name)
    found: list[str] = []
    for (top, suffix), names in groups.items():
        if top and suffix and len(names) > 1 and leave_out not in names:
            found.append(f"{glob.escape(top)}/**/*{glob.escape(suffix)}")
        else:
            found.extend(glob.escape(name) for name in names if name != leave_out)
    return sorted(found)


def checkout_inputs(root: Path, workflow: Path) -> tuple[str, ...] | None:
    """The cache inputs of the jobs of `workflow` run in `root`; None outside a git working copy."""
    files = tracked_files(root)
    if files is None:
        return None
    try:
        leave_out = workflow.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:  # a workflow file outside the working copy: none of its files
        leave_out = None
    return tuple(input_globs(files, leave_out=leave_out))
