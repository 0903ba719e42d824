"""Informer against the fake API: list, watch, resume, bookmarks, 410 re-list, backoff."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from podnet.api.resources import Registry
from podnet.client.informer import Cache, Informer, by_label, by_owner_uid, object_key, split_key
from podnet.client.rest import ApiClient

from .fakeapi import FakeApi, pod

PODS_RT = Registry.builtin().get("", "v1", "pods")
assert PODS_RT


@pytest.fixture
async def api() -> AsyncIterator[FakeApi]:
    fake = FakeApi()
    await fake.start()
    yield fake
    await fake.close()


@pytest.fixture
async def client(api: FakeApi) -> AsyncIterator[ApiClient]:
    async with ApiClient(api.url) as c:
        yield c


class Recorder:
    def __init__(self, inf: Informer) -> None:
        self.log: list[str] = []
        inf.on_add(lambda o: self.log.append(f"add {o['metadata']['name']}"))
        inf.on_update(lambda old, new: self.log.append(
            f"update {new['metadata']['name']} {old['metadata']['resourceVersion']}"
            f"->{new['metadata']['resourceVersion']}"))
        inf.on_delete(lambda o: self.log.append(f"delete {o['metadata']['name']}"))


def watch_params(api: FakeApi) -> list[str]:
    """The resourceVersion of every watch request, in order."""
    return [p.get("resourceVersion", "") for m, _, p, _ in api.requests if p.get("watch")]


async def wait_for(cond, timeout: float = 2.0) -> None:  # type: ignore[no-untyped-def]
    for _ in range(int(timeout / 0.01)):
        if cond():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not met")


async def test_list_then_watch_then_resume_from_bookmark(api: FakeApi, client: ApiClient) -> None:
    api.pods = {"a": pod("a", 3), "b": pod("b", 4)}
    api.script_watch(
        {"type": "ADDED", "object": pod("c", 11)},
        {"type": "MODIFIED", "object": pod("a", 12)},
        {"type": "BOOKMARK", "object": {"kind": "Pod", "metadata": {"resourceVersion": "20"}}},
    )
    api.script_watch({"type": "DELETED", "object": pod("b", 21)})
    inf = Informer(client, PODS_RT, "default")
    rec = Recorder(inf)
    task = asyncio.create_task(inf.run())
    try:
        await asyncio.wait_for(inf.wait_synced(), 2)
        await wait_for(lambda: len(watch_params(api)) >= 3)
        assert rec.log == ["add a", "add b", "add c", "update a 3->12", "delete b"]
        # list at 10, first watch from 10, resumed from the bookmark (20), then from 21
        assert watch_params(api)[:3] == ["10", "20", "21"]
        assert sorted(inf.cache.keys()) == ["default/a", "default/c"]
        assert inf.lists == 1
    finally:
        task.cancel()
        api.streams.put_nowait(None)


@pytest.mark.parametrize("as_event", [True, False])
async def test_expired_watch_relists_and_reports_missed_deletes(
    api: FakeApi, client: ApiClient, as_event: bool
) -> None:
    api.expired_as_event = as_event
    api.pods = {"a": pod("a", 3), "b": pod("b", 4)}
    inf = Informer(client, PODS_RT, "default")
    rec = Recorder(inf)
    task = asyncio.create_task(inf.run())
    try:
        await asyncio.wait_for(inf.wait_synced(), 2)
        await wait_for(lambda: len(watch_params(api)) >= 1)
        # Meanwhile: b deleted, a changed, d created, and history compacted past 10.
        del api.pods["b"]
        api.pods["a"] = pod("a", 30)
        api.pods["d"] = pod("d", 31)
        api.rv = 40
        api.compacted_below = 35
        api.script_watch()  # the pending watch ends with nothing; the next one is too old
        await wait_for(lambda: inf.lists == 2)
        await wait_for(lambda: inf.resource_version == "40")
        assert rec.log == ["add a", "add b", "delete b", "update a 3->30", "add d"]
        assert sorted(inf.cache.keys()) == ["default/a", "default/d"]
    finally:
        task.cancel()
        api.streams.put_nowait(None)


async def test_errors_back_off_with_injected_sleep(api: FakeApi, client: ApiClient) -> None:
    delays: list[float] = []

    async def fake_sleep(d: float) -> None:
        delays.append(d)
        await asyncio.sleep(0)

    api.watch_failures = 4
    api.script_watch({"type": "ADDED", "object": pod("z", 11)})
    inf = Informer(client, PODS_RT, "default", sleep=fake_sleep, backoff_base=0.5)
    task = asyncio.create_task(inf.run())
    try:
        await wait_for(lambda: "default/z" in inf.cache)
        assert delays == [0.5, 1.0, 2.0, 4.0]
        assert inf.lists == 1  # errors after a list resume the watch, no re-list
    finally:
        task.cancel()
        api.streams.put_nowait(None)


def test_cache_indexes_follow_changes() -> None:
    cache = Cache({"app": by_label("app"), "owner": by_owner_uid})
    p = pod("a", 1, app="web")
    p["metadata"]["ownerReferences"] = [{"uid": "rs1", "controller": True}]
    cache.upsert(p)
    cache.upsert(pod("b", 1, app="web"))
    assert [o["metadata"]["name"] for o in cache.by_index("app", "web")] == ["a", "b"]
    assert cache.index_keys("owner", "rs1") == ["default/a"]
    cache.upsert(pod("a", 2, app="db"))
    assert cache.index_keys("app", "web") == ["default/b"]
    assert cache.index_keys("app", "db") == ["default/a"]
    assert cache.index_keys("owner", "rs1") == []
    cache.remove("default/b")
    assert cache.index_keys("app", "web") == []
    cache.add_index("namespace", lambda o: [o["metadata"]["namespace"]])
    assert cache.index_keys("namespace", "default") == ["default/a"]
    assert cache.get_by("default", "a") is cache.get("default/a")


@pytest.mark.parametrize(
    ("obj", "key", "split"),
    [
        ({"metadata": {"namespace": "ns", "name": "x"}}, "ns/x", ("ns", "x")),
        ({"metadata": {"name": "node1"}}, "node1", (None, "node1")),
    ],
)
def test_object_key(obj, key, split) -> None:  # type: ignore[no-untyped-def]
    assert object_key(obj) == key
    assert split_key(key) == split


async def test_watches_that_end_at_once_back_off(api: FakeApi, client: ApiClient) -> None:
    delays: list[float] = []

    async def fake_sleep(d: float) -> None:
        delays.append(d)
        await asyncio.sleep(0)

    for _ in range(3):
        api.script_watch()
    api.script_watch({"type": "ADDED", "object": pod("z", 11)})
    inf = Informer(client, PODS_RT, "default", sleep=fake_sleep, backoff_base=0.5)
    task = asyncio.create_task(inf.run())
    try:
        await wait_for(lambda: "default/z" in inf.cache)
        assert delays == [0.5, 1.0]
    finally:
        task.cancel()
        api.streams.put_nowait(None)
