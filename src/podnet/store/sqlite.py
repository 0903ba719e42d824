"""`sqlite:///abs/path.db`: the default store, one SQLite file in WAL mode.

On disk there is one table, `log`: a row per write (revision, key, type, value, create
revision, previous revision). It is both the history (watch replay, list at a past
revision) and, by its latest row per key, the current state, which is loaded into memory
at start. Compaction at C deletes, for every write at or below C, the row it superseded,
and deletes delete-rows at or below C; so the latest version of every live key survives
(as in etcd), which keeps `prev` available for every event after C.

Threads: one writer thread owns the write connection (commits, compaction steps) and one
reader thread owns a read connection (history). WAL lets them run at the same time.
Durability: a commit is acknowledged after SQLite's COMMIT returns. With the default
`synchronous=NORMAL` the transaction is then in the WAL file (the OS has it), so it
survives the process being killed (kill -9), though not necessarily a power cut; pass
`synchronous="FULL"` for that (an fsync per group commit).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import functools
import os
import sqlite3
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Literal, TypeVar

from podnet.store.base import Event, EventType, KeyValue, StoreError, StoreOptions
from podnet.store.core import Loaded, LogStore, prefix_end

T = TypeVar("T")

Synchronous = Literal["NORMAL", "FULL"]

SCHEMA_VERSION = 1
_TYPES: tuple[EventType, EventType, EventType] = ("ADDED", "MODIFIED", "DELETED")
_CODE = {"ADDED": 0, "MODIFIED": 1, "DELETED": 2}

_SCHEMA = """
CREATE TABLE IF NOT EXISTS log (
    rev        INTEGER PRIMARY KEY,  -- the store revision of this write
    key        TEXT    NOT NULL,
    type       INTEGER NOT NULL,     -- 0 ADDED, 1 MODIFIED, 2 DELETED
    value      BLOB,                 -- NULL for DELETED: the value is the prev row's
    create_rev INTEGER NOT NULL,
    prev_rev   INTEGER NOT NULL      -- the key's previous write (0 for ADDED)
);
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
INSERT OR IGNORE INTO meta VALUES ('compacted', 0), ('compact_done', 0);
"""

_HISTORY = """
SELECT l.rev, l.key, l.type, l.value, l.create_rev, p.rev, p.value, p.create_rev
FROM log AS l LEFT JOIN log AS p ON p.rev = l.prev_rev AND l.prev_rev > 0
WHERE l.rev > ? AND l.rev <= ? {where}
ORDER BY l.rev LIMIT ?
"""


class SqliteHistory:
    """The SQLite `Backend`; see the module docstring."""

    def __init__(self, path: Path, synchronous: Synchronous = "NORMAL") -> None:
        if synchronous not in ("NORMAL", "FULL"):
            raise ValueError(f"synchronous must be NORMAL or FULL, not {synchronous!r}")
        self.path = path
        self._sync = synchronous
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="podnet-sqlite-writer")
        self._reader = ThreadPoolExecutor(1, thread_name_prefix="podnet-sqlite-reader")
        self._wconn: sqlite3.Connection | None = None
        self._rconn: sqlite3.Connection | None = None
        self._lock_fd = -1
        self._compact_done = 0

    async def _on(self, pool: ThreadPoolExecutor, fn: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(pool, fn)

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA busy_timeout = 5000")
        return conn

    # -- open / close ------------------------------------------------------------------

    async def open(self) -> Loaded:
        loaded = await self._on(self._writer, self._open_writer)
        self._rconn = await self._on(self._reader, self._connect)
        return loaded

    def _open_writer(self) -> Loaded:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(f"{self.path}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise StoreError(f"{self.path} is in use by another podnet process") from None
        self._lock_fd = fd
        try:
            return self._load()
        except BaseException:
            self._close_writer()
            raise

    def _load(self) -> Loaded:
        conn = self._connect()
        self._wconn = conn
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute(f"PRAGMA synchronous = {self._sync}")
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version not in (0, SCHEMA_VERSION):
            raise StoreError(f"{self.path}: unknown store schema version {version}")
        conn.executescript(_SCHEMA)
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        meta = dict(conn.execute("SELECT name, value FROM meta").fetchall())
        compacted = int(meta["compacted"])
        self._compact_done = int(meta["compact_done"])
        current: dict[str, KeyValue] = {}
        last = 0
        # Replaying in revision order is right even after an interrupted compaction,
        # which may have left superseded rows behind.
        for rev, key, typ, value, create_rev in conn.execute(
            "SELECT rev, key, type, value, create_rev FROM log ORDER BY rev"
        ):
            last = rev
            if typ == 2:
                current.pop(key, None)
            else:
                current[key] = KeyValue(key, value, create_rev, rev)
        # Only rows at or below `compacted` are ever deleted, so when the newest rows are
        # gone the head was exactly `compacted`.
        return Loaded(max(last, compacted), compacted, list(current.values()))

    async def close(self) -> None:
        if self._rconn is not None:
            await self._on(self._reader, self._rconn.close)
            self._rconn = None
        await self._on(self._writer, self._close_writer)
        self._reader.shutdown(wait=False)
        self._writer.shutdown(wait=False)

    def _close_writer(self) -> None:
        if self._wconn is not None:
            self._wconn.close()  # the last connection checkpoints and removes the WAL
            self._wconn = None
        if self._lock_fd >= 0:
            os.close(self._lock_fd)  # releases the flock
            self._lock_fd = -1

    # -- writes ------------------------------------------------------------------------

    async def commit(self, events: Sequence[Event]) -> None:
        rows = [
            (
                ev.kv.mod_revision,
                ev.kv.key,
                _CODE[ev.type],
                None if ev.type == "DELETED" else ev.kv.value,
                ev.kv.create_revision,
                0 if ev.prev is None else ev.prev.mod_revision,
            )
            for ev in events
        ]
        await self._on(self._writer, lambda: self._insert(rows))

    def _insert(self, rows: list[tuple[int, str, int, bytes | None, int, int]]) -> None:
        conn = self._wconn
        assert conn is not None
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.executemany("INSERT INTO log VALUES (?, ?, ?, ?, ?, ?)", rows)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    async def compact(self, revision: int, batch: int) -> int:
        """Record the new compacted revision, then delete in steps of `batch` revisions,
        each its own transaction on the writer thread, so group commits interleave."""
        await self._on(self._writer, lambda: self._set_compacted(revision))
        steps = 0
        while self._compact_done < revision:
            upto = min(self._compact_done + max(batch, 1), revision)
            await self._on(self._writer, functools.partial(self._compact_step, upto))
            steps += 1
        return steps

    def _set_compacted(self, revision: int) -> None:
        conn = self._wconn
        assert conn is not None
        conn.execute("UPDATE meta SET value = max(value, ?) WHERE name = 'compacted'", (revision,))

    def _compact_step(self, upto: int) -> None:
        conn = self._wconn
        assert conn is not None
        lo = self._compact_done
        conn.execute("BEGIN IMMEDIATE")
        try:
            # The rows that writes in (lo, upto] superseded, then those writes' deletes.
            conn.execute(
                "DELETE FROM log WHERE rev IN (SELECT prev_rev FROM log "
                "WHERE rev > ? AND rev <= ? AND prev_rev > 0)",
                (lo, upto),
            )
            conn.execute("DELETE FROM log WHERE rev > ? AND rev <= ? AND type = 2", (lo, upto))
            conn.execute("UPDATE meta SET value = ? WHERE name = 'compact_done'", (upto,))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        self._compact_done = upto

    # -- history -----------------------------------------------------------------------

    async def read(self, after: int, upto: int, prefix: str, limit: int) -> tuple[list[Event], int]:
        return await self._on(self._reader, lambda: self._read(after, upto, prefix, limit))

    def _read(self, after: int, upto: int, prefix: str, limit: int) -> tuple[list[Event], int]:
        conn = self._rconn
        assert conn is not None
        params: list[object] = [after, upto]
        where = ""
        if prefix:
            end = prefix_end(prefix)
            where = "AND l.key >= ?" + ("" if end is None else " AND l.key < ?")
            params += [prefix] if end is None else [prefix, end]
        params.append(limit)
        out: list[Event] = []
        fetched = 0
        last = after
        for rev, key, typ, value, create_rev, prev_rev, prev_value, prev_create in conn.execute(
            _HISTORY.format(where=where), params
        ):
            fetched += 1
            last = rev
            if not key.startswith(prefix):  # only when the prefix has no upper bound
                continue
            prev = None
            if typ != 0:
                if prev_rev is None:
                    raise StoreError(f"history is missing the write before revision {rev}")
                prev = KeyValue(key, prev_value, prev_create, prev_rev)
                if typ == 2:
                    value = prev_value
            out.append(Event(_TYPES[typ], KeyValue(key, value, create_rev, rev), prev))
        if fetched == limit:
            return out, last
        return out, max(upto, after)

    # -- stats -------------------------------------------------------------------------

    async def db_size(self) -> int:
        """Bytes on disk: the database file plus its WAL."""

        def size() -> int:
            total = 0
            for suffix in ("", "-wal"):
                with contextlib.suppress(FileNotFoundError):
                    total += os.stat(f"{self.path}{suffix}").st_size
            return total

        return await asyncio.to_thread(size)

    async def row_count(self) -> int:
        def count() -> int:
            assert self._rconn is not None
            return int(self._rconn.execute("SELECT count(*) FROM log").fetchone()[0])

        return await self._on(self._reader, count)


class SqliteStore(LogStore):
    """A `Store` in one SQLite file; see the module docstring."""

    def __init__(
        self,
        path: str | Path,
        options: StoreOptions | None = None,
        *,
        synchronous: Synchronous = "NORMAL",
    ) -> None:
        path = Path(path)
        if not path.is_absolute():
            raise ValueError(f"sqlite store path must be absolute, got {str(path)!r}")
        self._sqlite = SqliteHistory(path, synchronous)
        super().__init__(self._sqlite, options)

    @property
    def path(self) -> Path:
        return self._sqlite.path

    async def db_size(self) -> int:
        """Bytes on disk (database + WAL); compaction frees pages for reuse, it does not
        shrink the file."""
        return await self._sqlite.db_size()

    async def history_rows(self) -> int:
        """Rows in the log table: live keys plus uncompacted history."""
        return await self._sqlite.row_count()
