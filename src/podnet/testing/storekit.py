"""The store contract test kit: what every `podnet.store` backend must do.

Use it by subclassing `StoreContract` in a test module and saying how to make a store;
pytest then collects every contract test for that backend:

    from podnet.testing.storekit import StoreContract

    class TestSqliteContract(StoreContract):
        def new_store(self, directory: Path, options: StoreOptions) -> Store:
            return SqliteStore(directory / "state.db", options)

`new_store` gets a fresh empty directory and the options the test wants (a tiny ring to
force the history path, an aggressive compaction policy, ...) and returns a store that is
not started; the kit starts it and closes it after the test. Tests in the subclass can
use the same fixtures: `store` (started, default options) and `open_store` (an opener
taking options). Needs pytest with pytest-asyncio in auto mode.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from podnet.store.base import (
    CompactedError,
    ConflictError,
    Encoder,
    Event,
    FutureRevisionError,
    KeyExistsError,
    KeyNotFoundError,
    KeyValue,
    Store,
    StoreClosedError,
    StoreOptions,
)

Opener = Callable[..., Awaitable[Store]]

# Compaction off unless a test asks for it, so revisions stay put while tests look.
QUIET = StoreOptions(compact_interval=0)


def text(value: str) -> Encoder:
    """An encoder storing `value@<revision>`, as the API server stores resourceVersion."""
    return lambda rev: f"{value}@{rev}".encode()


async def take(watch: AsyncIterator[Event], n: int, timeout: float = 5.0) -> list[Event]:
    """The next `n` events, failing the test if they do not come within `timeout`."""

    async def collect() -> list[Event]:
        out: list[Event] = []
        async for ev in watch:
            out.append(ev)
            if len(out) == n:
                break
        return out

    got = await asyncio.wait_for(collect(), timeout)
    assert len(got) == n, f"watch ended after {len(got)} of {n} events"
    return got


async def nothing_within(watch: AsyncIterator[Event], seconds: float = 0.05) -> bool:
    """True when the watch yields no event for `seconds` (its position is kept)."""
    try:
        ev = await asyncio.wait_for(anext(watch), seconds)
    except TimeoutError:
        return True
    raise AssertionError(f"unexpected event {ev}")


def revs(events: list[Event]) -> list[int]:
    return [ev.kv.mod_revision for ev in events]


def brief(events: list[Event]) -> list[tuple[str, str, bytes]]:
    return [(ev.type, ev.kv.key, ev.kv.value) for ev in events]


class StoreContract:
    """Subclass and implement `new_store`; see the module docstring."""

    def new_store(self, directory: Path, options: StoreOptions) -> Store:
        raise NotImplementedError("a StoreContract subclass must implement new_store")

    @pytest.fixture
    async def open_store(self, tmp_path: Path) -> AsyncIterator[Opener]:
        opened: list[Store] = []
        counter = itertools.count()

        async def opener(options: StoreOptions = QUIET) -> Store:
            directory = tmp_path / f"store{next(counter)}"
            directory.mkdir()
            store = self.new_store(directory, options)
            await store.start()
            opened.append(store)
            return store

        yield opener
        for store in opened:
            await store.close()

    @pytest.fixture
    async def store(self, open_store: Opener) -> Store:
        return await open_store()

    # -- CRUD ------------------------------------------------------------------------

    async def test_empty_store_starts_at_revision_zero(self, store: Store) -> None:
        assert store.revision() == 0
        assert store.compacted_revision() == 0
        assert await store.get("/a") is None
        result = await store.list("")
        assert (result.items, result.revision, result.more) == ([], 0, False)

    async def test_create_then_get(self, store: Store) -> None:
        kv = await store.create("/pods/default/web", text("web"))
        assert kv == KeyValue("/pods/default/web", b"web@1", 1, 1)
        assert await store.get("/pods/default/web") == kv
        assert store.revision() == 1

    async def test_create_existing_key_raises_key_exists(self, store: Store) -> None:
        await store.create("/a", text("one"))
        with pytest.raises(KeyExistsError) as err:
            await store.create("/a", text("two"))
        assert err.value.key == "/a"
        assert (await store.get("/a")) == KeyValue("/a", b"one@1", 1, 1)

    async def test_update_keeps_create_revision(self, store: Store) -> None:
        await store.create("/a", text("one"))
        kv = await store.update("/a", text("two"))
        assert kv == KeyValue("/a", b"two@2", 1, 2)
        kv = await store.update("/a", text("three"), expected_revision=2)
        assert kv == KeyValue("/a", b"three@3", 1, 3)
        assert await store.get("/a") == kv

    async def test_update_with_stale_revision_raises_conflict(self, store: Store) -> None:
        await store.create("/a", text("one"))
        await store.update("/a", text("two"))
        with pytest.raises(ConflictError) as err:
            await store.update("/a", text("stale"), expected_revision=1)
        assert (err.value.key, err.value.expected, err.value.actual) == ("/a", 1, 2)
        with pytest.raises(ConflictError):
            await store.delete("/a", expected_revision=1)
        assert (await store.get("/a")) == KeyValue("/a", b"two@2", 1, 2)

    async def test_missing_key_raises_not_found(self, store: Store) -> None:
        with pytest.raises(KeyNotFoundError):
            await store.update("/nope", text("x"))
        with pytest.raises(KeyNotFoundError):
            await store.update("/nope", text("x"), expected_revision=5)
        with pytest.raises(KeyNotFoundError):
            await store.delete("/nope")
        assert store.revision() == 0

    async def test_delete_returns_last_value_at_delete_revision(self, store: Store) -> None:
        await store.create("/a", text("one"))
        await store.update("/a", text("two"))
        kv = await store.delete("/a", expected_revision=2)
        assert kv == KeyValue("/a", b"two@2", 1, 3)
        assert await store.get("/a") is None
        again = await store.create("/a", text("reborn"))
        assert again == KeyValue("/a", b"reborn@4", 4, 4)

    async def test_every_write_adds_exactly_one_revision(self, store: Store) -> None:
        seen = [
            (await store.create("/a", text("a"))).mod_revision,
            (await store.create("/b", text("b"))).mod_revision,
            (await store.update("/a", text("a2"))).mod_revision,
            (await store.delete("/b")).mod_revision,
            (await store.create("/b", text("b2"))).mod_revision,
        ]
        assert seen == [1, 2, 3, 4, 5]
        assert store.revision() == 5

    async def test_failed_writes_take_no_revision(self, store: Store) -> None:
        await store.create("/a", text("a"))

        def broken(rev: int) -> bytes:
            raise RuntimeError("encoder failed")

        with pytest.raises(KeyExistsError):
            await store.create("/a", text("again"))
        with pytest.raises(RuntimeError):
            await store.create("/b", broken)
        with pytest.raises(RuntimeError):
            await store.update("/a", broken)
        with pytest.raises(ConflictError):
            await store.update("/a", text("x"), expected_revision=7)
        assert store.revision() == 1
        assert await store.get("/b") is None
        assert (await store.create("/c", text("c"))).mod_revision == 2

    async def test_encoder_gets_the_revision_the_write_gets(self, store: Store) -> None:
        asked: dict[str, int] = {}

        def remember(key: str) -> Encoder:
            def encode(rev: int) -> bytes:
                asked[key] = rev
                return str(rev).encode()

            return encode

        kvs = await asyncio.gather(
            *(store.create(f"/k{i:03}", remember(f"/k{i:03}")) for i in range(50))
        )
        for kv in kvs:
            assert kv.value == str(kv.mod_revision).encode()
            assert asked[kv.key] == kv.mod_revision
        updated = await store.update("/k007", remember("/k007"))
        assert asked["/k007"] == updated.mod_revision == 51
        assert (await store.get("/k007")) == KeyValue("/k007", b"51", kvs[7].create_revision, 51)

    async def test_concurrent_writers_get_distinct_consecutive_revisions(
        self, store: Store
    ) -> None:
        await store.create("/base", text("x"))
        kvs = await asyncio.gather(*(store.create(f"/c/{i}", text(str(i))) for i in range(200)))
        assert sorted(kv.mod_revision for kv in kvs) == list(range(2, 202))
        results = await asyncio.gather(
            *(store.create("/same", text(str(i))) for i in range(20)), return_exceptions=True
        )
        assert sum(isinstance(r, KeyValue) for r in results) == 1
        assert all(isinstance(r, KeyValue | KeyExistsError) for r in results)
        assert store.revision() == 202

    # -- list ------------------------------------------------------------------------

    async def test_list_prefix_in_key_order(self, store: Store) -> None:
        for key in ["/pods/b/2", "/pods/a/1", "/svc/a/1", "/pods/b/1", "/pods/a/2", "/podsx"]:
            await store.create(key, text(key))
        result = await store.list("/pods/")
        assert [kv.key for kv in result.items] == [
            "/pods/a/1",
            "/pods/a/2",
            "/pods/b/1",
            "/pods/b/2",
        ]
        assert (result.revision, result.more) == (6, False)
        assert [kv.key for kv in (await store.list("/pods/b/")).items] == ["/pods/b/1", "/pods/b/2"]
        assert len((await store.list("")).items) == 6
        assert (await store.list("/nothing/")).items == []

    async def test_list_pages_with_limit_and_start_after(self, store: Store) -> None:
        for i in range(25):
            await store.create(f"/p/{i:02}", text(str(i)))
        keys: list[str] = []
        start = ""
        pages = 0
        while True:
            page = await store.list("/p/", start_after=start, limit=10)
            pages += 1
            keys += [kv.key for kv in page.items]
            if not page.more:
                break
            start = page.items[-1].key
        assert pages == 3
        assert keys == [f"/p/{i:02}" for i in range(25)]
        exact = await store.list("/p/", limit=25)
        assert (len(exact.items), exact.more) == (25, False)

    async def test_list_at_past_revision_is_a_consistent_snapshot(self, store: Store) -> None:
        for i in range(30):
            await store.create(f"/p/{i:02}", text(f"v{i}"))
        await store.create("/other", text("o"))
        snapshot = await store.list("/p/")
        at = snapshot.revision
        first = await store.list("/p/", limit=10)
        # The world moves on between pages: deletes, updates, creates on both sides.
        await store.delete("/p/15")
        await store.update("/p/20", text("changed"))
        await store.create("/p/15a", text("new"))
        await store.create("/p/00a", text("new"))
        await store.create("/p/99", text("new"))
        await store.delete("/p/29")
        items = list(first.items)
        start = first.items[-1].key
        while True:
            page = await store.list("/p/", start_after=start, limit=10, revision=at)
            assert page.revision == at
            items += page.items
            if not page.more:
                break
            start = page.items[-1].key
        assert items == snapshot.items
        again = await store.list("/p/", revision=at)
        assert again.items == snapshot.items
        now = await store.list("/p/")
        assert "/p/15" not in [kv.key for kv in now.items]
        assert len(now.items) == 31

    async def test_list_at_revision_sees_values_of_that_revision(self, store: Store) -> None:
        await store.create("/a", text("one"))
        r1 = store.revision()
        await store.update("/a", text("two"))
        await store.delete("/a")
        await store.create("/a", text("three"))
        assert (await store.list("/a", revision=r1)).items == [KeyValue("/a", b"one@1", 1, 1)]
        assert (await store.list("/a", revision=2)).items == [KeyValue("/a", b"two@2", 1, 2)]
        assert (await store.list("/a", revision=3)).items == []
        assert (await store.list("/a", revision=4)).items == [KeyValue("/a", b"three@4", 4, 4)]

    async def test_list_ahead_of_the_store_raises(self, store: Store) -> None:
        await store.create("/a", text("a"))
        with pytest.raises(FutureRevisionError):
            await store.list("", revision=2)

    async def test_list_of_history_outside_the_ring(self, open_store: Opener) -> None:
        store = await open_store(StoreOptions(ring_size=4, compact_interval=0))
        for i in range(20):
            await store.create(f"/p/{i:02}", text(str(i)))
        at = store.revision()
        expected = (await store.list("/p/")).items
        for i in range(0, 20, 2):
            await store.update(f"/p/{i:02}", text("later"))
        assert (await store.list("/p/", revision=at)).items == expected
        assert len((await store.list("/p/", revision=5)).items) == 5

    # -- compaction ------------------------------------------------------------------

    async def test_compaction_keeps_current_values(self, store: Store) -> None:
        for i in range(10):
            await store.create(f"/k/{i}", text(str(i)))
        for i in range(5):
            await store.update(f"/k/{i}", text("new"))
        await store.delete("/k/9")
        before = await store.list("")
        await store.compact(12)
        assert store.compacted_revision() == 12
        assert await store.list("") == before
        assert await store.get("/k/0") == KeyValue("/k/0", b"new@11", 1, 11)
        await store.compact(5)  # going backwards is a no-op
        assert store.compacted_revision() == 12
        with pytest.raises(FutureRevisionError):
            await store.compact(store.revision() + 1)

    async def test_list_and_watch_below_compacted_revision_raise(self, store: Store) -> None:
        for i in range(10):
            await store.create(f"/k/{i}", text(str(i)))
        await store.update("/k/0", text("x"))
        await store.compact(6)
        with pytest.raises(CompactedError) as err:
            await store.list("/k/", revision=5)
        assert (err.value.requested, err.value.compacted) == (5, 6)
        assert len((await store.list("/k/", revision=6)).items) == 6
        with pytest.raises(CompactedError):
            await anext(store.watch("/k/", 5))
        events = await take(store.watch("/k/", 6), 5)
        assert revs(events) == [7, 8, 9, 10, 11]
        assert events[-1].prev == KeyValue("/k/0", b"0@1", 1, 1)

    async def test_automatic_compaction_keeps_recent_revisions(self, open_store: Opener) -> None:
        options = StoreOptions(keep_revisions=20, keep_seconds=0, compact_interval=0.01)
        store = await open_store(options)
        for i in range(100):
            await store.create(f"/k/{i}", text(str(i)))
        deadline = time.monotonic() + 5
        while store.compacted_revision() < 80 and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        assert store.compacted_revision() == 80
        assert len((await store.list("/k/")).items) == 100
        assert len((await store.list("/k/", revision=80)).items) == 80

    async def test_automatic_compaction_waits_for_keep_seconds(self, open_store: Opener) -> None:
        now = [1000.0]
        options = StoreOptions(
            keep_revisions=0, keep_seconds=60, compact_interval=0.01, clock=lambda: now[0]
        )
        store = await open_store(options)
        for i in range(30):
            await store.create(f"/k/{i}", text(str(i)))
        await asyncio.sleep(0.1)
        assert store.compacted_revision() == 0  # all of it is younger than a minute
        now[0] += 61
        deadline = time.monotonic() + 5
        while store.compacted_revision() == 0 and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        assert store.compacted_revision() == 30

    # -- watch -----------------------------------------------------------------------

    async def test_watch_from_now_sees_only_later_writes(self, store: Store) -> None:
        await store.create("/a", text("before"))
        watch = store.watch("", 0)
        await store.create("/b", text("after"))
        await store.update("/a", text("after"))
        events = await take(watch, 2)
        assert brief(events) == [("ADDED", "/b", b"after@2"), ("MODIFIED", "/a", b"after@3")]
        assert events[1].prev == KeyValue("/a", b"before@1", 1, 1)

    async def test_watch_prefix_filters_keys(self, store: Store) -> None:
        watch = store.watch("/pods/a/", 0)
        for key in ["/pods/b/x", "/pods/a/x", "/pods/ab", "/svc/a/x", "/pods/a/y"]:
            await store.create(key, text("v"))
        assert [ev.kv.key for ev in await take(watch, 2)] == ["/pods/a/x", "/pods/a/y"]
        assert await nothing_within(watch)

    async def test_take_ready_drains_what_is_at_hand_in_order(self, open_store: Opener
                                                                ) -> None:
        # After an awaited event, the rest already published come without awaiting, in
        # order and filtered by prefix; what needs history (a tiny ring, fallen behind)
        # or a wait is left to `anext`, which goes on with no gap and no duplicate.
        store = await open_store(StoreOptions(ring_size=8, compact_interval=0))
        watch = store.watch("/p/", 0)
        take_ready = watch.take_ready
        assert take_ready(10) == []  # the start is checked by the first anext
        for i in range(6):
            await store.create(f"/p/{i}", text(str(i)))
            await store.create(f"/q/{i}", text(str(i)))
        first = await take(watch, 1)
        ready = take_ready(3) + take_ready(10)
        assert [ev.kv.key for ev in first + ready] == [f"/p/{i}" for i in range(6)]
        assert take_ready(10) == []
        for i in range(20):  # more than the ring holds: the watcher falls behind it
            await store.update(f"/p/{i % 6}", text(f"x{i}"))
        late = [*await take(watch, 1)]
        while len(late) < 20:
            late += take_ready(20 - len(late)) or await take(watch, 1)
        assert revs(late) == list(range(13, 33))
        assert [ev.kv.value for ev in late] == [f"x{i}@{13 + i}".encode() for i in range(20)]

    async def test_deleted_event_carries_last_value_and_prev(self, store: Store) -> None:
        watch = store.watch("/a", 0)
        await store.create("/a", text("one"))
        await store.update("/a", text("two"))
        await store.delete("/a")
        added, modified, deleted = await take(watch, 3)
        assert (added.type, added.prev) == ("ADDED", None)
        assert modified.prev == added.kv
        assert deleted.type == "DELETED"
        assert deleted.kv == KeyValue("/a", b"two@2", 1, 3)
        assert deleted.prev == KeyValue("/a", b"two@2", 1, 2)

    async def test_watch_from_past_revision_replays_then_goes_live(
        self, open_store: Opener
    ) -> None:
        # A tiny ring: the replay must come from history, then join the ring.
        store = await open_store(StoreOptions(ring_size=8, compact_interval=0))
        await store.create("/a", text("one"))
        await store.update("/a", text("two"))
        await store.delete("/a")
        for i in range(40):
            await store.create(f"/k/{i:02}", text(str(i)))
        watch = store.watch("", 1)
        replay = await take(watch, 42)
        assert revs(replay) == list(range(2, 44))
        assert replay[0].prev == KeyValue("/a", b"one@1", 1, 1)
        assert replay[1].kv == KeyValue("/a", b"two@2", 1, 3)
        assert replay[1].prev == KeyValue("/a", b"two@2", 1, 2)
        await store.update("/k/00", text("live"))
        live = await take(watch, 1)
        assert brief(live) == [("MODIFIED", "/k/00", b"live@44")]
        assert await nothing_within(watch)

    async def test_replay_during_writes_has_no_gap_and_no_duplicate(
        self, open_store: Opener
    ) -> None:
        store = await open_store(StoreOptions(ring_size=16, compact_interval=0))
        for i in range(300):
            await store.create(f"/k/{i:03}", text(str(i)))

        async def writer() -> None:
            for i in range(300):
                await store.update(f"/k/{i:03}", text("again"))
                if i % 7 == 0:
                    await asyncio.sleep(0)

        task = asyncio.create_task(writer())
        watch = store.watch("/k/", 10)
        events = await take(watch, 590, timeout=20)
        await task
        assert revs(events) == list(range(11, 601))

    async def test_watch_from_future_revision_waits_for_it(self, store: Store) -> None:
        watch = store.watch("", 3)
        for key in "abcde":
            await store.create(f"/{key}", text(key))
        assert revs(await take(watch, 2)) == [4, 5]

    async def test_many_concurrent_watchers_all_get_each_event(self, store: Store) -> None:
        n = 1000
        watches = [store.watch("/w/" if i % 2 else "", 0) for i in range(n)]
        received: list[float] = []

        async def consume(watch: AsyncIterator[Event]) -> Event:
            ev = await anext(watch)
            received.append(time.perf_counter())
            return ev

        tasks = [asyncio.create_task(consume(w)) for w in watches]
        await asyncio.sleep(0.05)  # every consumer parked
        t0 = time.perf_counter()
        await store.create("/w/x", text("x"))
        events = await asyncio.wait_for(asyncio.gather(*tasks), 10)
        spread_ms = (max(received) - t0) * 1000
        assert {ev.kv.mod_revision for ev in events} == {1}
        print(f"{n} watchers: last one got the event {spread_ms:.1f} ms after the write")
        assert spread_ms < 1000  # generous: the box is shared; typically a few ms

    async def test_slow_watcher_does_not_block_writers_or_others(self, open_store: Opener) -> None:
        store = await open_store(StoreOptions(ring_size=32, compact_interval=0))
        slow = store.watch("", 0)  # never read until the end
        fast = store.watch("", 0)
        started = time.perf_counter()
        results = await asyncio.wait_for(
            asyncio.gather(*(store.create(f"/k/{i:03}", text(str(i))) for i in range(500))), 10
        )
        assert len(results) == 500
        fast_events = await take(fast, 500)
        assert revs(fast_events) == list(range(1, 501))
        assert time.perf_counter() - started < 10
        slow_events = await take(slow, 500)  # caught up from history, in order
        assert revs(slow_events) == list(range(1, 501))

    async def test_watcher_behind_compacted_history_gets_compacted_error(
        self, open_store: Opener
    ) -> None:
        store = await open_store(StoreOptions(ring_size=4, compact_interval=0))
        lagging = store.watch("", 0)
        for i in range(20):
            await store.create(f"/k/{i:02}", text(str(i)))
        await store.compact(10)
        with pytest.raises(CompactedError):  # the client must re-list, as on a 410
            await anext(lagging)
        with pytest.raises(StopAsyncIteration):
            await anext(lagging)

    async def test_close_ends_watchers(self, open_store: Opener) -> None:
        store = await open_store()
        watch = store.watch("", 0)

        async def drain() -> list[Event]:
            return [ev async for ev in watch]

        task = asyncio.create_task(drain())
        await store.create("/a", text("a"))
        await asyncio.sleep(0.01)
        await store.close()
        events = await asyncio.wait_for(task, 5)
        assert brief(events) == [("ADDED", "/a", b"a@1")]
        with pytest.raises(StopAsyncIteration):
            await anext(store.watch("", 0))
        with pytest.raises(StoreClosedError):
            await store.create("/b", text("b"))

    async def test_aclose_stops_one_watch(self, store: Store) -> None:
        keep = store.watch("", 0)
        stop = store.watch("", 0)
        aclose = getattr(stop, "aclose", None)
        assert aclose is not None, "watch iterators must offer aclose()"
        await aclose()
        await store.create("/a", text("a"))
        with pytest.raises(StopAsyncIteration):
            await anext(stop)
        assert len(await take(keep, 1)) == 1
