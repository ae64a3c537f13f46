"""The archive of a step's stored result (its log and output files) and its checked restore.

An archive read from a cache is untrusted input: a restore checks every member before it writes
anything (a regular file, named inside the workspace, one of the step's declared outputs), then
writes each file next to its destination and renames them all into place, so a refused or broken
archive leaves the workspace as it was.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING

from ci_orchestrator.cache.digests import new_hash

if TYPE_CHECKING:
    import tarfile
    from _blake2 import blake2b
    from collections.abc import Callable, Sequence
    from threading import Event

LOG_MEMBER = "log"
FILES_PREFIX = "files/"
_CHUNK = 1024 * 1024
_DRIVE = re.compile(r"[A-Za-z]:")


class RestoreError(Exception):
    """A stored result that cannot be put back; the step runs instead."""


class StoreCancelled(Exception):  # noqa: N818 - not an error: the run was interrupted
    """Writing a result was stopped between two chunks (the run was interrupted)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Archived:
    """An output file as archived: its status when opened and the digest of what was archived."""

    info: os.stat_result
    digest: str
    hashed_at: int  # time.time_ns() when its reading began (see digests.RACY_WINDOW_NS)


def write_archive(
    target: IO[bytes],
    *,
    workspace: Path,
    files: Sequence[str],
    log_path: Path,
    cancelled: Event | None = None,
) -> dict[str, Archived]:
    """Streams the log and the workspace-relative `files` (content and mode) into `target`; each
    file as archived, hashed as it was read: its digest is that of the bytes stored.

    A symlinked output is stored as the file it points to; links are never stored. OSError when a
    file cannot be read; StoreCancelled, between two chunks, once `cancelled` is set.
    """
    import tarfile  # here, not at the top: a warm run whose outputs are in place opens no archive

    archived: dict[str, Archived] = {}
    with tarfile.open(fileobj=target, mode="w", format=tarfile.GNU_FORMAT) as tar:

        def add(path: Path, arcname: str) -> Archived:
            hashed_at = time.time_ns()
            with path.open("rb") as source:
                opened = os.fstat(source.fileno())
                info = tar.gettarinfo(arcname=arcname, fileobj=source)
                if not info.isreg():
                    raise OSError(f"{path} is not a regular file")
                info.uid = info.gid = 0
                info.uname = info.gname = ""
                reader = CheckedReader(source, cancelled, digest=new_hash())
                tar.addfile(info, reader)
                return Archived(info=opened, digest=reader.hexdigest(), hashed_at=hashed_at)

        if log_path.is_file():
            add(log_path, LOG_MEMBER)
        for name in files:
            archived[name] = add(workspace / name, FILES_PREFIX + name)
    return archived


class CheckedReader:
    """A binary file read through `read(size)`, stopped (StoreCancelled) once `cancelled` is set,
    and hashed on the way when given a `digest`."""

    def __init__(self, source: IO[bytes], cancelled: Event | None, *, digest: blake2b | None = None) -> None:
        self._source = source
        self._cancelled = cancelled
        self._digest = digest

    def read(self, size: int = -1) -> bytes:
        if self._cancelled is not None and self._cancelled.is_set():
            raise StoreCancelled
        data = self._source.read(size)
        if self._digest is not None:
            self._digest.update(data)
        return data

    def hexdigest(self) -> str:
        assert self._digest is not None
        return self._digest.hexdigest()


def restore_archive(
    source: IO[bytes],
    *,
    workspace: Path,
    log_path: Path,
    declared: Callable[[str], bool],
    in_place: Callable[[str, int], bool] | None = None,
) -> list[str]:
    """Writes the archived files into `workspace` and the log to `log_path`; the files written.

    RestoreError, before anything is written, when a member is not a regular file, would land
    outside the workspace (an absolute path, `..`, or a symlinked directory leading out), or is
    not `declared(name)`: one of the files the step's `outputs` may name.
    `in_place(name, mode)` says a (checked) file is already there as stored: it is not rewritten,
    which makes a warm run cost a stat per output instead of a write and a rename.
    """
    import tarfile  # here, not at the top: a warm run whose outputs are in place opens no archive

    workspace = Path(os.path.realpath(workspace))
    try:
        archive = tarfile.open(fileobj=source, mode="r:")  # noqa: SIM115 - closed below
        members = archive.getmembers()
    except (tarfile.TarError, EOFError) as error:
        raise RestoreError(f"damaged archive ({error})") from error
    with archive:
        log: tarfile.TarInfo | None = None
        files: list[tuple[tarfile.TarInfo, Path]] = []
        for member in members:
            if not member.isreg():
                raise RestoreError(f"member {member.name!r} is not a regular file")
            if member.name == LOG_MEMBER:
                log = member
            elif member.name.startswith(FILES_PREFIX):
                name = member.name.removeprefix(FILES_PREFIX)
                destination = destination_inside(workspace, name)
                if not declared("/".join(check_name(name))):
                    raise RestoreError(f"{name!r} is not one of the step's declared outputs")
                if in_place is None or not in_place(name, member.mode & 0o777):
                    files.append((member, destination))
            else:
                raise RestoreError(f"unexpected member {member.name!r}")
        _write_all(archive, files)
        # The log is the run's, not the workspace's: written in place, with no staging.
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with log_path.open("wb") as target:
            content = archive.extractfile(log) if log is not None else None
            if content is not None:
                shutil.copyfileobj(content, target, _CHUNK)
    return [member.name.removeprefix(FILES_PREFIX) for member, _ in files]


def check_name(name: str) -> list[str]:
    """The parts of a stored file's name (as PurePosixPath splits it, without the pathlib object:
    every warm hit checks every output), when it is workspace-relative and stays inside; else
    RestoreError."""
    if name.startswith("/") or _DRIVE.match(name):
        raise RestoreError(f"{name!r} is an absolute path, outside the workspace")
    parts = [part for part in name.split("/") if part not in ("", ".")]
    if not parts or ".." in parts:
        raise RestoreError(f"{name!r} climbs out of the workspace with '..'")
    return parts


def destination_inside(workspace: Path, name: str) -> Path:
    """Where a stored file goes under the (real) workspace, or RestoreError naming it."""
    destination = workspace.joinpath(*check_name(name))
    if not Path(os.path.realpath(destination.parent)).is_relative_to(workspace):
        raise RestoreError(f"{name!r} leads outside the workspace through a symlink")
    return destination


def _write_all(archive: tarfile.TarFile, plan: Sequence[tuple[tarfile.TarInfo, Path]]) -> None:
    staged: list[tuple[Path, Path]] = []
    try:
        for member, destination in plan:
            source = archive.extractfile(member)
            if source is None:
                raise RestoreError(f"member {member.name!r} has no content")
            destination.parent.mkdir(parents=True, exist_ok=True)
            descriptor, name = tempfile.mkstemp(dir=destination.parent, prefix=f".{destination.name}.")
            staged.append((Path(name), destination))
            with os.fdopen(descriptor, "wb") as target, source:
                shutil.copyfileobj(source, target, _CHUNK)
                os.fchmod(target.fileno(), member.mode & 0o777)
        for temporary, destination in staged:
            temporary.replace(destination)
        staged.clear()
    finally:
        for temporary, _ in staged:
            temporary.unlink(missing_ok=True)
