"""The step cache: stored successes of step instances under their keys, in diskcache.

Two stores under the cache directory: `entries/` (bounded, least recently used out first) holds
an archive of each result's log and output files; `index/` holds what is read often and must
be read fast: each result's metadata, file digests, the last stored manifest of each instance
(for `explain`), hits and misses of recent runs. Values are JSON, never pickle, so a cache
directory shared between jobs cannot make this process run code. A failure of the store
itself becomes one warning and a cache that is off: it never stops a run.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import diskcache

from ci_orchestrator.archives import RestoreError, restore_archive, write_archive
from ci_orchestrator.cache_keys import (
    CACHE_FORMAT,
    Manifest,
    build_manifest,
    differences,
    instance_patterns,
)
from ci_orchestrator.digests import FileDigests
from ci_orchestrator.errors import ExpressionError

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping, Sequence

    from ci_orchestrator.playbook import Instance

__all__ = [
    "CACHE_FORMAT",
    "CacheEntry",
    "CacheKey",
    "CacheStats",
    "Manifest",
    "RestoreError",
    "StepCache",
]

DEFAULT_SIZE_LIMIT = 2 * 1024**3
INDEX_SIZE_LIMIT = 256 * 1024**2
RECENT_RUNS = 20


@dataclass(frozen=True, slots=True, kw_only=True)
class CacheKey:
    """A key and what went into it (for `explain`)."""

    digest: str
    manifest: Manifest

    def __str__(self) -> str:
        return self.digest


@dataclass(frozen=True, slots=True, kw_only=True)
class CacheEntry:
    """A stored success, as known without reading its archive."""

    digest: str
    instance_id: str
    created: float  # seconds since the epoch
    duration: float  # how long the run that stored it took
    files: tuple[str, ...]  # the stored output files, workspace-relative


@dataclass(frozen=True, slots=True, kw_only=True)
class CacheStats:
    entries: int
    size: int  # bytes on disk
    hits: int  # over the last `runs` recorded runs
    misses: int
    runs: int


class StepCache:
    """Keys, lookups, stores and restores of step results under one cache directory.

    Open it with `StepCache.open`. `read=False` (`--force`) never finds a stored result but
    still stores new ones. Problems are collected in `warnings`.
    """

    def __init__(self, directory: Path, *, workspace: Path, read: bool, write: bool) -> None:
        self.directory = directory
        self.workspace = Path(os.path.realpath(workspace))
        self.read = read
        self.write = write
        self.warnings: list[str] = []
        self._size_limit = DEFAULT_SIZE_LIMIT
        self._entries: diskcache.Cache | None = None
        self._index: diskcache.Cache | None = None
        self._files = FileDigests(self.workspace, memo=_DigestMemo(self), skip=[directory.absolute()])

    @classmethod
    def open(
        cls,
        directory: Path,
        *,
        workspace: Path,
        size_limit: int = DEFAULT_SIZE_LIMIT,
        read: bool = True,
        write: bool = True,
    ) -> StepCache:
        """The cache in `directory` (created if needed); off, with a warning, when it cannot be used."""
        cache = cls(Path(directory), workspace=workspace, read=read, write=write)
        cache._size_limit = size_limit
        with cache._guard():
            cache.directory.mkdir(parents=True, exist_ok=True)
            cache._entries = diskcache.Cache(
                str(cache.directory / "entries"),
                size_limit=size_limit,
                eviction_policy="least-recently-used",
                # One item out per write when over the limit: diskcache's default of ten would,
                # in a small cache, evict the result just stored.
                cull_limit=1,
                disk=diskcache.JSONDisk,
            )
            # Reads here must not write: least-recently-used would record every file lookup.
            cache._index = diskcache.Cache(
                str(cache.directory / "index"),
                size_limit=INDEX_SIZE_LIMIT,
                eviction_policy="least-recently-stored",
                disk=diskcache.JSONDisk,
            )
        return cache

    @property
    def enabled(self) -> bool:
        return self._entries is not None and self._index is not None

    def close(self) -> None:
        self._files.flush()
        with self._guard():
            for store in (self._entries, self._index):
                if store is not None:
                    store.close()

    def __enter__(self) -> StepCache:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    @contextmanager
    def _guard(self) -> Iterator[None]:
        """Whatever the store raises (sqlite, I/O, bad data) turns the cache off with one warning."""
        try:
            yield
        except Exception as error:  # the run must go on whatever the store did
            if not self.warnings or self._entries is not None:
                self.warnings.append(f"cache at {self.directory} is unusable ({error}); running without it")
            for store in (self._entries, self._index):
                if store is not None:
                    with suppress(Exception):  # it is being abandoned anyway
                        store.close()
            self._entries = self._index = None

    def _memo_load(self, path: str) -> tuple[int, int, int, str] | None:
        value: Any = None
        with self._guard():
            value = self._index.get("file:" + path) if self._index is not None else None
        if isinstance(value, list) and len(value) == 4:
            size, mtime_ns, inode, digest = value
            return int(size), int(mtime_ns), int(inode), str(digest)
        return None

    def _memo_save(self, records: Mapping[str, tuple[int, int, int, str]]) -> None:
        if self._index is None or not self.write:
            return
        with self._guard(), self._index.transact():
            for path, record in records.items():
                self._index.set("file:" + path, list(record))

    # --- keys ------------------------------------------------------------------------
    def key_for(
        self,
        instance: Instance,
        *,
        upstream_keys: Sequence[str] | Mapping[str, str],
        variables: Mapping[str, str] | None = None,
    ) -> CacheKey | None:
        """The key of a cacheable instance (its step has `inputs` or `cache: true`), else None.

        `upstream_keys` are the keys of what it waits for; given as a mapping from instance id,
        `explain` can name the one that changed. `variables` are the run's `vars`, which the
        `inputs` and `outputs` globs may use as `${{ vars.NAME }}`, beside `matrix` and `env`.
        None too when the cache is off.
        """
        step = instance.step
        if not self.enabled or not (step.inputs or step.cache):
            return None
        try:
            patterns = instance_patterns(instance, step.inputs, variables or {})
            outputs = instance_patterns(instance, step.outputs, variables or {})
            inputs: dict[str, str] = {}
            for pattern in patterns:
                inputs.update(self._files.digests(self._files.expand(pattern)))
            manifest = build_manifest(
                instance,
                workspace=self.workspace,
                patterns=patterns,
                inputs=inputs,
                outputs=outputs,
                upstream_keys=upstream_keys,
            )
        except OSError as error:
            self.warnings.append(f"{instance.id}: cannot read its inputs ({error}); it runs uncached")
            return None
        except ExpressionError as error:
            self.warnings.append(f"{instance.id}: cannot expand its inputs or outputs ({error}); uncached")
            return None
        self._files.flush()
        return CacheKey(digest=manifest.digest(), manifest=manifest)

    # --- results ---------------------------------------------------------------------
    def lookup(self, key: CacheKey) -> CacheEntry | None:
        """The stored success for this key, or None (always None when reading is off)."""
        if not self.read or self._entries is None or self._index is None:
            return None
        data: Any = None
        with self._guard():
            data = self._index.get("entry:" + key.digest)
            if data is not None and "data:" + key.digest not in self._entries:
                data = None  # its archive was evicted
        if data is None:
            return None
        try:
            return CacheEntry(
                digest=key.digest,
                instance_id=str(data["instance"]),
                created=float(data["created"]),
                duration=float(data["duration"]),
                files=tuple(str(name) for name in data["files"]),
            )
        except (KeyError, TypeError, ValueError):
            return None

    def store(self, key: CacheKey, instance: Instance, *, log_path: Path, duration: float) -> None:
        """Keeps a passed instance's result, its log and the files its `outputs` globs match."""
        if not self.write or not self.enabled:
            return
        files: dict[str, None] = {}
        for pattern in key.manifest.outputs:
            for name in self._files.expand(pattern):
                if name.startswith(("../", "/")):  # it could never be restored
                    self.warnings.append(f"{instance.id}: output {name} is outside the workspace, not cached")
                else:
                    files[name] = None
        with self._guard(), tempfile.TemporaryFile(dir=self.directory) as archive:
            try:
                write_archive(archive, workspace=self.workspace, files=list(files), log_path=log_path)
            except OSError as error:
                self.warnings.append(f"{instance.id}: result not cached ({error})")
                return
            archive.seek(0)
            entry = {
                "instance": instance.id,
                "step": instance.step.id,
                "created": time.time(),
                "duration": duration,
                "files": list(files),
            }
            if self._entries is not None and self._index is not None:
                # The archive first: metadata is never seen without its archive.
                self._entries.set("data:" + key.digest, archive, read=True)
                self._index.set("entry:" + key.digest, entry)
                self._index.set(_last_key(instance), key.manifest.to_json())

    def restore(self, entry: CacheEntry, *, log_path: Path) -> None:
        """Puts back the stored output files (with their modes) and writes the stored log to `log_path`.

        RestoreError, with nothing written, when the entry is gone or a member would land outside
        the workspace (absolute path, `..`, or through a symlink); such an entry is deleted.
        """
        handle: Any = None
        with self._guard():
            handle = self._entries.get("data:" + entry.digest, read=True) if self._entries else None
        if handle is None:
            raise RestoreError(f"{entry.instance_id}: the cached result is no longer stored")
        try:
            with handle:
                restore_archive(handle, workspace=self.workspace, log_path=log_path)
        except RestoreError as error:
            self.warnings.append(f"{entry.instance_id}: cached result refused: {error}")
            self._drop(entry.digest)
            raise
        except OSError as error:
            self.warnings.append(f"{entry.instance_id}: cached result not restored ({error})")
            self._drop(entry.digest)
            raise RestoreError(str(error)) from error

    def _drop(self, digest: str) -> None:
        with self._guard():
            if self._entries is not None and self._index is not None:
                self._index.delete("entry:" + digest)
                self._entries.delete("data:" + digest)

    # --- explain, stats, upkeep ------------------------------------------------------
    def explain(self, instance: Instance, key: CacheKey | None) -> list[str]:
        """Why this instance would run rather than come from the cache; empty when it would hit."""
        if not self.enabled:
            return [self.warnings[0] if self.warnings else "the cache is off"]
        if key is None:
            return ["not cacheable: the step declares no inputs and no `cache: true`"]
        if not self.read:
            return ["the cache is not read (--force)"]
        if self.lookup(key) is not None:
            return []
        stored: Any = None
        with self._guard():
            stored = self._index.get(_last_key(instance)) if self._index is not None else None
        last = Manifest.from_json(stored) if stored is not None else None
        if last is None:
            return ["no stored success"]
        return differences(last, key.manifest) or ["its stored result is no longer in the cache"]

    def record(self, hits: int, misses: int) -> None:
        """Counts one run's hits and misses; the last runs' counts are kept."""
        if self._index is None or not self.write:
            return
        with self._guard(), self._index.transact():
            runs = self._index.get("runs", [])
            self._index.set("runs", [*runs, [time.time(), hits, misses]][-RECENT_RUNS:])

    def stats(self) -> CacheStats:
        """Stored results, bytes on disk, and the hits and misses of recent runs."""
        stats = CacheStats(entries=0, size=0, hits=0, misses=0, runs=0)
        with self._guard():
            if self._entries is not None and self._index is not None:
                runs = self._index.get("runs", [])
                stats = CacheStats(
                    entries=sum(1 for name in self._entries.iterkeys() if str(name).startswith("data:")),
                    size=int(self._entries.volume() + self._index.volume()),
                    hits=sum(int(run[1]) for run in runs),
                    misses=sum(int(run[2]) for run in runs),
                    runs=len(runs),
                )
        return stats

    def clear(self) -> None:
        self._files.forget()
        with self._guard():
            for store in (self._entries, self._index):
                if store is not None:
                    store.clear()

    def prune(self, max_size: int) -> int:
        """Removes least recently used results until the stored results take at most `max_size` bytes.

        Returns how many results were removed.
        """
        before = self.stats().entries
        with self._guard():
            if self._entries is None or self._index is None:
                return 0
            self._entries.reset("size_limit", max_size)
            try:
                self._entries.cull()
            finally:
                self._entries.reset("size_limit", self._size_limit)
            kept = {str(name) for name in self._entries.iterkeys()}
            for name in list(self._index.iterkeys()):
                if str(name).startswith("entry:") and "data:" + str(name)[6:] not in kept:
                    self._index.delete(name)
        return max(0, before - self.stats().entries)


class _DigestMemo:
    """The file-digest memo (`digests.MemoStore`) kept in the cache's index."""

    def __init__(self, cache: StepCache) -> None:
        self._cache = cache

    def load(self, path: str) -> tuple[int, int, int, str] | None:
        return self._cache._memo_load(path)

    def save(self, records: Mapping[str, tuple[int, int, int, str]]) -> None:
        self._cache._memo_save(records)


def _last_key(instance: Instance) -> str:
    return "last:" + json.dumps([instance.step.id, instance.id])
