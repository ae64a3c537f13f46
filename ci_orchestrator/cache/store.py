"""The step cache's two diskcache stores and their upkeep.

`entries/` (bounded, least recently used out first) holds an archive of each result's log and
output files; `index/` holds what is read often and must be read fast: each result's metadata,
the file digests of each workspace, the last stored manifest of each instance (for `explain`),
when each result was last used, hits and misses of recent runs. Whatever a store raises turns both
off with one warning: the cache never stops a run. The archive store is opened on first use: a
warm run whose outputs are in place reads the index only.

Nothing read from a store is trusted (see `disks`): a row that breaks the rules is refused, said
as a warning, and read as a miss.
"""

from __future__ import annotations

import time
from contextlib import contextmanager, suppress
from typing import IO, TYPE_CHECKING, Any

from ci_orchestrator import notices
from ci_orchestrator.cache.archives import StoreCancelled
from ci_orchestrator.cache.disks import ArchiveDisk, JSONTextDisk, RefusedRowError, Store, names, open_store
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

    from _typeshed import SupportsRead

DEFAULT_SIZE_LIMIT = 2 * 1024**3
INDEX_SIZE_LIMIT = 256 * 1024**2
RECENT_RUNS = 20
STORES = ("entries", "index")  # the cache's own folders under its directory
# The index key of one value, digest -> when its result was last stored or served by a hit: the
# order of eviction. One value read and written once per run costs well under a millisecond for
# a few hundred results; marking each hit in the archive store, as diskcache's own
# least-recently-used policy would need, cost about 25 ms per 200 hits.
USES = "uses"


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
        self._entries: Store | None = None  # opened by `_archives` when first needed
        self._index: Store | None = None
        self._uses: dict[str, float] = {}  # this run's stores and hits, written by `save_uses`

    @classmethod
    def open(cls, directory: Path, *, write: bool, size_limit: int = DEFAULT_SIZE_LIMIT) -> CacheStores:
        """The stores in `directory` (created if needed); off, with a warning, when unusable."""
        stores = cls(directory, write=write, size_limit=size_limit)
        with stores.guard():
            directory.mkdir(parents=True, exist_ok=True)
            # Reads here must not write: least-recently-used would record every file lookup.
            stores._index = open_store(
                directory / "index",
                JSONTextDisk,
                size_limit=INDEX_SIZE_LIMIT,
                eviction_policy="least-recently-stored",
            )
        return stores

    def _archives(self) -> Store:
        """The archive store, opened on first use (a call inside `guard`)."""
        if self._entries is None:
            self._entries = open_store(
                self.directory / "entries",
                ArchiveDisk,
                size_limit=self.size_limit,
                # Evicted by `_evict`, in the order of the index's USES: diskcache's own policies
                # know only of reads of the archive, which a hit with its outputs in place skips.
                eviction_policy="none",
            )
        return self._entries

    @property
    def enabled(self) -> bool:
        return self._index is not None

    def close(self) -> None:
        """Closes this thread's connections to the stores (diskcache keeps one per thread); another
        thread that used them (`put`) closes its own, or they stay open as long as the process."""
        with self.guard():
            for store in (self._entries, self._index):
                if store is not None:
                    store.close()

    @contextmanager
    def guard(self) -> Iterator[None]:
        """Whatever the store raises (sqlite, I/O, bad data) turns the cache off with one warning;
        but a refused row, which the caller says and takes as a miss (`RefusedRowError`), and a
        store stopped by an interrupt (`StoreCancelled`), which leaves nothing stored."""
        try:
            yield
        except (RefusedRowError, StoreCancelled):
            raise
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
        """The stored metadata (JSON) of a result, None when there is none; RefusedRowError, the
        result dropped, when its row breaks the rules."""
        if self._index is None:
            return None
        try:  # as `guard` does, without its generator: this is asked for every cacheable step
            return self._index.get("entry:" + digest)
        except RefusedRowError:
            self.drop(digest)
            raise
        except Exception as error:  # the run must go on whatever the store did
            self._give_up(error)
        return None

    def has_archive(self, digest: str) -> bool:
        with self.guard():
            return self.enabled and "data:" + digest in self._archives()
        return False

    def archive(self, digest: str) -> IO[bytes] | None:
        """The archive of a result, open for reading, None when it is gone; RefusedRowError, the
        result dropped, when its row breaks the rules."""
        with self.guard():
            try:
                return self._archives().get("data:" + digest, read=True) if self.enabled else None
            except RefusedRowError:
                self.drop(digest)
                raise
        return None

    def ready_to_put(self) -> bool:
        """Opens the archive store (on this thread, before `put` is called from another); whether
        the stores are usable."""
        with self.guard():
            if self.enabled:
                self._archives()
        return self.enabled

    def put(
        self, digest: str, archive: SupportsRead[bytes], entry: CacheEntry, *, last: tuple[str, Any]
    ) -> None:
        """Keeps a result: its archive, its metadata, and `last` (key, manifest) for `explain`.

        Any thread may call this. The archive is written whole before any row names it, and the
        metadata, by which a result is found, after: a write stopped midway leaves no result.
        """
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
            return self._value(key) if self._index is not None else None
        return None

    def _value(self, key: str, default: Any = None) -> Any:
        """An index value (a call inside `guard`); one refused is said, forgotten, and absent."""
        assert self._index is not None
        try:
            return self._index.get(key, default)
        except RefusedRowError as refusal:
            notices.warn(f"cache at {self.directory}: stored value {key!r} refused ({refusal})")
            if self.write:
                self._index.delete(key)
            return default

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
            self._index.set(USES, {**uses_from_json(self._value(USES)), **uses})

    def merge_memo(self, key: str, records: Mapping[str, FileRecord]) -> None:
        """Adds file digests to a workspace's memo."""
        if self._index is None or not self.write:
            return
        # Read again inside the transaction: a concurrent run's digests are kept, not overwritten.
        with self.guard(), self._index.transact():
            self._index.set(key, memo_merged(self._value(key), records))

    def memo(self, key: str) -> dict[str, FileRecord]:
        return memo_from_json(self.get(key))

    # --- stats and upkeep ------------------------------------------------------------
    def record(self, hits: int, misses: int) -> None:
        """Counts one run's hits and misses; the last runs' counts are kept."""
        if self._index is None or not self.write:
            return
        with self.guard(), self._index.transact():
            runs = _runs(self._value("runs"))
            self._index.set("runs", [*runs, [time.time(), hits, misses]][-RECENT_RUNS:])

    def stats(self) -> CacheStats:
        """Stored results, bytes on disk, and the hits and misses of recent runs."""
        stats = CacheStats(entries=0, size=0, hits=0, misses=0, runs=0)
        with self.guard():
            if self._index is not None:
                entries = self._archives()
                runs = _runs(self._value("runs"))
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
            kept = {name.removeprefix("data:") for name in names(self._archives())}
            for name in list(names(self._index)):
                if name.startswith("entry:") and name.removeprefix("entry:") not in kept:
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
                stored = uses_from_json(self._value(USES))
                self._index.set(USES, {digest: stored[digest] for digest in last_used if digest in stored})
        return removed

    def _last_uses(self, entries: Store) -> dict[str, float]:
        """digest -> when its result was last stored or used, for every archive in `entries`."""
        assert self._index is not None
        known = {**uses_from_json(self._value(USES)), **self._uses}
        uses: dict[str, float] = {}
        for name in names(entries):
            digest = name.removeprefix("data:")
            stamp = known.get(digest)
            if stamp is None:
                # Stored by a run that ended before writing its uses, or by an older version:
                # stored then, as far as anyone knows. An archive the index does not know goes first.
                entry = CacheEntry.from_json(digest, self._value("entry:" + digest))
                stamp = entry.used if entry is not None else -1.0
            uses[digest] = stamp
        return uses


def _runs(data: Any) -> list[list[int | float]]:
    """The stored counts of recent runs, [when, hits, misses] each; what is malformed is left out."""
    if not isinstance(data, list):
        return []
    return [
        run
        for run in data
        if isinstance(run, list)
        and len(run) == 3
        and all(isinstance(number, int | float) and not isinstance(number, bool) for number in run)
    ]
