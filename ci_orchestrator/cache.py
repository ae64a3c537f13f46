"""The step cache: stored successes of step instances under their keys, in diskcache.

Two stores under the cache directory: `entries/` (bounded, least recently used out first) holds
an archive of each result's log and output files; `index/` holds what is read often and must
be read fast: each result's metadata (`cache_records`), the file digests of each workspace, the
last stored manifest of each instance (for `explain`), hits and misses of recent runs. A warm
hit whose outputs are still in place reads the index only. Values are JSON, never pickle, so a cache
directory shared between jobs cannot make this process run code. A failure of the store
itself becomes one warning and a cache that is off: it never stops a run.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from contextlib import contextmanager, suppress
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import diskcache

from ci_orchestrator.archives import RestoreError, check_name, restore_archive, write_archive
from ci_orchestrator.cache_keys import (
    CACHE_FORMAT,
    Manifest,
    build_manifest,
    differences,
    instance_patterns,
)
from ci_orchestrator.cache_records import (
    CacheEntry,
    CacheKey,
    CacheStats,
    FileRecord,
    memo_from_json,
    memo_merged,
    read_small_log,
    write_log,
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
# A hit served without its archive counts as a use (for least-recently-used eviction) only
# when the last use counted is older than this: a warm rerun then writes nothing per step.
USE_GRANULARITY = 3600.0
STORES = ("entries", "index")  # the cache's own folders under its directory


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
        self._used: list[CacheEntry] = []  # hits served without their archive, to count as uses
        self._memo: dict[str, FileRecord] | None = None  # this workspace's file digests, read once
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
        self._count_uses()
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

    def _memo_load(self, path: str) -> FileRecord | None:
        if self._memo is None:
            self._memo = {}
            with self._guard():
                if self._index is not None:
                    self._memo = memo_from_json(self._index.get(self._memo_key()))
        return self._memo.get(path)

    def _memo_save(self, records: Mapping[str, FileRecord]) -> None:
        if self._index is None or not self.write:
            return
        # Read again inside the transaction: a concurrent run's digests are kept, not overwritten.
        with self._guard(), self._index.transact():
            self._index.set(self._memo_key(), memo_merged(self._index.get(self._memo_key()), records))

    def _memo_key(self) -> str:
        return "files:" + str(self.workspace)

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
        return CacheKey(digest=manifest.digest(), manifest=manifest)

    # --- results ---------------------------------------------------------------------
    def lookup(self, key: CacheKey) -> CacheEntry | None:
        """The stored success for this key, or None (always None when reading is off).

        A success whose archive was evicted still counts when its outputs are in place and its
        log is in the index: nothing would be read from the archive.
        """
        if not self.read or self._entries is None or self._index is None:
            return None
        data: Any = None
        with self._guard():
            data = self._index.get("entry:" + key.digest)
        entry = CacheEntry.from_json(key.digest, data) if data is not None else None
        if entry is None or self._servable_in_place(entry):
            return entry
        present = False
        with self._guard():
            present = self._entries is not None and "data:" + key.digest in self._entries
        return entry if present else None

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
            stored = time.time()
            entry = CacheEntry(
                digest=key.digest,
                instance_id=instance.id,
                step_id=instance.step.id,
                created=stored,
                used=stored,
                duration=duration,
                files=tuple(files),
                # What a hit compares with the workspace: outputs already in place are left alone.
                outputs={name: state for name in files if (state := self._output_state(name))},
                log=read_small_log(log_path),
            )
            if self._entries is not None and self._index is not None:
                # The archive first: metadata is never seen without its archive.
                self._entries.set("data:" + key.digest, archive, read=True)
                self._index.set("entry:" + key.digest, entry.to_json())
                self._index.set(_last_key(instance), key.manifest.to_json())

    def restore(self, entry: CacheEntry, *, log_path: Path) -> None:
        """Puts back the stored output files (with their modes) and writes the stored log to `log_path`.

        RestoreError, with nothing written, when the entry is gone or a member would land outside
        the workspace (absolute path, `..`, or through a symlink); such an entry is deleted.
        """
        try:
            if entry.log is not None and self._servable_in_place(entry, check=True):
                # The common warm run: nothing to write but the log, no archive to open.
                write_log(log_path, entry.log)
                if time.time() - entry.used > USE_GRANULARITY:
                    self._used.append(entry)
                return
        except RestoreError as error:
            self.warnings.append(f"{entry.instance_id}: cached result refused: {error}")
            self._drop(entry.digest)
            raise
        handle: Any = None
        with self._guard():
            handle = self._entries.get("data:" + entry.digest, read=True) if self._entries else None
        if handle is None:
            raise RestoreError(f"{entry.instance_id}: the cached result is no longer stored")
        try:
            with handle:
                restore_archive(
                    handle,
                    workspace=self.workspace,
                    log_path=log_path,
                    in_place=lambda name, mode: self._in_place(entry, name, mode),
                )
        except RestoreError as error:
            self.warnings.append(f"{entry.instance_id}: cached result refused: {error}")
            self._drop(entry.digest)
            raise
        except OSError as error:
            self.warnings.append(f"{entry.instance_id}: cached result not restored ({error})")
            self._drop(entry.digest)
            raise RestoreError(str(error)) from error

    def _output_state(self, name: str) -> tuple[str, int] | None:
        """(content digest, permission bits) of a workspace file, None when it is not there."""
        try:
            mode = os.stat(os.path.join(self._files.root, name)).st_mode & 0o777  # noqa: PTH116, PTH118 - hot path
        except OSError:
            return None
        digest = self._files.digest(name)
        return None if digest is None else (digest, mode)

    def _in_place(self, entry: CacheEntry, name: str, mode: int) -> bool:
        """The workspace file `name` has the content and mode it was stored with."""
        stored = entry.outputs.get(name)
        return stored is not None and stored[1] == mode and self._output_state(name) == stored

    def _servable_in_place(self, entry: CacheEntry, *, check: bool = False) -> bool:
        """The log is in the entry and every output file is in place as stored.

        `check`: RestoreError for a stored name leading out, even though nothing is written.
        """
        if entry.log is None:
            return False
        for name in entry.files:
            try:
                check_name(name)
            except RestoreError:
                if check:
                    raise
                return False
            stored = entry.outputs.get(name)
            if stored is None or self._output_state(name) != stored:
                return False
        return True

    def _count_uses(self) -> None:
        """Hits served without their archive count as uses for least-recently-used eviction:
        all in one transaction, at most once per `USE_GRANULARITY` per entry."""
        used, self._used = self._used, []
        if not used or self._entries is None or self._index is None or not self.write:
            return
        stamp = time.time()
        with self._guard(), self._entries.transact(), self._index.transact():
            for entry in used:
                handle = self._entries.get("data:" + entry.digest, read=True)  # marks it used
                if handle is not None:
                    handle.close()
                    self._index.set("entry:" + entry.digest, replace(entry, used=stamp).to_json())

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
        self._files.flush()
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
        self._memo = None
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
