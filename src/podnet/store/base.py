"""The store contract: a revisioned key-value log with watch (the shape of etcd/kine).

Every write bumps one global revision. The revision is the Kubernetes
resourceVersion. Values are opaque bytes (the API server stores the object's JSON);
so that a stored value can already carry its own resourceVersion, writes take a
function from the revision the write will get to the bytes to store.

Backends: `memory://` (tests), `sqlite:///path/to/file.db` (default), `etcd://` (later).
Every backend must pass `podnet.testing.storekit` (the contract test kit).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Literal, Protocol

EventType = Literal["ADDED", "MODIFIED", "DELETED"]

# Turns the revision a write will get into the bytes to store.
Encoder = Callable[[int], bytes]


@dataclass(frozen=True, slots=True)
class KeyValue:
    key: str
    value: bytes
    create_revision: int
    mod_revision: int


@dataclass(frozen=True, slots=True)
class Event:
    type: EventType
    kv: KeyValue  # for DELETED: the last value, with mod_revision = the delete's revision
    prev: KeyValue | None = None  # previous value for MODIFIED/DELETED


@dataclass(frozen=True, slots=True)
class ListResult:
    items: list[KeyValue]
    revision: int  # the store revision the list was read at
    more: bool  # True when `limit` cut the list; continue after items[-1].key


class StoreError(Exception):
    """Base of store errors."""


class KeyExistsError(StoreError):
    def __init__(self, key: str) -> None:
        super().__init__(f"key exists: {key}")
        self.key = key


class KeyNotFoundError(StoreError):
    def __init__(self, key: str) -> None:
        super().__init__(f"key not found: {key}")
        self.key = key


class ConflictError(StoreError):
    """The key's mod_revision is not the one the caller expected."""

    def __init__(self, key: str, expected: int, actual: int) -> None:
        super().__init__(f"conflict on {key}: expected revision {expected}, found {actual}")
        self.key = key
        self.expected = expected
        self.actual = actual


class CompactedError(StoreError):
    """A watch or list asked for a revision older than the oldest one still held."""

    def __init__(self, requested: int, compacted: int) -> None:
        super().__init__(f"revision {requested} is compacted (oldest held: {compacted + 1})")
        self.requested = requested
        self.compacted = compacted


class FutureRevisionError(StoreError):
    """A read asked for a revision the store has not reached yet."""


class StoreClosedError(StoreError):
    """The store is not started, or was closed; the write was not applied."""


@dataclass(frozen=True, slots=True)
class StoreOptions:
    """Tuning shared by every backend; the defaults suit the API server.

    History is compacted automatically once it is both older than `keep_seconds` and
    more than `keep_revisions` behind the head, so a `continue` token or a watch resume
    stays valid for at least that long (Kubernetes compacts every 5 minutes).
    """

    ring_size: int = 10_000  # recent events kept in memory for watchers
    keep_revisions: int = 10_000  # automatic compaction never goes closer to the head
    keep_seconds: float = 300.0  # ... nor drops history younger than this
    compact_interval: float = 60.0  # how often the automatic compactor looks; 0 = never
    compact_batch: int = 1_000  # revisions forgotten per transaction, so writers interleave
    clock: Callable[[], float] = field(default=time.monotonic)  # injectable for tests


class EventStream(Protocol):
    """What `Store.watch` returns: events in revision order, awaited one at a time, or
    taken without awaiting when they are already at hand."""

    def __aiter__(self) -> AsyncIterator[Event]: ...

    async def __anext__(self) -> Event: ...

    def take_ready(self, limit: int) -> list[Event]:
        """Up to `limit` events available now, in order; empty when the next one needs
        a wait (or before the first `anext`)."""
        ...

    async def aclose(self) -> None: ...


class Store(Protocol):
    """What the API server needs from a backend. All methods are safe to call
    concurrently from one event loop; blocking I/O happens off the loop."""

    async def start(self) -> None:
        """Open files/connections and load state; must be called before use."""

    async def close(self) -> None:
        """Flush and release everything; watchers' iterators end."""

    def revision(self) -> int:
        """The current (latest committed) revision; 0 for an empty new store."""

    def compacted_revision(self) -> int:
        """Events at or below this revision are gone.

        A watch from below it, or a list at a revision below it, raises CompactedError;
        watching or listing exactly at it still works (every later event is held).
        """

    async def get(self, key: str) -> KeyValue | None:
        """The current value, or None."""

    async def list(
        self, prefix: str, *, start_after: str = "", limit: int = 0, revision: int = 0
    ) -> ListResult:
        """Keys under prefix in key order, after `start_after`, at most `limit` (0 = all).

        `revision` > 0 reads as of that revision (for paginated lists to stay consistent);
        raises CompactedError when it is no longer held, FutureRevisionError when ahead.
        """

    async def create(self, key: str, encode: Encoder) -> KeyValue:
        """Create key; raises KeyExistsError. Returns the stored KeyValue."""

    async def update(self, key: str, encode: Encoder, expected_revision: int = 0) -> KeyValue:
        """Replace key's value. expected_revision > 0 must equal the current
        mod_revision (else ConflictError); raises KeyNotFoundError if absent."""

    async def delete(self, key: str, expected_revision: int = 0) -> KeyValue:
        """Delete key; returns the deleted value (mod_revision = delete's revision).
        Raises KeyNotFoundError / ConflictError like update."""

    def watch(self, prefix: str, from_revision: int) -> EventStream:
        """Events for keys under prefix with revision > from_revision, in order, forever
        (until the store closes or the consumer stops iterating).

        from_revision == 0 means "from now". Raises CompactedError (on first
        iteration) when from_revision < compacted_revision(). Slow consumers must not
        block writers or other watchers.
        """

    async def compact(self, revision: int) -> None:
        """Forget history at and below revision (current values are kept)."""
