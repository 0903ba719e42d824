"""The store contract on `sqlite://`, plus what only a file can do: survive restarts and
crashes, compact on disk in small steps, and refuse a second owner."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from pathlib import Path

import pytest

from podnet.store.base import KeyValue, Store, StoreError, StoreOptions
from podnet.store.sqlite import SqliteStore
from podnet.store.url import open_store
from podnet.testing.storekit import StoreContract, take, text


class TestSqliteContract(StoreContract):
    def new_store(self, directory: Path, options: StoreOptions) -> Store:
        return SqliteStore(directory / "state.db", options)


QUIET = StoreOptions(compact_interval=0)


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "state.db"


async def started(path: Path, options: StoreOptions = QUIET) -> SqliteStore:
    store = SqliteStore(path, options)
    await store.start()
    return store


async def test_restart_keeps_every_key_and_revisions_continue(db: Path) -> None:
    store = await started(db)
    for i in range(20):
        await store.create(f"/k/{i:02}", text(str(i)))
    await store.update("/k/03", text("three"))
    await store.delete("/k/07")
    before = await store.list("")
    await store.close()

    store = await started(db)
    try:
        assert store.revision() == 22
        assert await store.list("") == before
        assert await store.get("/k/03") == KeyValue("/k/03", b"three@21", 4, 21)
        assert (await store.create("/k/07", text("back"))).mod_revision == 23
        # History survived too: a watch from before the restart replays from disk.
        replay = await take(store.watch("/k/0", 20), 3)
        assert [(ev.type, ev.kv.key, ev.kv.mod_revision) for ev in replay] == [
            ("MODIFIED", "/k/03", 21),
            ("DELETED", "/k/07", 22),
            ("ADDED", "/k/07", 23),
        ]
        assert replay[1].kv == KeyValue("/k/07", b"7@8", 8, 22)
        assert replay[1].prev == KeyValue("/k/07", b"7@8", 8, 8)
        old = await store.list("/k/", revision=20)
        assert len(old.items) == 20
        assert old.items[3] == KeyValue("/k/03", b"3@4", 4, 4)
    finally:
        await store.close()


async def test_head_survives_restart_even_when_its_rows_were_compacted(db: Path) -> None:
    store = await started(db)
    await store.create("/a", text("a"))
    await store.delete("/a")
    await store.compact(2)  # both rows go: the log is empty now
    assert await store.history_rows() == 0
    await store.close()
    store = await started(db)
    try:
        assert (store.revision(), store.compacted_revision()) == (2, 2)
        assert (await store.create("/b", text("b"))).mod_revision == 3
    finally:
        await store.close()


CHILD = """
import asyncio, sys
from podnet.store.base import StoreOptions
from podnet.store.sqlite import SqliteStore

async def main() -> None:
    store = SqliteStore(sys.argv[1], StoreOptions(compact_interval=0))
    await store.start()
    counter = iter(range(10**9))

    async def writer() -> None:
        while True:
            key = f"/crash/{next(counter):07}"
            kv = await store.create(key, lambda rev: b"x" * 200 + str(rev).encode())
            sys.stdout.write(f"{kv.key} {kv.mod_revision}\\n")
            sys.stdout.flush()

    await asyncio.gather(*(writer() for _ in range(20)))

asyncio.run(main())
"""


async def test_acknowledged_writes_survive_kill_9(db: Path) -> None:
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-c", CHILD, str(db), stdout=asyncio.subprocess.PIPE
    )
    assert child.stdout is not None
    acked: dict[str, int] = {}

    def ack(line: bytes) -> None:
        key, rev = line.decode().split()
        acked[key] = int(rev)

    try:
        async with asyncio.timeout(20):
            while len(acked) < 2000:  # keep reading, so the child never blocks on the pipe
                line = await child.stdout.readline()
                assert line, "writer process ended early"
                ack(line)
    finally:
        os.kill(child.pid, signal.SIGKILL)  # mid-stream: writes are still in flight
        rest = await child.stdout.read()  # asyncio's wait() also waits for the pipe's EOF
        await child.wait()
    assert child.returncode == -signal.SIGKILL
    for line in rest.split(b"\n")[:-1]:  # every line the child finished writing
        ack(line)

    store = await started(db)
    try:
        for key, rev in acked.items():
            kv = await store.get(key)
            assert kv is not None, f"acknowledged write {key}@{rev} was lost"
            assert kv.mod_revision == rev
        head = store.revision()
        print(f"kill -9: {len(acked)} acknowledged, {head} on disk after restart")
        assert head >= max(acked.values())
        assert len((await store.list("/crash/")).items) == head  # no holes, no extras
        assert (await store.create("/after", text("x"))).mod_revision == head + 1
    finally:
        await store.close()


async def test_compaction_deletes_history_in_small_steps(db: Path) -> None:
    store = await started(db, StoreOptions(compact_interval=0, compact_batch=100))
    try:
        for i in range(50):
            await store.create(f"/k/{i:02}", text("v0"))
        for round_ in range(1, 41):
            await asyncio.gather(
                *(store.update(f"/k/{i:02}", text(f"v{round_}")) for i in range(50))
            )
        await store.delete("/k/49")
        head = store.revision()
        assert head == 2051
        assert await store.history_rows() == 2051
        current = await store.list("")

        stalls: list[float] = []

        async def ticker() -> None:
            while True:
                t = time.perf_counter()
                await asyncio.sleep(0)
                stalls.append(time.perf_counter() - t)

        tick = asyncio.create_task(ticker())
        steps_before = store.compaction_steps
        writes = asyncio.gather(*(store.create(f"/during/{i}", text("d")) for i in range(100)))
        await store.compact(head - 10)
        await writes
        tick.cancel()
        assert store.compaction_steps - steps_before == 21  # 2041 revisions, 100 per step
        assert max(stalls) < 0.5  # the loop kept turning (generous: shared machine)
        # Left: the latest row of each key as of the compacted revision (50 keys), the
        # ten writes above it, and the hundred made while compacting.
        assert await store.history_rows() == 50 + 10 + 100
        assert (await store.list("/k/")).items == current.items
        # Everything after the compacted revision is still there, with prev values.
        events = await take(store.watch("/k/", head - 10), 10)
        assert [ev.kv.mod_revision for ev in events] == list(range(head - 9, head + 1))
        assert all(ev.prev is not None for ev in events)
        at = await store.list("/k/", revision=head - 10)
        assert at.items[-1] == KeyValue("/k/49", b"v39@2000", 50, 2000)
    finally:
        await store.close()
    store = await started(db)
    try:
        assert store.compacted_revision() == head - 10
        assert (await store.list("/k/")).items == current.items
    finally:
        await store.close()


async def test_automatic_compaction_shrinks_history_in_the_background(db: Path) -> None:
    options = StoreOptions(keep_revisions=100, keep_seconds=0, compact_interval=0.01)
    store = await started(db, options)
    try:
        for i in range(10):
            await store.create(f"/k/{i}", text("0"))
        for n in range(1, 60):
            await asyncio.gather(*(store.update(f"/k/{i}", text(str(n))) for i in range(10)))
        deadline = time.monotonic() + 5
        while store.compacted_revision() < 500 and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        assert store.compacted_revision() == 500
        # The revision moves first; the rows go in small background batches after it.
        while await store.history_rows() != 110 and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        assert await store.history_rows() == 110  # 100 recent writes + their previous rows
        assert await store.db_size() > 0
    finally:
        await store.close()


async def test_a_second_process_cannot_open_the_same_file(db: Path) -> None:
    store = await started(db)
    try:
        with pytest.raises(StoreError, match="in use"):
            await started(db)
    finally:
        await store.close()
    again = await started(db)  # the lock went away with the first store
    await again.close()


def test_sqlite_url_opens_a_sqlite_store(db: Path) -> None:
    store = open_store(f"sqlite://{db}?synchronous=full&compact_batch=50")
    assert isinstance(store, SqliteStore)
    assert store.path == db
    assert store.options.compact_batch == 50


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("sqlite://relative/state.db", "absolute path"),
        ("sqlite:///", "missing database file path"),
        ("sqlite:///tmp/x.db?synchronous=sometimes", "NORMAL or FULL"),
    ],
)
def test_bad_sqlite_urls(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        open_store(url)
