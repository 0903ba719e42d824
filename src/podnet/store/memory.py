"""`memory://`: the store engine with history kept in a list, for tests.

It runs the very same engine as `sqlite://` (group commit, watch hub, list at a past
revision, compaction), so a test against it exercises real store semantics; it just
forgets everything when the process ends.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from podnet.store.base import Event, StoreOptions
from podnet.store.core import Loaded, LogStore


class MemoryHistory:
    """Every committed event since the compacted revision, in order."""

    def __init__(self) -> None:
        self._log: list[Event] = []
        self._base = 1  # revision of _log[0]

    async def open(self) -> Loaded:
        return Loaded(revision=0, compacted=0, items=[])

    async def commit(self, events: Sequence[Event]) -> None:
        if not self._log:
            self._base = events[0].kv.mod_revision
        self._log.extend(events)

    async def read(self, after: int, upto: int, prefix: str, limit: int) -> tuple[list[Event], int]:
        start = max(after + 1 - self._base, 0)
        out: list[Event] = []
        last = after
        for ev in self._log[start : max(upto + 1 - self._base, 0)]:
            last = ev.kv.mod_revision
            if ev.kv.key.startswith(prefix):
                out.append(ev)
                if len(out) == limit:
                    return out, last
        return out, max(upto, after)

    async def compact(self, revision: int, batch: int) -> int:
        steps = 0
        while self._log and self._base <= revision:
            n = min(batch, revision - self._base + 1)
            del self._log[:n]
            self._base += n
            steps += 1
            await asyncio.sleep(0)  # like sqlite: let writers in between batches
        return steps

    async def close(self) -> None:
        self._log.clear()


class MemoryStore(LogStore):
    """A `Store` held in memory; see the module docstring."""

    def __init__(self, options: StoreOptions | None = None) -> None:
        super().__init__(MemoryHistory(), options)
