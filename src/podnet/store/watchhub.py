"""Watch fan-out shared by every backend: a ring of recent events plus one cursor per watcher.

Why a ring and cursors rather than a queue per watcher: publishing must never wait for a
consumer, and must not copy every event into a thousand queues. A publish writes the
events into the ring once and wakes only the watchers that are idle *and* whose prefix
matched; idle watchers whose prefix did not match just have their cursor moved forward.
A watcher that falls behind the ring (a slow consumer, or a watch from an old revision)
reads the backend's history in pages and then rejoins the ring, so there is no gap and no
duplicate: the cursor is the last revision the watcher has looked at, whichever source
supplied it.

Events must be published in revision order with no holes (revision r, r+1, ...), which the
store guarantees because every write gets exactly one revision.
"""

from __future__ import annotations

import asyncio
import weakref
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence

from podnet.store.base import CompactedError, Event

# (after, upto, prefix, limit) -> (events under prefix with after < revision <= upto, in
# order, at most `limit` of them; the highest revision the backend looked at). The second
# value lets a cursor skip a long stretch of non-matching history in one step.
HistoryReader = Callable[[int, int, str, int], Awaitable[tuple[list[Event], int]]]

HISTORY_PAGE = 1_000  # events a lagging watcher reads from history per step


class _Cursor:
    """One watcher's position; cheap enough that 1,000s of them cost nothing per write."""

    __slots__ = ("buffer", "closed", "prefix", "rev", "waiting", "wake")

    def __init__(self, prefix: str, rev: int) -> None:
        self.prefix = prefix
        self.rev = rev  # last revision this watcher has examined (delivered or skipped)
        self.waiting = False  # parked on `wake` with nothing left to examine
        self.wake = asyncio.Event()
        self.buffer: deque[Event] = deque()  # history page not yet handed out
        self.closed = False


class WatchHub:
    """Owns the ring of recent events and every live watcher of one store."""

    def __init__(
        self, ring_size: int, history: HistoryReader, compacted: Callable[[], int]
    ) -> None:
        if ring_size < 1:
            raise ValueError("ring_size must be at least 1")
        self._cap = ring_size
        self._ring: list[Event | None] = [None] * ring_size
        self._history = history
        self._compacted = compacted
        self._newest = 0  # revision of the last published event (or the start revision)
        self._first = 1  # lowest revision still in the ring; > newest when the ring is empty
        self._cursors: set[_Cursor] = set()
        self._closed = False

    # -- writer side -----------------------------------------------------------------

    def reset(self, revision: int) -> None:
        """Start empty at `revision` (the store's head after loading from disk)."""
        self._newest = revision
        self._first = revision + 1
        self._ring = [None] * self._cap

    def publish(self, events: Sequence[Event]) -> None:
        """Add committed events (consecutive revisions) and wake watchers that care.

        Runs on the loop and never awaits, so a slow watcher cannot hold up a writer.
        """
        if not events:
            return
        for ev in events:
            rev = ev.kv.mod_revision
            if rev != self._newest + 1:
                raise AssertionError(f"watch hub got revision {rev} after {self._newest}")
            self._ring[rev % self._cap] = ev
            self._newest = rev
        if self._newest - self._first + 1 > self._cap:
            self._first = self._newest - self._cap + 1
        newest = self._newest
        matched: dict[str, bool] = {}
        for cur in self._cursors:
            if not cur.waiting:
                continue  # busy consuming; it will scan the ring itself
            hit = matched.get(cur.prefix)
            if hit is None:
                p = cur.prefix
                hit = any(ev.kv.key.startswith(p) for ev in events)
                matched[p] = hit
            if hit:
                cur.waiting = False
                cur.wake.set()
            elif cur.rev < newest:
                # Idle and nothing for it: move it along so it never has to re-scan these
                # events (or fall out of the ring and hit history) later.
                cur.rev = newest

    def close(self) -> None:
        """End every watch; iterators stop at their next step."""
        self._closed = True
        for cur in self._cursors:
            cur.closed = True
            cur.wake.set()
        self._cursors.clear()

    # -- reader side -----------------------------------------------------------------

    @property
    def newest(self) -> int:
        return self._newest

    @property
    def watcher_count(self) -> int:
        return len(self._cursors)

    def watch(self, prefix: str, from_revision: int) -> Watch:
        """A watch positioned now (0) or after `from_revision`; see `Store.watch`."""
        return Watch(self, prefix, from_revision)

    async def events(self, after: int, upto: int, prefix: str) -> list[Event]:
        """Every event under prefix with after < revision <= upto (upto <= newest).

        Reads the ring when it still covers `after`, else history; raises CompactedError
        when history no longer reaches back that far.
        """
        out: list[Event] = []
        cur = after
        while cur < upto:
            if cur + 1 >= self._first:
                ring = self._ring
                cap = self._cap
                for rev in range(cur + 1, upto + 1):
                    ev = ring[rev % cap]
                    assert ev is not None
                    if ev.kv.key.startswith(prefix):
                        out.append(ev)
                return out
            compacted = self._compacted()
            if cur < compacted:
                raise CompactedError(cur, compacted)
            evs, scanned = await self._history(
                cur, min(upto, self._first - 1), prefix, 10 * HISTORY_PAGE
            )
            compacted = self._compacted()
            if cur < compacted:  # compaction raced the read; the page may have holes
                raise CompactedError(cur, compacted)
            out.extend(evs)
            cur = scanned
        return out

    def _discard(self, cur: _Cursor) -> None:
        cur.closed = True
        cur.wake.set()
        self._cursors.discard(cur)

    def _ready(self, cur: _Cursor) -> Event | None:
        """The next event for `cur` if it is at hand (buffered, or in the ring), without
        awaiting; None when getting one would mean waiting or reading history. Scanning
        the ring moves the cursor past events whose key does not match."""
        if cur.closed or self._closed:
            return None
        if cur.buffer:
            return cur.buffer.popleft()
        if cur.rev < self._newest and cur.rev + 1 >= self._first:
            ring = self._ring
            cap = self._cap
            prefix = cur.prefix
            while cur.rev < self._newest:
                cur.rev += 1
                ev = ring[cur.rev % cap]
                assert ev is not None
                if ev.kv.key.startswith(prefix):
                    return ev
        return None

    async def _next(self, cur: _Cursor) -> Event | None:
        """The next event for `cur`, or None when the watch has ended."""
        while True:
            if cur.closed or self._closed:
                return None
            ev = self._ready(cur)
            if ev is not None:
                return ev
            if cur.rev < self._newest:
                await self._read_history(cur)
                continue
            cur.wake.clear()
            cur.waiting = True
            try:
                await cur.wake.wait()
            finally:
                cur.waiting = False

    async def _read_history(self, cur: _Cursor) -> None:
        compacted = self._compacted()
        if cur.rev < compacted:
            raise CompactedError(cur.rev, compacted)
        upto = self._first - 1  # the ring covers everything after this
        evs, scanned = await self._history(cur.rev, upto, cur.prefix, HISTORY_PAGE)
        compacted = self._compacted()
        if cur.rev < compacted:
            raise CompactedError(cur.rev, compacted)
        if cur.closed:
            return
        cur.buffer.extend(evs)
        cur.rev = max(cur.rev, scanned)


class Watch(AsyncIterator[Event]):
    """The iterator `Store.watch` returns.

    The position is fixed when the watch is created (so "from now" means the moment of
    the call, not of the first `anext`). Dropping the iterator unregisters it; `aclose()`
    does so at once.
    """

    def __init__(self, hub: WatchHub, prefix: str, from_revision: int) -> None:
        self._hub = hub
        self._start = from_revision
        self._checked = from_revision <= 0
        self._cursor = _Cursor(prefix, hub.newest if from_revision <= 0 else from_revision)
        if hub._closed:
            self._cursor.closed = True
        else:
            hub._cursors.add(self._cursor)
        self._finalizer = weakref.finalize(self, hub._discard, self._cursor)

    def __aiter__(self) -> Watch:
        return self

    async def __anext__(self) -> Event:
        if not self._checked:
            self._checked = True
            compacted = self._hub._compacted()
            if self._start < compacted:
                self._finalizer()
                raise CompactedError(self._start, compacted)
        try:
            ev = await self._hub._next(self._cursor)
        except asyncio.CancelledError:
            raise  # e.g. wait_for timing out on a quiet watch: the position is still valid
        except BaseException:
            self._finalizer()
            raise
        if ev is None:
            self._finalizer()
            raise StopAsyncIteration
        return ev

    def take_ready(self, limit: int) -> list[Event]:
        """Up to `limit` events that are at hand now, in order, without awaiting (empty
        when the next one needs a wait or a history read, or before the first `anext`
        has checked the start revision). A consumer that has one event drains what came
        with it in one go, instead of one turn of the event loop per event."""
        out: list[Event] = []
        if not self._checked:
            return out
        while len(out) < limit:
            ev = self._hub._ready(self._cursor)
            if ev is None:
                break
            out.append(ev)
        return out

    async def aclose(self) -> None:
        """Stop watching now; a pending `anext` ends with StopAsyncIteration."""
        self._finalizer()
