"""Watch over HTTP: event order from a resourceVersion, synthetic ADDED from "0",
selectors (objects moving in and out), bookmarks and 410 Gone after compaction."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from podnet.testing.apiserver import InProcessApi, running_api
from tests.unit.apiserver.support import (
    CONFIGMAPS,
    TABLE,
    configmap,
    created,
    list_rv,
    watch_events,
)


@pytest.fixture
async def api() -> AsyncIterator[InProcessApi]:
    async with running_api() as a:
        yield a


def summary(events: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(e["type"], e["object"]["metadata"].get("name", "")) for e in events
            if e["type"] != "BOOKMARK"]


async def test_watch_from_resource_version_sees_changes_in_order(api: InProcessApi) -> None:
    await created(api, CONFIGMAPS, configmap("before"))
    rv = await list_rv(api, CONFIGMAPS)

    async def writes() -> None:
        await asyncio.sleep(0.1)
        obj = await created(api, CONFIGMAPS, configmap("x", a="1"))
        obj["data"] = {"a": "2"}
        await api.put(f"{CONFIGMAPS}/x", obj)
        await api.delete(f"{CONFIGMAPS}/x")

    task = asyncio.create_task(writes())
    code, events = await watch_events(api, CONFIGMAPS, f"resourceVersion={rv}", count=3)
    await task
    assert code == 200
    assert summary(events) == [("ADDED", "x"), ("MODIFIED", "x"), ("DELETED", "x")]
    rvs = [int(e["object"]["metadata"]["resourceVersion"]) for e in events]
    assert rvs == sorted(rvs) and rvs[0] > int(rv)
    assert events[1]["object"]["data"] == {"a": "2"}
    assert all(e["object"]["kind"] == "ConfigMap" for e in events)


async def test_watch_replays_history_after_resource_version(api: InProcessApi) -> None:
    rv = await list_rv(api, CONFIGMAPS)
    await created(api, CONFIGMAPS, configmap("a"))
    await created(api, CONFIGMAPS, configmap("b"))
    await api.delete(f"{CONFIGMAPS}/a")
    _, events = await watch_events(api, CONFIGMAPS, f"resourceVersion={rv}", count=3)
    assert summary(events) == [("ADDED", "a"), ("ADDED", "b"), ("DELETED", "a")]


async def test_watch_from_zero_sends_synthetic_added(api: InProcessApi) -> None:
    await created(api, CONFIGMAPS, configmap("a"))
    await created(api, CONFIGMAPS, configmap("b"))
    code, events = await watch_events(api, CONFIGMAPS, "resourceVersion=0", count=2)
    assert code == 200
    assert sorted(summary(events)) == [("ADDED", "a"), ("ADDED", "b")]


async def test_watch_with_field_selector(api: InProcessApi) -> None:
    rv = await list_rv(api, CONFIGMAPS)
    await created(api, CONFIGMAPS, configmap("x"))
    await created(api, CONFIGMAPS, configmap("y"))
    await api.patch(f"{CONFIGMAPS}/y", {"data": {"k": "v"}})
    await api.patch(f"{CONFIGMAPS}/x", {"data": {"k": "v"}})
    await api.delete(f"{CONFIGMAPS}/y")
    await api.delete(f"{CONFIGMAPS}/x")
    _, events = await watch_events(
        api, CONFIGMAPS, f"resourceVersion={rv}"
                         "&fieldSelector=metadata.name%3Dx", count=3)
    assert summary(events) == [("ADDED", "x"), ("MODIFIED", "x"), ("DELETED", "x")]


async def test_watch_label_selector_moves_in_and_out(api: InProcessApi) -> None:
    rv = await list_rv(api, CONFIGMAPS)
    await created(api, CONFIGMAPS, configmap("x", {"app": "other"}))
    await api.patch(f"{CONFIGMAPS}/x", {"metadata": {"labels": {"app": "web"}}})
    await api.patch(f"{CONFIGMAPS}/x", {"data": {"k": "v"}})
    await api.patch(f"{CONFIGMAPS}/x", {"metadata": {"labels": {"app": "gone"}}})
    _, events = await watch_events(
        api, CONFIGMAPS, f"resourceVersion={rv}&labelSelector=app%3Dweb", count=3)
    assert summary(events) == [("ADDED", "x"), ("MODIFIED", "x"), ("DELETED", "x")]
    # The DELETED for an object leaving the selector carries its new state.
    assert events[-1]["object"]["metadata"]["labels"] == {"app": "gone"}


async def test_a_burst_reaches_a_selector_watch_in_order_once(api: InProcessApi) -> None:
    # Written concurrently while the watch is open: a stream drains the events at hand
    # after each one it waited for; none is lost, repeated or reordered, and the
    # selector still decides what is sent.
    rv = await list_rv(api, CONFIGMAPS)

    async def burst() -> None:
        await asyncio.sleep(0.1)
        await asyncio.gather(*(created(api, CONFIGMAPS, configmap(
            f"c{i:03}", {"app": "web" if i % 3 else "other"})) for i in range(120)))

    task = asyncio.create_task(burst())
    code, events = await watch_events(
        api, CONFIGMAPS, f"resourceVersion={rv}&labelSelector=app%3Dweb", count=80)
    await task
    assert code == 200
    names = [name for _, name in summary(events)]
    assert sorted(names) == [f"c{i:03}" for i in range(120) if i % 3]
    rvs = [int(e["object"]["metadata"]["resourceVersion"]) for e in events]
    assert rvs == sorted(set(rvs))


async def test_watch_single_object_by_name(api: InProcessApi) -> None:
    rv = await list_rv(api, CONFIGMAPS)
    await created(api, CONFIGMAPS, configmap("x"))
    await created(api, CONFIGMAPS, configmap("y"))
    _, events = await watch_events(
        api, CONFIGMAPS, f"resourceVersion={rv}&fieldSelector="
                         "metadata.name%3Dy", count=1)
    assert summary(events) == [("ADDED", "y")]


async def test_watch_bookmarks(api: InProcessApi, monkeypatch: pytest.MonkeyPatch) -> None:
    from podnet.apiserver import watchstream

    monkeypatch.setattr(watchstream, "BOOKMARK_IDLE_SECONDS", 0.2)
    await created(api, CONFIGMAPS, configmap("x"))
    rv = await list_rv(api, CONFIGMAPS)
    code, events = await watch_events(
        api, CONFIGMAPS, f"resourceVersion={rv}&allowWatchBookmarks=true&timeoutSeconds=1", count=1)
    assert code == 200
    marks = [e for e in events if e["type"] == "BOOKMARK"]
    assert marks, events
    obj = marks[0]["object"]
    assert obj["kind"] == "ConfigMap" and obj["apiVersion"] == "v1"
    assert int(obj["metadata"]["resourceVersion"]) >= int(rv)
    assert set(obj) <= {"kind", "apiVersion", "metadata"}


async def test_watch_without_bookmarks_sends_none(api: InProcessApi,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from podnet.apiserver import watchstream

    monkeypatch.setattr(watchstream, "BOOKMARK_IDLE_SECONDS", 0.2)
    rv = await list_rv(api, CONFIGMAPS)
    _, events = await watch_events(api, CONFIGMAPS, f"resourceVersion={rv}")
    assert events == []


async def test_watch_compacted_revision_is_gone(api: InProcessApi) -> None:
    old = await list_rv(api, CONFIGMAPS)
    for n in "abc":
        await created(api, CONFIGMAPS, configmap(n))
    now = int(await list_rv(api, CONFIGMAPS))
    await api.server.store.compact(now)
    code, events = await watch_events(api, CONFIGMAPS,
                                      f"resourceVersion={old}")
    # Kubernetes answers 200 and sends one ERROR event with the 410 Status.
    if code == 200:
        assert len(events) == 1 and events[0]["type"] == "ERROR", events
        status = events[0]["object"]
    else:
        assert code == 410
        status = events[0]
    assert status["kind"] == "Status"
    assert status["code"] == 410
    assert status["reason"] == "Expired"
    assert status["message"].startswith(f"too old resource version: {old} (")


async def test_watch_table(api: InProcessApi) -> None:
    rv = await list_rv(api, CONFIGMAPS)
    await created(api, CONFIGMAPS, configmap("x"))
    await created(api, CONFIGMAPS, configmap("y"))
    _, events = await watch_events(api, CONFIGMAPS, f"resourceVersion={rv}", count=2,
                                      headers={"Accept": TABLE})
    assert [e["type"] for e in events] == ["ADDED", "ADDED"]
    first, second = (e["object"] for e in events)
    assert first["kind"] == "Table" and first["columnDefinitions"]
    assert first["rows"][0]["cells"][0] == "x"
    assert first["rows"][0]["object"]["kind"] == "PartialObjectMetadata"
    assert second["rows"][0]["cells"][0] == "y"


async def test_watch_bad_resource_version(api: InProcessApi) -> None:
    code, events = await watch_events(api, CONFIGMAPS, "resourceVersion=abc")
    status = events[0]["object"] if code == 200 else events[0]
    assert status["code"] == 400 and status["reason"] == "BadRequest"
    assert status["message"] == 'invalid resource version "abc"' or \
        "resource version" in status["message"]
