"""The step cache's two diskcache stores and their upkeep.

`entries/` (bounded, least recently used out first) holds an archive of each result's log and
output files; `index/` holds what is read often and must be read fast: each result's metadata,
the file digests of each workspace, the last stored manifest of each instance (for `explain`),
when each result was last used, hits and misses of recent runs. Values are JSON, never pickle,
so a cache directory shared between jobs cannot make this process run code. Whatever a store
raises turns both off with one warning: the cache never stops a run. The archive store is opened
on first use: a warm run whose outputs are in place reads the index only.
"""

from __future__ import annotations

import json
import time
from contextlib import contextmanager, suppress
from typing import IO, TYPE_CHECKING, Any

import diskcache
from diskcache.core import MODE_PICKLE

from ci_orchestrator import notices
from ci_orchestrator.cache.entries import (
    CacheEntry,
    CacheStats,
    FileRecord,
    memo_from_json,
    memo_merged,
    uses_from_json,
)

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping
    from pathlib import Path

DEFAULT_SIZE_LIMIT = 2 * 1024**3
INDEX_SIZE_LIMIT = 256 * 1024**2
RECENT_RUNS = 20
STORES = ("entries", "index")  # the cache's own folders under its directory
# The index key of one value, digest -> when its result was last stored or served by a hit: the
# order of eviction. One value read and written once per run costs well under a millisecond for
# a few hundred results; marking each hit in the archive store, as diskcache's own
# least-recently-used policy would need, cost about 25 ms per 200 hits.
USES = "uses"


class JSONTextDisk(diskcache.Disk):  # type: ignore[misc]  # diskcache has no type hints
    """The index's encoding: keys are text and values JSON text, stored as they are; a pickled
    row (which only a forged index could hold) is refused, never loaded.

    diskcache's JSONDisk zlib-compresses every key, and each compression allocates and faults in
    about 256 KiB of fresh memory: some 50 µs per lookup in a short-lived process, more than the
    lookup itself. The index's keys and values are small, so nothing is compressed.
    """

    def put(self, key: Any) -> tuple[Any, bool]:
        if not isinstance(key, str):
            raise TypeError(f"index keys are text, not {type(key).__name__}")
        return super().put(key)  # type: ignore[no-any-return]

    def get(self, key: Any, raw: bool) -> Any:
        if not raw:
            raise ValueError("a pickled key in the cache index")
        return super().get(key, raw)

    def store(self, value: Any, read: bool, key: Any = diskcache.UNKNOWN) -> Any:
        return super().store(json.dumps(value), read, key=key)

    def fetch(self, mode: int, filename: str | None, value: Any, read: bool) -> Any:
        if mode == MODE_PICKLE:
            raise ValueError("a pickled value in the cache index")
        return json.loads(super().fetch(mode, filename, value, read))


class CacheStores:
    """The archive store and the index of one cache directory; `enabled` while both are usable.

    A problem that turns them off is said as a warning and kept in `unusable`; nothing is
    written when `write` is False.
    """

    def __init__(self, directory: Path, *, write: bool, size_limit: int = DEFAULT_SIZE_LIMIT) -> None:
        self.directory = directory
        self.write = write
        self.size_limit = size_limit
        self.unusable: str | None = None  # why both are off: the warning said when they went off
        self._entries: diskcache.Cache | None = None  # opened by `_archives` when first needed
        self._index: diskcache.Cache | None = None
        self._uses: dict[str, float] = {}  # this run's stores and hits, written by `save_uses`

    @classmethod
    def open(cls, directory: Path, *, write: bool, size_limit: int = DEFAULT_SIZE_LIMIT) -> CacheStores:
        """The stores in `directory` (created if needed); off, with a warning, when unusable."""
        stores = cls(directory, write=write, size_limit=size_limit)
        with stores.guard():
            directory.mkdir(parents=True, exist_ok=True)
            # Reads here must not write: least-recently-used would record every file lookup.
            stores._index = diskcache.Cache(
                str(directory / "index"),
                size_limit=INDEX_SIZE_LIMIT,
                eviction_policy="least-recently-stored",
                disk=JSONTextDisk,
            )
        return stores

    def _archives(self) -> diskcache.Cache:
        """The archive store, opened on first use (a call inside `guard`)."""
        if self._entries is None:
            self._entries = diskcache.Cache(
                str(self.directory / "entries"),
                size_limit=self.size_limit,
                # Evicted by `_evict`, in the order of the index's USES: diskcache's own policies
                # know only of reads of the archive, which a hit with its outputs in place skips.
                eviction_policy="none",
                disk=diskcache.JSONDisk,
            )
        return self._entries

    @property
    def enabled(self) -> bool:
        return self._index is not None

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
            self._give_up(error)

    def _give_up(self, error: Exception) -> None:
        if self.unusable is None:
            self.unusable = f"cache at {self.directory} is unusable ({error}); running without it"
            notices.warn(self.unusable)
        for store in (self._entries, self._index):
            if store is not None:
                with suppress(Exception):  # it is being abandoned anyway
                    store.close()
        self._entries = self._index = None

    # --- results ---------------------------------------------------------------------
    def entry(self, digest: str) -> Any:
        """The stored metadata (JSON) of a result, None when there is none."""
        if self._index is None:
            return None
        try:  # as `guard` does, without its generator: this is asked for every cacheable step
            return self._index.get("entry:" + digest)
        except Exception as error:  # the run must go on whatever the store did
            self._give_up(error)
        return None

    def has_archive(self, digest: str) -> bool:
        with self.guard():
            return self.enabled and "data:" + digest in self._archives()
        return False

    def archive(self, digest: str) -> IO[bytes] | None:
        """The archive of a result, open for reading, None when it is gone."""
        with self.guard():
            return self._archives().get("data:" + digest, read=True) if self.enabled else None
        return None

    def put(self, digest: str, archive: IO[bytes], entry: CacheEntry, *, last: tuple[str, Any]) -> None:
        """Keeps a result: its archive, its metadata, and `last` (key, manifest) for `explain`."""
        with self.guard():
            if self._index is not None:
                # The archive first: metadata is never seen without its archive.
                entries = self._archives()
                entries.set("data:" + digest, archive, read=True)
                self._index.set("entry:" + digest, entry.to_json())
                self._index.set(*last)
                self._uses[digest] = entry.used
                if entries.volume() > self.size_limit:
                    self._evict(self.size_limit)

    def get(self, key: str) -> Any:
        """One index value (a manifest, a digest memo), None when absent or the cache is off."""
        with self.guard():
            return self._index.get(key) if self._index is not None else None
        return None

    def drop(self, digest: str) -> None:
        self._uses.pop(digest, None)
        with self.guard():
            if self._index is not None:
                self._index.delete("entry:" + digest)
                self._archives().delete("data:" + digest)

    def count_use(self, digest: str) -> None:
        """A hit: its result becomes the most recently used (written by `save_uses`)."""
        self._uses[digest] = time.time()

    def save_uses(self) -> None:
        """Adds this run's stores and hits to the index's USES, in one write."""
        uses, self._uses = self._uses, {}
        if not uses or self._index is None or not self.write:
            return
        # Read again inside the transaction: a concurrent run's uses are kept, not overwritten.
        with self.guard(), self._index.transact():
            self._index.set(USES, {**uses_from_json(self._index.get(USES)), **uses})

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
            if self._index is not None:
                entries = self._archives()
                runs = self._index.get("runs", [])
                stats = CacheStats(
                    entries=len(entries),  # the archive store holds nothing else: a count kept by diskcache
                    size=int(entries.volume() + self._index.volume()),
                    hits=sum(int(run[1]) for run in runs),
                    misses=sum(int(run[2]) for run in runs),
                    runs=len(runs),
                )
        return stats

    def clear(self) -> None:
        with self.guard():
            if self._index is not None:
                self._archives().clear()
                self._index.clear()

    def prune(self, max_size: int) -> int:
        """Removes results, least recently used first and one at a time, until the archive store
        takes at most `max_size` bytes; forgets the results whose archive is gone.

        Returns how many results were removed.
        """
        with self.guard():
            if self._index is None:
                return 0
            removed = self._evict(max_size)
            kept = {str(name).removeprefix("data:") for name in self._archives().iterkeys()}
            for name in list(self._index.iterkeys()):
                if str(name).startswith("entry:") and str(name).removeprefix("entry:") not in kept:
                    self._index.delete(name)
            return removed
        return 0

    def _evict(self, max_size: int) -> int:
        """Removes least recently used results one at a time while the archive store takes more
        than `max_size` bytes (a call inside `guard`); how many were removed."""
        assert self._index is not None
        entries = self._archives()
        if entries.volume() <= max_size:
            return 0
        last_used = self._last_uses(entries)
        removed = 0
        for digest in sorted(last_used, key=last_used.__getitem__):
            if entries.volume() <= max_size:
                break
            self._index.delete("entry:" + digest)  # metadata is never seen without its archive
            removed += bool(entries.delete("data:" + digest))
            del last_used[digest]
            self._uses.pop(digest, None)
        if self.write:
            with self._index.transact():
                stored = uses_from_json(self._index.get(USES))
                self._index.set(USES, {digest: stored[digest] for digest in last_used if digest in stored})
        return removed

    def _last_uses(self, entries: diskcache.Cache) -> dict[str, float]:
        """digest -> when its result was last stored or used, for every archive in `entries`."""
        assert self._index is not None
        known = {**uses_from_json(self._index.get(USES)), **self._uses}
        uses: dict[str, float] = {}
        for name in entries.iterkeys():
            digest = str(name).removeprefix("data:")
            stamp = known.get(digest)
            if stamp is None:
                # Stored by a run that ended before writing its uses, or by an older version:
                # stored then, as far as anyone knows. An archive the index does not know goes first.
                entry = CacheEntry.from_json(digest, self._index.get("entry:" + digest))
                stamp = entry.used if entry is not None else -1.0
            uses[digest] = stamp
        return uses
