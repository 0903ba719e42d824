"""A per-key deduplicating async work queue, with the semantics of client-go's workqueue.

- A key waits in the queue at most once, however often it is added.
- A key is handed to one worker at a time: adding a key that is being processed marks it
  dirty, and it is queued again (once) when the worker calls `done`.
- `add_rate_limited` requeues after a per-key exponential backoff; `forget` resets it.

Controllers enqueue keys ("ns/name"), never objects: the worker reads the latest state
from the informer cache, so a burst of events for one object costs one sync.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable

from podnet.api.errors import StatusError

log = logging.getLogger(__name__)

Sleep = Callable[[float], Awaitable[None]]


class ShutDown(Exception):
    """Raised by `get()` once the queue is shut down and drained of waiters."""


class ExponentialBackoff:
    """Per-key delay `base * 2**failures`, capped; client-go's default is 5ms..1000s."""

    def __init__(self, base: float = 0.005, cap: float = 300.0) -> None:
        self.base = base
        self.cap = cap
        self._failures: dict[str, int] = {}

    def when(self, key: str) -> float:
        n = self._failures.get(key, 0)
        self._failures[key] = n + 1
        return float(min(self.cap, self.base * (2**n)))

    def forget(self, key: str) -> None:
        self._failures.pop(key, None)

    def retries(self, key: str) -> int:
        return self._failures.get(key, 0)


class WorkQueue:
    """See the module docstring. All methods except `get` are synchronous and cheap, so
    informer event handlers can call `add` directly."""

    def __init__(
        self,
        *,
        sleep: Sleep = asyncio.sleep,
        backoff: ExponentialBackoff | None = None,
    ) -> None:
        self._queue: deque[str] = deque()
        self._dirty: set[str] = set()
        self._processing: set[str] = set()
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._sleep = sleep
        self._backoff = backoff or ExponentialBackoff()
        self._timers: set[asyncio.Task[None]] = set()
        self._shutting_down = False

    def __len__(self) -> int:
        return len(self._queue)

    @property
    def shutting_down(self) -> bool:
        return self._shutting_down

    def processing(self) -> frozenset[str]:
        return frozenset(self._processing)

    def add(self, key: str) -> None:
        if self._shutting_down or key in self._dirty:
            return
        self._dirty.add(key)
        if key in self._processing:
            return  # queued again by done()
        self._queue.append(key)
        self._notify()

    def add_after(self, key: str, delay: float) -> None:
        """Add `key` after `delay` seconds (through the injected sleep)."""
        if self._shutting_down:
            return
        if delay <= 0:
            self.add(key)
            return

        async def later() -> None:
            await self._sleep(delay)
            self.add(key)

        task = asyncio.get_running_loop().create_task(later())
        self._timers.add(task)
        task.add_done_callback(self._timers.discard)

    def add_rate_limited(self, key: str) -> None:
        self.add_after(key, self._backoff.when(key))

    def forget(self, key: str) -> None:
        """Stop tracking failures of `key` (call after a successful sync)."""
        self._backoff.forget(key)

    def num_requeues(self, key: str) -> int:
        return self._backoff.retries(key)

    async def get(self) -> str:
        """The next key to process; the caller owns it until `done(key)`."""
        while not self._queue:
            if self._shutting_down:
                raise ShutDown()
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            except asyncio.CancelledError:
                # Woken and cancelled at once: pass the wake-up on, or a key could sit
                # in the queue while other workers sleep.
                if waiter.done() and not waiter.cancelled():
                    self._notify()
                raise
            finally:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)
        key = self._queue.popleft()
        self._dirty.discard(key)
        self._processing.add(key)
        return key

    def done(self, key: str) -> None:
        self._processing.discard(key)
        if key in self._dirty:
            self._queue.append(key)
            self._notify()

    def shutdown(self) -> None:
        """Stop accepting keys, cancel pending delayed adds and wake every waiter."""
        self._shutting_down = True
        for task in list(self._timers):
            task.cancel()
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)

    def _notify(self) -> None:
        """Wake one waiting `get()`; it re-checks the queue, so spurious wakes are harmless."""
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return


SyncFn = Callable[[str], Awaitable[None]]


async def run_worker(queue: WorkQueue, sync: SyncFn, name: str = "worker") -> None:
    """Process keys until the queue shuts down.

    A failed sync is retried with backoff; a 409 Conflict (a stale cache) is expected
    and retried quietly, everything else is logged. Success resets the key's backoff.
    """
    while True:
        try:
            key = await queue.get()
        except ShutDown:
            return
        try:
            await sync(key)
        except StatusError as err:
            if err.code == 409:
                log.debug("component=%s event=conflict key=%s", name, key)
            else:
                log.warning("component=%s event=sync-error key=%s error=%s", name, key, err)
            queue.add_rate_limited(key)
        except Exception as err:
            log.warning(
                "component=%s event=sync-error key=%s error=%r", name, key, err, exc_info=True
            )
            queue.add_rate_limited(key)
        else:
            queue.forget(key)
        finally:
            queue.done(key)
