"""The step cache's values: keys, stats, and what its index holds as JSON (stored successes, file digests).

A stored success (`CacheEntry`) carries enough to serve a warm hit without its archive: the
digest and mode of each output file (outputs still in place are left alone) and, when small,
the log itself. File digests are one value per workspace, read once per run: one lookup, not
one per input file.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ci_orchestrator.results import NO_FILES, StepFiles

if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path

    from ci_orchestrator.cache.keys import Manifest

INLINE_LOG_LIMIT = 64 * 1024  # logs up to this size are kept in the index, beside the archive
MEMO_LIMIT = 200_000  # file digests kept per workspace; the oldest go first

FileRecord = tuple[int, int, int, int, str]  # size, mtime_ns, ctime_ns, inode, digest


@dataclass(frozen=True, slots=True, kw_only=True)
class CacheKey:
    """A key and what went into it (for `explain`)."""

    digest: str
    manifest: Manifest
    instance_id: str = ""  # whose key: what a warning about its stored result names
    # Why no result may be served or stored under this key (an `inputs` glob of it, or of a
    # step it waits for, matches no file: the key misses files it was meant to hold); None.
    untrusted: str | None = None

    def __str__(self) -> str:
        return self.digest


@dataclass(frozen=True, slots=True, kw_only=True)
class CacheStats:
    entries: int
    size: int  # bytes on disk
    hits: int  # over the last `runs` recorded runs
    misses: int
    runs: int


@dataclass(frozen=True, slots=True, kw_only=True)
class CacheEntry:
    """A stored success, as known without reading its archive."""

    digest: str
    instance_id: str
    step_id: str = ""
    created: float  # seconds since the epoch
    used: float = 0.0  # when stored: later uses are in the index's `uses` (store.USES)
    duration: float  # how long the run that stored it took
    files: tuple[str, ...]  # the stored output files, workspace-relative
    outputs: Mapping[str, tuple[str, int]] = field(default_factory=dict)  # file -> (digest, mode)
    log: bytes | None = None  # the log itself when small: a hit then needs no archive
    step_files: StepFiles = NO_FILES  # what the step wrote to its GITHUB_OUTPUT, GITHUB_ENV, ...
    # The step's `outputs` globs as this run declares them (not stored: a cache is untrusted
    # input): a stored file no glob covers is never restored nor read.
    declared: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "instance": self.instance_id,
            "step": self.step_id,
            "created": self.created,
            "used": self.used,
            "duration": self.duration,
            "files": list(self.files),
            "outputs": {name: list(state) for name, state in self.outputs.items()},
            # Surrogate escapes keep any bytes exactly through JSON.
            "log": None if self.log is None else self.log.decode("utf-8", "surrogateescape"),
            "step_files": self.step_files.to_json(),
        }

    @classmethod
    def from_json(cls, digest: str, data: Any, *, declared: tuple[str, ...] = ()) -> CacheEntry | None:
        """The entry stored by `to_json`, or None when it is not one (older or damaged); `declared`
        are the outputs globs of the instance it is read for."""
        try:
            log = data["log"]
            step_files = StepFiles.from_json(data["step_files"])
            if step_files is None:
                return None
            return cls(
                digest=digest,
                instance_id=str(data["instance"]),
                step_id=str(data["step"]),
                created=float(data["created"]),
                used=float(data["used"]),
                duration=float(data["duration"]),
                files=tuple(str(name) for name in data["files"]),
                outputs={
                    str(name): (str(digest), int(mode)) for name, (digest, mode) in data["outputs"].items()
                },
                log=None if log is None else str(log).encode("utf-8", "surrogateescape"),
                step_files=step_files,
                declared=declared,
            )
        except (AttributeError, KeyError, TypeError, ValueError):
            return None


def read_small_log(log_path: Path) -> bytes | None:
    """The log's bytes when at most `INLINE_LOG_LIMIT` (empty when there is none), else None."""
    try:
        with log_path.open("rb") as handle:
            content = handle.read(INLINE_LOG_LIMIT + 1)
    except FileNotFoundError:
        return b""
    return None if len(content) > INLINE_LOG_LIMIT else content


class LogWriter:
    """Writes stored logs out, each as its own name for the same content.

    Most steps print nothing, and creating a file costs an inode (60-150 µs on ext4 here) where a
    hard link costs ~9 µs: every empty log after the first is a link to the first, while that one
    is still empty. A finished log is never written again, so the names cannot drift apart.
    """

    def __init__(self) -> None:
        self._empty: Path | None = None  # the first empty log written, which others may link to

    def write(self, log_path: Path, content: bytes) -> None:
        if not content and self._empty is not None and _link_empty(self._empty, log_path):
            return
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC
        try:
            descriptor = os.open(log_path, flags, 0o666)
        except FileNotFoundError:
            log_path.parent.mkdir(parents=True, exist_ok=True)
            descriptor = os.open(log_path, flags, 0o666)
        try:
            view = memoryview(content)
            while view:
                view = view[os.write(descriptor, view) :]
        finally:
            os.close(descriptor)
        if not content:
            self._empty = log_path


def _link_empty(source: Path, target: Path) -> bool:
    """Makes `target` another name of `source` while it is empty; False when it cannot be (another
    filesystem, too many links, `target` already there): then it is written as a file."""
    try:
        if source.stat().st_size:
            return False
        target.hardlink_to(source)
    except OSError:
        return False
    return True


def memo_from_json(data: Any) -> dict[str, FileRecord]:
    """absolute path -> record, from the stored value; whatever is malformed (or an older record
    without a change time) is left out."""
    records: dict[str, FileRecord] = {}
    if isinstance(data, dict):
        for path, value in data.items():
            if isinstance(value, list) and len(value) == 5:
                size, mtime_ns, ctime_ns, inode, digest = value
                if all(isinstance(number, int) for number in (size, mtime_ns, ctime_ns, inode)):
                    records[str(path)] = (size, mtime_ns, ctime_ns, inode, str(digest))
    return records


def memo_merged(stored: Any, new: Mapping[str, FileRecord]) -> dict[str, list[Any]]:
    """The stored digests with the new ones, newest last, at most `MEMO_LIMIT` of them."""
    merged = {path: list(record) for path, record in memo_from_json(stored).items() if path not in new}
    merged.update((path, list(record)) for path, record in new.items())
    if len(merged) > MEMO_LIMIT:
        merged = dict(list(merged.items())[-MEMO_LIMIT:])
    return merged


def uses_from_json(data: Any) -> dict[str, float]:
    """digest -> when its result was last used, from the stored value; whatever is malformed is left out."""
    if not isinstance(data, dict):
        return {}
    return {
        str(digest): float(stamp)
        for digest, stamp in data.items()
        if isinstance(stamp, int | float) and not isinstance(stamp, bool)
    }
