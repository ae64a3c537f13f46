"""The step cache's two diskcache stores and their upkeep.

`entries/` (bounded, least recently used out first) holds an archive of each result's log and
output files; `index/` holds what is read often and must be read fast: each result's metadata,
the file digests of each workspace, the last stored manifest of each instance (for `explain`),
hits and misses of recent runs. Values are JSON, never pickle, so a cache directory shared
between jobs cannot make this process run code. Whatever a store raises turns both off with
one warning: the cache never stops a run.
"""

from __future__ import annotations

import time
from contextlib import contextmanager, suppress
from dataclasses import replace
from typing import IO, TYPE_CHECKING, Any

import diskcache

from ci_orchestrator.cache_records import CacheStats, FileRecord, memo_from_json, memo_merged

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Mapping
    from pathlib import Path

    from ci_orchestrator.cache_records import CacheEntry

DEFAULT_SIZE_LIMIT = 2 * 1024**3
INDEX_SIZE_LIMIT = 256 * 1024**2
RECENT_RUNS = 20
STORES = ("entries", "index")  # the cache's own folders under its directory


class CacheStores:
    """The archive store and the index of one cache directory; `enabled` while both are usable.

    Problems are collected in `warnings`; nothing is written when `write` is False.
    """

    def __init__(self, directory: Path, *, write: bool, size_limit: int = DEFAULT_SIZE_LIMIT) -> None:
        self.directory = directory
        self.write = write
        self.size_limit = size_limit
        self.warnings: list[str] = []
        self._entries: diskcache.Cache | None = None
        self._index: diskcache.Cache | None = None

    @classmethod
    def open(cls, directory: Path, *, write: bool, size_limit: int = DEFAULT_SIZE_LIMIT) -> CacheStores:
        """Both stores in `directory` (created if needed); off, with a warning, when unusable."""
        stores = cls(directory, write=write, size_limit=size_limit)
        with stores.guard():
            directory.mkdir(parents=True, exist_ok=True)
            stores._entries = diskcache.Cache(
                str(directory / "entries"),
                size_limit=size_limit,
                eviction_policy="least-recently-used",
                # One item out per write when over the limit: diskcache's default of ten would,
                # in a small cache, evict the result just stored.
                cull_limit=1,
                disk=diskcache.JSONDisk,
            )
            # Reads here must not write: least-recently-used would record every file lookup.
            stores._index = diskcache.Cache(
                str(directory / "index"),
                size_limit=INDEX_SIZE_LIMIT,
                eviction_policy="least-recently-stored",
                disk=diskcache.JSONDisk,
            )
        return stores

    @property
    def enabled(self) -> bool:
        return self._entries is not None and self._index is not None

    def close(self) -> None:
        with self.guard():
            for store in (self._entries, self._index):
                if store is not None:
                    store.close()

    @contextmanager
    def guard(self) -> Iterator[None]:
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

    # --- results ---------------------------------------------------------------------
    def entry(self, digest: str) -> Any:
        """The stored metadata (JSON) of a result, None when there is none."""
        with self.guard():
            return self._index.get("entry:" + digest) if self._index is not None else None
        return None

    def has_archive(self, digest: str) -> bool:
        with self.guard():
            return self._entries is not None and "data:" + digest in self._entries
        return False

    def archive(self, digest: str) -> IO[bytes] | None:
        """The archive of a result, open for reading (and marked used), None when it is gone."""
        with self.guard():
            return self._entries.get("data:" + digest, read=True) if self._entries is not None else None
        return None

    def put(self, digest: str, archive: IO[bytes], entry: CacheEntry, *, last: tuple[str, Any]) -> None:
        """Keeps a result: its archive, its metadata, and `last` (key, manifest) for `explain`."""
        with self.guard():
            if self._entries is not None and self._index is not None:
                # The archive first: metadata is never seen without its archive.
                self._entries.set("data:" + digest, archive, read=True)
                self._index.set("entry:" + digest, entry.to_json())
                self._index.set(*last)

    def get(self, key: str) -> Any:
        """One index value (a manifest, a digest memo), None when absent or the cache is off."""
        with self.guard():
            return self._index.get(key) if self._index is not None else None
        return None

    def drop(self, digest: str) -> None:
        with self.guard():
            if self._entries is not None and self._index is not None:
                self._index.delete("entry:" + digest)
                self._entries.delete("data:" + digest)

    def count_uses(self, used: Iterable[CacheEntry]) -> None:
        """Hits served without their archive count as uses for least-recently-used eviction,
        all in one transaction."""
        used = list(used)
        if not used or self._entries is None or self._index is None or not self.write:
            return
        stamp = time.time()
        with self.guard(), self._entries.transact(), self._index.transact():
            for entry in used:
                handle = self._entries.get("data:" + entry.digest, read=True)  # marks it used
                if handle is not None:
                    handle.close()
                    self._index.set("entry:" + entry.digest, replace(entry, used=stamp).to_json())

    def merge_memo(self, key: str, records: Mapping[str, FileRecord]) -> None:
        """Adds file digests to a workspace's memo."""
        if self._index is None or not self.write:
            return
        # Read again inside the transaction: a concurrent run's digests are kept, not overwritten.
        with self.guard(), self._index.transact():
            self._index.set(key, memo_merged(self._index.get(key), records))

    def memo(self, key: str) -> dict[str, FileRecord]:
        return memo_from_json(self.get(key))

    # --- stats and upkeep ------------------------------------------------------------
    def record(self, hits: int, misses: int) -> None:
        """Counts one run's hits and misses; the last runs' counts are kept."""
        if self._index is None or not self.write:
            return
        with self.guard(), self._index.transact():
            runs = self._index.get("runs", [])
            self._index.set("runs", [*runs, [time.time(), hits, misses]][-RECENT_RUNS:])

    def stats(self) -> CacheStats:
        """Stored results, bytes on disk, and the hits and misses of recent runs."""
        stats = CacheStats(entries=0, size=0, hits=0, misses=0, runs=0)
        with self.guard():
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
        with self.guard():
            for store in (self._entries, self._index):
                if store is not None:
                    store.clear()

    def prune(self, max_size: int) -> int:
        """Removes least recently used results until the stored results take at most `max_size` bytes.

        Returns how many results were removed.
        """
        before = self.stats().entries
        with self.guard():
            if self._entries is None or self._index is None:
                return 0
            self._entries.reset("size_limit", max_size)
            try:
                self._entries.cull()
            finally:
                self._entries.reset("size_limit", self.size_limit)
            kept = {str(name) for name in self._entries.iterkeys()}
            for name in list(self._index.iterkeys()):
                if str(name).startswith("entry:") and "data:" + str(name)[6:] not in kept:
                    self._index.delete(name)
        return max(0, before - self.stats().entries)
