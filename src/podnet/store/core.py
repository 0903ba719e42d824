"""The backend-independent engine: one serialized writer, in-memory current state, watch hub.

A backend only persists (`Backend`): it commits a batch of events, reads history back and
forgets old history. Everything with semantics lives here, once, so `memory://` and
`sqlite://` cannot drift apart:

- Writes queue up and one writer task takes *all* queued writes at a time (group
  commit): it checks them in order against the current state plus the batch so far,
  gives each the next revision, calls its encoder with exactly that revision, hands the
  batch to the backend in one commit, and only then applies it to memory, publishes the
  events and resolves the callers. A failed commit changes nothing and fails the batch.
- Reads (`get`, `list`) never touch the backend: current values live in a dict plus a
  sorted key list. A list at a past revision R takes the current values and undoes the
  events after R (each event carries the value before it), so pagination stays
  consistent while writes continue.
"""

from __future__ import annotations

import asyncio
import bisect
import builtins
import contextlib
import heapq
import logging
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from podnet.store.base import (
    CompactedError,
    ConflictError,
    Encoder,
    Event,
    FutureRevisionError,
    KeyExistsError,
    KeyNotFoundError,
    KeyValue,
    ListResult,
    StoreClosedError,
    StoreError,
    StoreOptions,
)
from podnet.store.watchhub import Watch, WatchHub

log = logging.getLogger("podnet.store")

_CREATE, _UPDATE, _DELETE = 0, 1, 2


@dataclass(frozen=True, slots=True)
class Loaded:
    """What a backend hands the engine at start."""

    revision: int
    compacted: int
    items: list[KeyValue]  # current values, any order


class Backend(Protocol):
    """Persistence for `LogStore`. Called from the loop; blocking work goes off it."""

    async def open(self) -> Loaded:
        """Open storage and return the current state."""

    async def commit(self, events: Sequence[Event]) -> None:
        """Make these events (consecutive revisions) durable, all or none."""

    async def read(self, after: int, upto: int, prefix: str, limit: int) -> tuple[list[Event], int]:
        """History, as `watchhub.HistoryReader` describes."""

    async def compact(self, revision: int, batch: int) -> int:
        """Forget history at and below revision, `batch` revisions per step, resuming an
        interrupted compaction; returns the number of steps taken."""

    async def close(self) -> None:
        """Release files, connections and threads."""


@dataclass(slots=True)
class _Op:
    kind: int
    key: str
    encode: Encoder | None
    expected: int
    future: asyncio.Future[KeyValue]


def prefix_end(prefix: str) -> str | None:
    """The smallest string above every string that starts with `prefix` (None: no bound)."""
    if not prefix:
        return None
    last = ord(prefix[-1])
    if last >= 0x10FFFF:
        return None
    return prefix[:-1] + chr(last + 1)


class LogStore:
    """`Store` on top of a `Backend`; see the module docstring."""

    def __init__(self, backend: Backend, options: StoreOptions | None = None) -> None:
        self.options = options or StoreOptions()
        self._backend = backend
        self._kv: dict[str, KeyValue] = {}
        self._keys: builtins.list[str] = []  # sorted
        self._revision = 0
        self._compacted = 0
        self._hub = WatchHub(self.options.ring_size, backend.read, lambda: self._compacted)
        self._pending: builtins.list[_Op] = []
        self._wakeup = asyncio.Event()
        self._state = "new"  # new -> open -> closing -> closed
        self._writer: asyncio.Task[None] | None = None
        self._compactor: asyncio.Task[None] | None = None
        self._compact_lock = asyncio.Lock()
        # Counters for tests and `podnet status`; cheap, never reset.
        self.commits = 0
        self.compaction_steps = 0

    # -- lifecycle -------------------------------------------------------------------

    async def start(self) -> None:
        if self._state != "new":
            raise StoreError("store already started")
        try:
            loaded = await self._backend.open()
        except BaseException:
            await self._backend.close()  # e.g. the file is locked: release threads
            raise
        self._revision = loaded.revision
        self._compacted = loaded.compacted
        self._kv = {kv.key: kv for kv in loaded.items}
        self._keys = sorted(self._kv)
        self._hub.reset(self._revision)
        self._state = "open"
        self._writer = asyncio.create_task(self._write_loop(), name="podnet-store-writer")
        self._compactor = asyncio.create_task(self._compact_loop(), name="podnet-store-compact")

    async def close(self) -> None:
        if self._state in ("closing", "closed"):
            return
        started = self._state == "open"
        self._state = "closing"
        if started:
            assert self._writer is not None and self._compactor is not None
            self._wakeup.set()
            await self._writer  # drains writes already queued
            self._compactor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._compactor
        self._hub.close()
        if started:
            await self._backend.close()
        self._state = "closed"

    # -- reads -----------------------------------------------------------------------

    def revision(self) -> int:
        return self._revision

    def compacted_revision(self) -> int:
        return self._compacted

    @property
    def watcher_count(self) -> int:
        return self._hub.watcher_count

    async def get(self, key: str) -> KeyValue | None:
        return self._kv.get(key)

    async def list(
        self, prefix: str, *, start_after: str = "", limit: int = 0, revision: int = 0
    ) -> ListResult:
        if revision < 0 or limit < 0:
            raise ValueError("revision and limit must not be negative")
        if revision == 0 or revision == self._revision:
            items, more = self._slice(prefix, start_after, limit, {})
            return ListResult(items, self._revision, more)
        if revision > self._revision:
            raise FutureRevisionError(
                f"revision {revision} is ahead of the store (at {self._revision})"
            )
        if revision < self._compacted:
            raise CompactedError(revision, self._compacted)
        # Events after `revision`, up to whatever the head is once no await is pending,
        # so the current state and the events we undo describe the same moment.
        head = revision
        events: builtins.list[Event] = []
        while head != self._revision:
            target = self._revision
            events.extend(await self._hub.events(head, target, prefix))
            head = target
        before: dict[str, KeyValue | None] = {}
        for ev in events:
            if ev.kv.key not in before:
                before[ev.kv.key] = None if ev.type == "ADDED" else ev.prev
        items, more = self._slice(prefix, start_after, limit, before)
        return ListResult(items, revision, more)

    def _slice(
        self, prefix: str, start_after: str, limit: int, before: dict[str, KeyValue | None]
    ) -> tuple[builtins.list[KeyValue], bool]:
        """Current values under prefix after start_after, with `before` overriding keys."""
        keys = self._keys
        lo = bisect.bisect_left(keys, prefix)
        if start_after:
            lo = max(lo, bisect.bisect_right(keys, start_after))
        end = prefix_end(prefix)
        hi = len(keys) if end is None else bisect.bisect_left(keys, end, lo)
        kv = self._kv
        if not before:
            if end is None and prefix:  # last character is U+10FFFF: filter by hand
                names = [k for k in keys[lo:hi] if k.startswith(prefix)]
            else:
                names = keys[lo:hi]
            if limit and len(names) > limit:
                return [kv[k] for k in names[:limit]], True
            return [kv[k] for k in names], False
        changed = sorted(k for k in before if k > start_after)
        out: builtins.list[KeyValue] = []
        last = None
        for k in heapq.merge(keys[lo:hi], changed):
            if k == last or not k.startswith(prefix):
                continue
            last = k
            item = before[k] if k in before else kv[k]
            if item is None:
                continue
            if limit and len(out) == limit:
                return out, True
            out.append(item)
        return out, False

    def watch(self, prefix: str, from_revision: int) -> Watch:
        return self._hub.watch(prefix, from_revision)

    # -- writes ----------------------------------------------------------------------

    async def create(self, key: str, encode: Encoder) -> KeyValue:
        return await self._submit(_CREATE, key, encode, 0)

    async def update(self, key: str, encode: Encoder, expected_revision: int = 0) -> KeyValue:
        return await self._submit(_UPDATE, key, encode, expected_revision)

    async def delete(self, key: str, expected_revision: int = 0) -> KeyValue:
        return await self._submit(_DELETE, key, None, expected_revision)

    async def _submit(self, kind: int, key: str, encode: Encoder | None, expected: int) -> KeyValue:
        if self._state != "open":
            raise StoreClosedError(f"store is {self._state}; write to {key} not applied")
        fut: asyncio.Future[KeyValue] = asyncio.get_running_loop().create_future()
        self._pending.append(_Op(kind, key, encode, expected, fut))
        self._wakeup.set()
        return await fut

    async def _write_loop(self) -> None:
        while True:
            if not self._pending:
                if self._state != "open":
                    return
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            batch, self._pending = self._pending, []
            await self._apply(batch)

    async def _apply(self, batch: builtins.list[_Op]) -> None:
        staged: dict[str, KeyValue | None] = {}
        events: builtins.list[Event] = []
        outcomes: builtins.list[tuple[asyncio.Future[KeyValue], KeyValue | BaseException]] = []
        rev = self._revision
        for op in batch:
            if op.future.done():  # caller cancelled before we got to it
                continue
            key = op.key
            cur = staged[key] if key in staged else self._kv.get(key)
            try:
                ev = self._stage(op, cur, rev + 1)
            except Exception as err:  # a rule broken, or the caller's encoder failed
                outcomes.append((op.future, err))
                continue
            rev += 1
            staged[key] = None if ev.type == "DELETED" else ev.kv
            events.append(ev)
            outcomes.append((op.future, ev.kv))
        if events:
            t0 = time.perf_counter()
            try:
                await self._backend.commit(events)
            except Exception as err:
                log.error(
                    "component=store event=commit-failed writes=%d error=%r", len(events), err
                )
                for fut, _ in outcomes:
                    if not fut.done():
                        fut.set_exception(err)
                return
            self.commits += 1
            self._remember(events)
            log.debug(
                "component=store event=commit writes=%d revision=%d ms=%.2f",
                len(events),
                self._revision,
                (time.perf_counter() - t0) * 1000,
            )
        for fut, result in outcomes:
            if fut.done():
                continue
            if isinstance(result, BaseException):
                fut.set_exception(result)
            else:
                fut.set_result(result)

    @staticmethod
    def _stage(op: _Op, cur: KeyValue | None, rev: int) -> Event:
        key = op.key
        if op.kind == _CREATE:
            if cur is not None:
                raise KeyExistsError(key)
            assert op.encode is not None
            return Event("ADDED", KeyValue(key, _bytes(op.encode(rev)), rev, rev))
        if cur is None:
            raise KeyNotFoundError(key)
        if op.expected and op.expected != cur.mod_revision:
            raise ConflictError(key, op.expected, cur.mod_revision)
        if op.kind == _UPDATE:
            assert op.encode is not None
            value = _bytes(op.encode(rev))
            return Event("MODIFIED", KeyValue(key, value, cur.create_revision, rev), cur)
        return Event("DELETED", KeyValue(key, cur.value, cur.create_revision, rev), cur)

    def _remember(self, events: builtins.list[Event]) -> None:
        kv = self._kv
        keys = self._keys
        for ev in events:
            key = ev.kv.key
            if ev.type == "DELETED":
                del kv[key]
                del keys[bisect.bisect_left(keys, key)]
            else:
                if ev.type == "ADDED":
                    bisect.insort(keys, key)
                kv[key] = ev.kv
        self._revision = events[-1].kv.mod_revision
        self._hub.publish(events)

    # -- compaction ------------------------------------------------------------------

    async def compact(self, revision: int) -> None:
        if self._state != "open":
            raise StoreClosedError(f"store is {self._state}")
        if revision > self._revision:
            raise FutureRevisionError(
                f"cannot compact to {revision}: the store is at {self._revision}"
            )
        async with self._compact_lock:
            if revision <= self._compacted:
                return
            # Readers fail fast from here on, before any row is gone.
            self._compacted = revision
            t0 = time.perf_counter()
            steps = await self._backend.compact(revision, self.options.compact_batch)
            self.compaction_steps += steps
            log.info(
                "component=store event=compact revision=%d steps=%d ms=%.1f",
                revision,
                steps,
                (time.perf_counter() - t0) * 1000,
            )

    async def _compact_loop(self) -> None:
        """Finish an interrupted compaction, then apply the retention policy forever."""
        opts = self.options
        async with self._compact_lock:
            self.compaction_steps += await self._backend.compact(
                self._compacted, opts.compact_batch
            )
        if opts.compact_interval <= 0:
            return
        samples: deque[tuple[float, int]] = deque()  # (time, head revision then)
        while True:
            await asyncio.sleep(opts.compact_interval)
            now = opts.clock()
            samples.append((now, self._revision))
            target = self._revision - opts.keep_revisions
            if opts.keep_seconds > 0:
                cutoff = now - opts.keep_seconds
                while len(samples) > 1 and samples[1][0] <= cutoff:
                    samples.popleft()
                if samples[0][0] > cutoff:
                    continue  # nothing is old enough yet
                target = min(target, samples[0][1])
            if target > self._compacted:
                try:
                    await self.compact(target)
                except StoreError as err:
                    log.warning("component=store event=auto-compact-failed error=%r", err)


def _bytes(value: bytes) -> bytes:
    if not isinstance(value, bytes | bytearray | memoryview):
        raise TypeError(f"store encoder must return bytes, not {type(value).__name__}")
    return bytes(value)
