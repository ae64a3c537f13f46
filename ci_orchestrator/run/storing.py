"""Storing passed results in the step cache on a thread of its own, off the step loop.

Archiving, hashing and copying a large output into the cache takes seconds (about 4 s for 400 MB
here): done on the step loop, the timeouts and signals of the other steps waited for it. Here
the results are stored one at a time, in the order they passed, while the loop goes on; the end
of each reaches the loop as a `WorkDone` event from `Supervisor.wait()`. An interrupt cancels
what is being stored (it stops between two chunks, leaving nothing stored) and what waits.
"""

from __future__ import annotations

import queue
import threading
from typing import TYPE_CHECKING

from ci_orchestrator import notices
from ci_orchestrator.cache.step_cache import StoreCancelled

if TYPE_CHECKING:
    from ci_orchestrator.cache.archives import Archived
    from ci_orchestrator.cache.step_cache import PendingStore, StepCache
    from ci_orchestrator.run.supervisor import Supervisor


class Storer:
    """Writes prepared results (`StepCache.prepare_store`) into the cache, in order, on one thread
    started with the first; `outcome(key)` is what `StepCache.finish_store` takes on the loop."""

    def __init__(self, cache: StepCache, supervisor: Supervisor) -> None:
        self._cache = cache
        self._supervisor = supervisor
        self._queue: queue.SimpleQueue[tuple[str, PendingStore] | None] = queue.SimpleQueue()
        self._cancelled = threading.Event()
        self._outcomes: dict[str, dict[str, Archived]] = {}  # written by the thread before `done`
        self._thread: threading.Thread | None = None
        self._abandoned = False

    def submit(self, key: str, pending: PendingStore) -> None:
        """Stores `pending` after what was submitted before; `Supervisor.wait()` reports its end."""
        self._supervisor.expect(key)
        if self._thread is None:
            self._thread = threading.Thread(target=self._work, name="ci-orchestrator-store", daemon=True)
            self._thread.start()
        self._queue.put((key, pending))

    def outcome(self, key: str) -> dict[str, Archived]:
        """The files archived for `key` (empty when nothing was stored), once its end is reported."""
        return self._outcomes.pop(key, {})

    def cancel(self) -> None:
        """Stops the store under way between two chunks, and those waiting: none is kept."""
        self._cancelled.set()

    def abandon(self) -> None:
        """Cancels, and `close` will not wait: the thread ends with the process if not before."""
        self.cancel()
        self._abandoned = True

    def close(self) -> None:
        """Waits for the thread, once what was submitted is done (or cancelled)."""
        if self._thread is not None:
            self._queue.put(None)
            if not self._abandoned:
                self._thread.join()
            self._thread = None

    def _work(self) -> None:
        try:
            self._store_each()
        finally:
            self._cache.release_thread()

    def _store_each(self) -> None:
        while (item := self._queue.get()) is not None:
            key, pending = item
            try:
                if not self._cancelled.is_set():
                    self._outcomes[key] = self._cache.write_store(pending, cancelled=self._cancelled)
            except StoreCancelled:
                pass  # nothing was stored
            except Exception as error:  # the run must go on whatever storing did
                notices.warn(f"{pending.instance_id}: result not cached ({error})")
            finally:
                self._supervisor.done(key)
