"""Storing a passed step's result: found on the step loop's thread, written on any thread.

`prepare` (cheap, on the step loop) finds the output files and refuses a result a restore would
refuse. `PendingStore.write` (archiving, hashing, copying into the store: seconds for a large
output) touches nothing the step loop uses, so that it can run on a thread of its own while the
loop goes on acting on exits, timeouts and signals (run/storing). An interrupt stops it between
two chunks, and it leaves nothing behind: a result is found by its metadata, written last.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ci_orchestrator import notices
from ci_orchestrator.cache.archives import CheckedReader, RestoreError, destination_inside, write_archive
from ci_orchestrator.cache.entries import CacheEntry, read_small_log
from ci_orchestrator.results import NO_FILES

if TYPE_CHECKING:
    from pathlib import Path
    from threading import Event

    from ci_orchestrator.cache.archives import Archived
    from ci_orchestrator.cache.digests import FileDigests
    from ci_orchestrator.cache.entries import CacheKey
    from ci_orchestrator.cache.store import CacheStores
    from ci_orchestrator.results import StepFiles


@dataclass(frozen=True, slots=True, kw_only=True)
class PendingStore:
    """A passed result to store: what writing it needs, found on the step loop."""

    key: CacheKey
    instance_id: str
    step_id: str
    files: tuple[str, ...]  # workspace-relative, normal
    log_path: Path
    duration: float
    last: tuple[str, Any]  # the index's (key, manifest) of the instance's last stored result
    step_files: StepFiles = NO_FILES  # what the step wrote to its GitHub files

    def write(
        self, stores: CacheStores, *, workspace: Path, directory: Path, cancelled: Event | None = None
    ) -> dict[str, Archived]:
        """Archives the log and the files and puts the result in `stores`; the files as archived
        (empty when nothing was stored). StoreCancelled, nothing stored, once `cancelled` is set."""
        with stores.guard(), tempfile.TemporaryFile(dir=directory) as archive:
            try:
                archived = write_archive(
                    archive,
                    workspace=workspace,
                    files=self.files,
                    log_path=self.log_path,
                    cancelled=cancelled,
                )
            except OSError as error:
                notices.warn(f"{self.instance_id}: result not cached ({error})")
                return {}
            archive.seek(0)
            stored = time.time()
            entry = CacheEntry(
                digest=self.key.digest,
                instance_id=self.instance_id,
                step_id=self.step_id,
                created=stored,
                used=stored,
                duration=self.duration,
                files=self.files,
                # What a hit compares with the workspace: outputs already in place are left alone.
                outputs={name: (file.digest, file.info.st_mode & 0o777) for name, file in archived.items()},
                log=read_small_log(self.log_path),
                step_files=self.step_files,
            )
            stores.put(self.key.digest, CheckedReader(archive, cancelled), entry, last=self.last)
            return archived
        return {}


def output_files(
    files: FileDigests, workspace: Path, patterns: tuple[str, ...]
) -> tuple[tuple[str, ...], list[str], list[str]]:
    """The files the `outputs` globs match (normal, workspace-relative), why those a restore
    would refuse (outside the workspace, or through a symlink leading out) would be, and the
    globs that match no file."""
    found: dict[str, None] = {}
    refused: list[str] = []
    missing: list[str] = []
    for pattern in patterns:
        names = files.expand(pattern)
        if not names:
            missing.append(pattern)
        for name in names:  # normalised: `sub/../a` is `a`
            try:
                destination_inside(workspace, name)
            except RestoreError as error:
                refused.append(str(error))
            else:
                found[name] = None
    return tuple(found), refused, missing
