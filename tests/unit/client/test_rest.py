"""ApiClient against the fake API: paths, verbs, paging, watch lines, Status errors."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from podnet.api.errors import StatusError
from podnet.api.resources import Registry
from podnet.client.rest import ApiClient, WatchEvent, resource_path

from .fakeapi import PODS, FakeApi, pod

REG = Registry.builtin()
PODS_RT = REG.get("", "v1", "pods")
DEPLOY_RT = REG.get("apps", "v1", "deployments")
NS_RT = REG.get("", "v1", "namespaces")
assert PODS_RT and DEPLOY_RT and NS_RT


@pytest.fixture
async def api() -> AsyncIterator[FakeApi]:
    fake = FakeApi()
    await fake.start()
    yield fake
    await fake.close()


@pytest.fixture
async def client(api: FakeApi) -> AsyncIterator[ApiClient]:
    async with ApiClient(api.url, None, "s3cret") as c:
        yield c


@pytest.mark.parametrize(
    ("rt", "ns", "name", "sub", "path"),
    [
        (PODS_RT, "default", None, None, "/api/v1/namespaces/default/pods"),
        (PODS_RT, None, None, None, "/api/v1/pods"),
        (PODS_RT, "ns1", "web", "status", "/api/v1/namespaces/ns1/pods/web/status"),
        (DEPLOY_RT, "ns1", "web", None, "/apis/apps/v1/namespaces/ns1/deployments/web"),
        (NS_RT, "ignored", "ns1", "finalize", "/api/v1/namespaces/ns1/finalize"),
    ],
)
def test_resource_path(rt, ns, name, sub, path) -> None:  # type: ignore[no-untyped-def]
    assert resource_path(rt, ns, name, sub) == path


async def test_crud_round_trip(api: FakeApi, client: ApiClient) -> None:
    created = await client.create(PODS_RT, pod("a", 0))
    assert created["metadata"]["resourceVersion"] == "11"
    got = await client.get(PODS_RT, "a", "default")
    assert got["metadata"]["name"] == "a"
    got["metadata"]["labels"] = {"x": "y"}
    updated = await client.update(PODS_RT, got)
    assert updated["metadata"]["resourceVersion"] == "12"
    await client.patch(PODS_RT, "a", {"spec": {}}, "default", patch_type="strategic")
    method, path, _, body = api.requests[-1]
    assert (method, path, body) == ("PATCH", PODS + "/a", {"spec": {}})
    await client.delete(PODS_RT, "a", "default", propagation_policy="Foreground",
                        preconditions={"uid": "uid-a"}, grace_period=0)
    assert api.requests[-1][3] == {
        "kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Foreground",
        "gracePeriodSeconds": 0, "preconditions": {"uid": "uid-a"},
    }


async def test_stale_update_is_conflict(api: FakeApi, client: ApiClient) -> None:
    api.pods["a"] = pod("a", 5)
    with pytest.raises(StatusError) as err:
        await client.update(PODS_RT, pod("a", 4))
    assert (err.value.code, err.value.reason, err.value.name) == (409, "Conflict", "a")


async def test_not_found_status_is_rebuilt(client: ApiClient) -> None:
    with pytest.raises(StatusError) as err:
        await client.get(PODS_RT, "missing", "default")
    e = err.value
    assert (e.code, e.reason, e.message, e.name) == (404, "NotFound", 'pods "missing" not found',
                                                     "missing")


async def test_invalid_keeps_causes(client: ApiClient) -> None:
    with pytest.raises(StatusError) as err:
        await client.get(PODS_RT, "bad", "default")
    assert err.value.code == 422
    assert [(c.reason, c.field) for c in err.value.causes] == [("FieldValueRequired", "spec")]
    assert err.value.to_status()["details"]["causes"][0]["field"] == "spec"


async def test_non_status_error_body_gets_reason_from_code(client: ApiClient) -> None:
    with pytest.raises(StatusError) as err:
        await client.get_path("/boom")
    assert (err.value.code, err.value.reason, err.value.message) == (502, "Unknown", "bad gateway")


async def test_bearer_token_sent(api: FakeApi, client: ApiClient) -> None:
    api.pods["a"] = pod("a", 1)
    await client.get(PODS_RT, "a", "default")
    assert api.auth[-1] == "Bearer s3cret"


async def test_list_pages_and_adds_kind(api: FakeApi, client: ApiClient) -> None:
    for i in range(5):
        api.pods[f"p{i}"] = pod(f"p{i}", i + 1)
    items, rv, cont = await client.list(PODS_RT, "default", limit=2, label_selector="app=x")
    assert [i["metadata"]["name"] for i in items] == ["p0", "p1"]
    assert (rv, cont) == ("10", "2")
    assert items[0]["kind"] == "Pod" and items[0]["apiVersion"] == "v1"
    assert api.requests[-1][2] == {"limit": "2", "labelSelector": "app=x"}
    everything = await client.list_all(PODS_RT, "default", page_size=2)
    assert [i["metadata"]["name"] for i in everything.items] == [f"p{i}" for i in range(5)]


async def test_watch_streams_events_and_bookmarks(api: FakeApi, client: ApiClient) -> None:
    api.script_watch(
        {"type": "ADDED", "object": pod("a", 11)},
        {"type": "BOOKMARK", "object": {"kind": "Pod", "metadata": {"resourceVersion": "15"}}},
        {"type": "DELETED", "object": pod("a", 16)},
    )
    events = [e async for e in client.watch(PODS_RT, "default", resource_version="10")]
    assert [(e.type, e.object["metadata"]["resourceVersion"]) for e in events] == [
        ("ADDED", "11"), ("BOOKMARK", "15"), ("DELETED", "16"),
    ]
    assert isinstance(events[0], WatchEvent)
    params = api.requests[-1][2]
    assert params["watch"] == "true" and params["allowWatchBookmarks"] == "true"
    assert params["resourceVersion"] == "10"


async def test_watch_splits_a_chunk_of_many_events(api: FakeApi, client: ApiClient) -> None:
    api.one_write = True
    api.script_watch(*({"type": "MODIFIED", "object": pod("a", 11 + i)} for i in range(50)))
    events = [e async for e in client.watch(PODS_RT, "default", resource_version="10")]
    assert [e.object["metadata"]["resourceVersion"] for e in events] == [
        str(11 + i) for i in range(50)]


async def test_watch_error_event_raises_expired(api: FakeApi, client: ApiClient) -> None:
    api.compacted_below = 100
    with pytest.raises(StatusError) as err:
        async for _ in client.watch(PODS_RT, "default", resource_version="10"):
            pass
    assert (err.value.code, err.value.reason) == (410, "Expired")


def test_from_kubeconfig(tmp_path) -> None:  # type: ignore[no-untyped-def]
    kc = tmp_path / "config"
    (tmp_path / "tok").write_text("file-token\n")
    kc.write_text(
        """
apiVersion: v1
kind: Config
current-context: one
contexts:
- name: one
  context: {cluster: c1, user: u1}
- name: two
  context: {cluster: c2, user: u2}
clusters:
- name: c1
  cluster: {server: "https://127.0.0.1:6443", insecure-skip-tls-verify: true}
- name: c2
  cluster: {server: "http://127.0.0.1:8080/"}
users:
- name: u1
  user: {token: abc}
- name: u2
  user: {tokenFile: tok}
"""
    )
    one = ApiClient.from_kubeconfig(kc)
    assert (one.base_url, one.token) == ("https://127.0.0.1:6443", "abc")
    assert one.ssl_context is not None and not one.ssl_context.check_hostname
    two = ApiClient.from_kubeconfig(kc, context="two")
    assert (two.base_url, two.token, two.ssl_context) == ("http://127.0.0.1:8080", "file-token",
                                                          None)
    with pytest.raises(ValueError, match="no context named 'nope'"):
        ApiClient.from_kubeconfig(kc, context="nope")


async def test_warm_opens_connections_that_a_burst_then_reuses() -> None:
    from aiohttp import web

    transports: list[object] = []

    async def version(request: web.Request) -> web.Response:
        transports.append(request.transport)
        await asyncio.sleep(0.05)  # overlapping requests each need a connection
        return web.json_response({"major": "1", "minor": "32"})

    app = web.Application()
    app.router.add_get("/version", version)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        async with ApiClient(f"http://127.0.0.1:{port}", None, None) as c:
            await c.warm(4)
            opened = {id(t) for t in transports}
            assert len(opened) == 4
            await asyncio.gather(*(c.request("GET", "/version") for _ in range(4)))
            assert {id(t) for t in transports[4:]} == opened  # no new connection
    finally:
        await runner.cleanup()
