"""The step cache: stored successes of step instances under their keys.

What a key is made of is in `cache/keys`, the stores (an archive store and an index, in
diskcache) in `cache/store`. A warm hit whose outputs are still in place reads the index only.
A failure of the stores becomes one warning and a cache that is off: it never stops a run.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

from ci_orchestrator import notices
from ci_orchestrator.cache.archives import RestoreError, StoreCancelled, check_name, restore_archive
from ci_orchestrator.cache.digests import FileDigests
from ci_orchestrator.cache.disks import RefusedRowError
from ci_orchestrator.cache.entries import CacheEntry, CacheKey, CacheStats, FileRecord, LogWriter
from ci_orchestrator.cache.keys import CACHE_FORMAT, Manifest, build_manifest, differences, instance_patterns
from ci_orchestrator.cache.patterns import PatternNotices
from ci_orchestrator.cache.saving import PendingStore, output_files
from ci_orchestrator.cache.store import DEFAULT_SIZE_LIMIT, CacheStores
from ci_orchestrator.errors import ExpressionError

if TYPE_CHECKING:
    from collections.abc import Mapping
    from threading import Event

    from ci_orchestrator.cache.archives import Archived
    from ci_orchestrator.plan.ordering import Plan
    from ci_orchestrator.playbook.model import Instance

__all__ = [
    "CACHE_FORMAT",
    "CacheEntry",
    "CacheKey",
    "CacheStats",
    "Manifest",
    "PendingStore",
    "RestoreError",
    "StepCache",
    "StoreCancelled",
]


class StepCache:
    """Keys, lookups, stores and restores of step results under one cache directory.

    Open it with `StepCache.open`. `read=False` (`--force`) never finds a stored result but
    still stores new ones; nor do the instances in `fresh` (those `repro` reruns, while what they
    need may come from the cache). Problems are said as warnings (`notices`); none stops a run.
    """

    def __init__(
        self, stores: CacheStores, *, workspace: Path, read: bool, fresh: frozenset[str] = frozenset()
    ) -> None:
        self.directory = stores.directory
        self.workspace = Path(os.path.realpath(workspace))
        self.read = read
        self.fresh = fresh
        self.write = stores.write
        self._stores = stores
        self._memo: dict[str, FileRecord] | None = None  # this workspace's file digests, read once
        self._logs = LogWriter()
        self._files = FileDigests(self.workspace, memo=_DigestMemo(self), skip=[self.directory.absolute()])
        self._patterns = PatternNotices(self._files)

    @classmethod
    def open(
        cls,
        directory: Path,
        *,
        workspace: Path,
        size_limit: int = DEFAULT_SIZE_LIMIT,
        read: bool = True,
        write: bool = True,
        fresh: frozenset[str] = frozenset(),
    ) -> StepCache:
        """The cache in `directory` (created if needed); off, with a warning, when it cannot be used."""
        stores = CacheStores.open(Path(directory), write=write, size_limit=size_limit)
        return cls(stores, workspace=workspace, read=read, fresh=fresh)

    @property
    def enabled(self) -> bool:
        return self._stores.enabled

    @property
    def unusable(self) -> str | None:
        """Why the cache is off (the warning said when it went off); None while it is usable."""
        return self._stores.unusable

    def close(self) -> None:
        self._files.flush()
        self._stores.save_uses()
        self._stores.close()

    def __enter__(self) -> StepCache:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _memo_load(self, path: str) -> FileRecord | None:
        if self._memo is None:
            self._memo = self._stores.memo(self._memo_key())
        return self._memo.get(path)

    def _memo_save(self, records: Mapping[str, FileRecord]) -> None:
        self._stores.merge_memo(self._memo_key(), records)

    def _memo_key(self) -> str:
        return "files:" + str(self.workspace)

    # --- keys ------------------------------------------------------------------------
    def key_in_plan(
        self, plan: Plan, keys: dict[str, CacheKey | None], instance: Instance
    ) -> CacheKey | None:
        """The key of a cacheable instance (None for another), built on the keys of every instance
        it waits for in the whole plan, cacheable or not: a step that always runs still changes
        what comes after it when its command, env or inputs change.

        A selected (`--only`) or sharded run gives a step the key a whole run would, the keys of
        what it waits for but does not run taken as they would be now. `keys` holds the keys found
        so far and gains this instance's and the missing ones upstream (those of instances that
        are not cacheable are made only when something cacheable waits for them).
        """
        if not self.enabled or not instance.step.cacheable:
            return None
        whole = plan.whole
        if any(before not in keys for before in whole.waits_for[instance.id]):
            for node in whole.upstream_of([instance.id]):
                if node not in keys:
                    keys[node] = self._key_on(whole, keys, whole.by_id[node])
        key = keys[instance.id] = self._key_on(whole, keys, instance)
        return key

    def _key_on(
        self, whole: Plan, keys: Mapping[str, CacheKey | None], instance: Instance
    ) -> CacheKey | None:
        """The key of any instance, cacheable or not; None when its inputs cannot be read."""
        # By instance id, so that `cache explain` can name the upstream whose key changed.
        upstream = {
            before: key.digest for before in whole.waits_for[instance.id] if (key := keys.get(before))
        }
        step = instance.step
        try:
            patterns = instance_patterns(instance, step.inputs, whole.variables)
            outputs = instance_patterns(instance, step.outputs, whole.variables)
            junit = instance_patterns(instance, step.junit, whole.variables)
            inputs: dict[str, str] = {}
            unmatched: list[str] = []
            for pattern in patterns:
                found = self._files.digests_of(pattern)
                if not found:
                    unmatched.append(pattern)
                inputs.update(found)
            manifest = build_manifest(
                instance,
                workspace=self.workspace,
                patterns=patterns,
                inputs=inputs,
                outputs=outputs,
                upstream_keys=upstream,
                junit=junit,
                variables=whole.variables,
                secrets=whole.playbook.secrets,
            )
        except OSError as error:
            notices.warn(f"{instance.id}: cannot read its inputs ({error}); it runs uncached")
            return None
        except ExpressionError as error:
            notices.warn(f"{instance.id}: cannot expand its inputs or outputs ({error}); uncached")
            return None
        return CacheKey(
            digest=manifest.digest(),
            manifest=manifest,
            instance_id=instance.id,
            untrusted=self._untrusted(whole, keys, instance, unmatched),
        )

    def _untrusted(
        self, whole: Plan, keys: Mapping[str, CacheKey | None], instance: Instance, unmatched: list[str]
    ) -> str | None:
        """Why a key cannot be trusted: an `inputs` glob of its own that matches no file (said
        once per run), unless steps upstream declare outputs there that are not made yet; or
        the same of a step it waits for, whose key this one is built on."""
        why = None
        if unmatched:
            upstream = [key for node in whole.upstream_of([instance.id]) if (key := keys.get(node))]
            made = [pattern for key in upstream for pattern in key.manifest.outputs]
            for pattern in unmatched:
                if not self._patterns.made_upstream(pattern, made):
                    why = why or self._patterns.unmatched_input(instance.step.id, pattern)
        befores = [key for before in whole.waits_for[instance.id] if (key := keys.get(before))]
        return why or next((key.untrusted for key in befores if key.untrusted), None)

    # --- results ---------------------------------------------------------------------
    def lookup(self, key: CacheKey) -> CacheEntry | None:
        """The stored success for this key, or None (always None when reading is off).

        A success whose archive was evicted still counts when its outputs are in place and its
        log is in the index: nothing would be read from the archive.
        """
        entry = self._stored(key)
        if entry is None or self._servable_in_place(entry):
            return entry
        return entry if self._stores.has_archive(key.digest) else None

    def take(self, key: CacheKey, *, log_path: Path) -> CacheEntry | None:
        """The stored success for this key, served now: its output files put back (with their
        modes) unless already in place, its log written to `log_path`. None when there is none
        (always None when reading is off), or when it cannot be put back (then the step runs;
        a warning says why).

        A result that would write outside the workspace (an absolute path, `..`, or through a
        symlink) is refused before anything is written, and dropped from the cache.
        """
        entry = self._stored(key)
        if entry is None:
            return None
        try:
            in_place = self._servable_in_place(entry, check=True)
        except RestoreError as error:
            if self._stores.has_archive(key.digest):  # found by `lookup`, refused here
                self._refused(entry, error)
            return None
        if not in_place and not self._stores.has_archive(key.digest):
            return None  # as `lookup` finds it: nothing to serve
        try:
            self._put_back(entry, in_place=in_place, log_path=log_path)
        except Exception:  # a result not put back is a miss: the step runs
            return None
        return entry

    def _stored(self, key: CacheKey) -> CacheEntry | None:
        if not self.read or not self.enabled or key.untrusted or key.instance_id in self.fresh:
            return None
        try:
            data = self._stores.entry(key.digest)
        except RefusedRowError as error:  # dropped by the store: a miss
            notices.warn(f"{key.instance_id}: cached result refused: {error}")
            return None
        if data is None:
            return None
        return CacheEntry.from_json(key.digest, data, declared=key.manifest.stored)

    def store(self, key: CacheKey, instance: Instance, *, log_path: Path, duration: float) -> None:
        """Keeps a passed instance's result, its log and the files its `outputs` and `junit` globs match:
        `prepare_store`, then `write_store` and `finish_store`, in this thread."""
        pending = self.prepare_store(key, instance, log_path=log_path, duration=duration)
        if pending is not None:
            self.finish_store(self.write_store(pending))

    def prepare_store(
        self, key: CacheKey, instance: Instance, *, log_path: Path, duration: float
    ) -> PendingStore | None:
        """What storing a passed instance's result takes; None when it is not stored.

        Nothing is kept when an output could not be restored (outside the workspace, or through a
        symlink leading out), or when an `outputs` glob matches no file: a hit would report the
        step done and never make that file again. Nor under a key that misses input files.
        """
        if not self.write or not self.enabled:
            return None
        # The stored files are the outputs and the JUnit files; only an `outputs` glob must match.
        files, refused, missing = output_files(self._files, self.workspace, key.manifest.stored)
        missing = [pattern for pattern in missing if pattern in key.manifest.outputs]
        if refused:
            more = f" (and {len(refused) - 1} more)" if len(refused) > 1 else ""
            notices.warn(f"{instance.id}: result not cached: output {refused[0]}{more}")
            return None
        if missing:
            self._patterns.missing_outputs(instance.step.id, missing)
            return None
        if key.untrusted:  # said when the key was made
            return None
        if not self._stores.ready_to_put():
            return None
        return PendingStore(
            key=key,
            instance_id=instance.id,
            step_id=instance.step.id,
            files=files,
            log_path=log_path,
            duration=duration,
            last=(_last_key(instance), key.manifest.to_json()),
        )

    def write_store(self, pending: PendingStore, *, cancelled: Event | None = None) -> dict[str, Archived]:
        """Writes a prepared result into the stores; the files as archived, for `finish_store`.

        Any thread may call this while the step loop goes on: it uses nothing that loop does but
        the stores. StoreCancelled, nothing stored, once `cancelled` is set.
        """
        return pending.write(
            self._stores, workspace=self.workspace, directory=self.directory, cancelled=cancelled
        )

    def release_thread(self) -> None:
        """Closes this thread's connections to the stores (diskcache keeps one per thread), for a
        thread that uses the cache no more: the step loop's, the storing one's."""
        self._stores.close()

    def finish_store(self, archived: Mapping[str, Archived]) -> None:
        """Keeps the digests of the files just archived, as if read here (on the step loop)."""
        for name, file in archived.items():
            self._files.learn(name, file.info, file.digest, hashed_at=file.hashed_at)

    def _put_back(self, entry: CacheEntry, *, in_place: bool, log_path: Path) -> None:
        """The log (and, unless every output is `in_place` already, the outputs from the archive)."""
        if in_place and entry.log is not None:
            # The common warm run: nothing to write but the log, no archive to open.
            self._logs.write(log_path, entry.log)
            self._stores.count_use(entry.digest)
        else:
            self._restore_archive(entry, log_path=log_path)

    def _refused(self, entry: CacheEntry, error: RestoreError) -> None:
        """A result that would write outside the workspace (or through a symlink): said, dropped."""
        notices.warn(f"{entry.instance_id}: cached result refused: {error}")
        self._stores.drop(entry.digest)

    def _restore_archive(self, entry: CacheEntry, *, log_path: Path) -> None:
        try:
            handle = self._stores.archive(entry.digest)
        except RefusedRowError as error:  # dropped by the store
            notices.warn(f"{entry.instance_id}: cached result refused: {error}")
            raise RestoreError(str(error)) from error
        if handle is None:
            raise RestoreError(f"{entry.instance_id}: the cached result is no longer stored")
        try:
            with handle:
                restore_archive(
                    handle,
                    workspace=self.workspace,
                    log_path=log_path,
                    declared=lambda name: self._declared(entry, name),
                    in_place=lambda name, mode: self._in_place(entry, name, mode),
                )
        except RestoreError as error:
            self._refused(entry, error)
            raise
        except OSError as error:
            notices.warn(f"{entry.instance_id}: cached result not restored ({error})")
            self._stores.drop(entry.digest)
            raise RestoreError(str(error)) from error
        self._stores.count_use(entry.digest)

    def _in_place(self, entry: CacheEntry, name: str, mode: int) -> bool:
        """The workspace file `name` has the content and mode it was stored with."""
        stored = entry.outputs.get(name)
        return stored is not None and stored[1] == mode and self._files.state(name) == stored

    def _declared(self, entry: CacheEntry, name: str) -> bool:
        """The stored file `name` (normal) is one the step's `outputs` globs may name."""
        return any(self._files.covers(pattern, name) for pattern in entry.declared)

    def _check_output(self, entry: CacheEntry, name: str) -> None:
        """RestoreError unless the stored file `name` stays inside and is a declared output."""
        if not self._declared(entry, "/".join(check_name(name))):
            raise RestoreError(f"{name!r} is not one of the step's declared outputs")

    def _servable_in_place(self, entry: CacheEntry, *, check: bool = False) -> bool:
        """The log is in the entry and every output file is in place as stored.

        `check`: RestoreError for a stored name leading out or not among the declared outputs,
        even though nothing is written (nor read: a stored name is untrusted).
        """
        if entry.log is None:
            return False
        for name in entry.files:
            try:
                self._check_output(entry, name)
            except RestoreError:
                if check:
                    raise
                return False
            stored = entry.outputs.get(name)
            if stored is None or self._files.state(name) != stored:
                return False
        return True

    # --- explain, stats, upkeep ------------------------------------------------------
    def explain(self, instance: Instance, key: CacheKey | None) -> list[str]:
        """Why this instance would run rather than come from the cache; empty when it would hit."""
        if not self.enabled:
            return [self.unusable or "the cache is off"]
        if key is None:
            if instance.step.cache is False:
                return ["not cacheable: the step says `cache: false`"]
            return ["not cacheable: the step declares no inputs and no `cache: true`"]
        if key.untrusted:
            return [f"{key.untrusted}: neither taken from the cache nor stored until it matches one"]
        if not self.read:
            return ["the cache is not read (--force)"]
        if instance.id in self.fresh:
            return ["rerun as it failed: never taken from the cache"]
        if self.lookup(key) is not None:
            return []
        stored = self._stores.get(_last_key(instance))
        last = Manifest.from_json(stored) if stored is not None else None
        if last is None:
            return ["no stored success"]
        return differences(last, key.manifest) or ["its stored result is no longer in the cache"]

    def record(self, hits: int, misses: int) -> None:
        """Counts one run's hits and misses; the last runs' counts are kept."""
        self._files.flush()
        self._stores.record(hits, misses)

    def stats(self) -> CacheStats:
        """Stored results, bytes on disk, and the hits and misses of recent runs."""
        return self._stores.stats()

    def clear(self) -> None:
        self._files.forget()
        self._memo = None
        self._stores.clear()

    def prune(self, max_size: int) -> int:
        """Removes least recently used results until the stored results take at most `max_size`
        bytes; returns how many were removed."""
        return self._stores.prune(max_size)


class _DigestMemo:
    """The file-digest memo (`digests.MemoStore`) kept in the cache's index."""

    def __init__(self, cache: StepCache) -> None:
        self._cache = cache

    def load(self, path: str) -> FileRecord | None:
        return self._cache._memo_load(path)

    def save(self, records: Mapping[str, FileRecord]) -> None:
        self._cache._memo_save(records)


def _last_key(instance: Instance) -> str:
    return "last:" + json.dumps([instance.step.id, instance.id])
