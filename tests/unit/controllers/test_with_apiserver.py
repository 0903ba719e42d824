"""The controller manager against podnet's in-process API server: real lists, watches,
generateName, status subresources, finalize and deletion — what a user would see."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from podnet.client.rest import ApiClient
from podnet.controllers.base import (
    DEPLOYMENTS,
    ENDPOINTS,
    ENDPOINTSLICES,
    NAMESPACES,
    NODES,
    PODS,
    REPLICASETS,
    SERVICES,
)
from podnet.controllers.events import EVENTS
from podnet.controllers.manager import ControllerManager
from podnet.controllers.scheduler import SchedulerController
from podnet.testing.apiserver import ADMIN_TOKEN, running_api


@pytest.fixture
async def client() -> AsyncIterator[ApiClient]:
    async with running_api() as api:
        c = ApiClient(api.base, None, ADMIN_TOKEN)
        mgr = ControllerManager(c, apiserver_address=("192.168.50.1", 6443))
        stop = asyncio.Event()
        run = asyncio.create_task(mgr.run(stop))
        try:
            yield c
        finally:
            stop.set()
            await asyncio.wait_for(run, 5)
            await c.close()


async def eventually(check: Callable[[], Awaitable[Any]], timeout: float = 5.0) -> Any:
    """Poll until `check` returns something truthy (controllers are asynchronous)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        result = await check()
        if result or loop.time() > deadline:
            assert result, "condition not reached"
            return result
        await asyncio.sleep(0.02)


async def test_deployment_service_and_cleanup(client: ApiClient) -> None:
    await client.create(DEPLOYMENTS, {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}},
                              "spec": {"containers": [{"name": "c", "image": "agnhost"}]}}},
    })
    await client.create(SERVICES, {
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": "default"},
        "spec": {"selector": {"app": "web"}, "ports": [{"name": "http", "port": 80,
                                                        "targetPort": 9376}]},
    })

    async def pods() -> list[dict[str, Any]]:
        return (await client.list(PODS, "default", label_selector="app=web")).items

    created = await eventually(lambda: _n(pods(), 2))
    # Play kubelet: give the pods IPs and make them Ready.
    for i, pod in enumerate(created):
        pod["status"] = {"phase": "Running", "podIP": f"10.244.0.{i + 5}",
                         "podIPs": [{"ip": f"10.244.0.{i + 5}"}],
                         "conditions": [{"type": "Ready", "status": "True",
                                         "lastTransitionTime": "2024-01-01T00:00:00Z"}]}
        await client.patch(PODS, pod["metadata"]["name"], {"status": pod["status"]},
                           "default", patch_type="strategic", subresource="status")

    async def available() -> bool:
        d = await client.get(DEPLOYMENTS, "web", "default")
        return bool((d.get("status") or {}).get("availableReplicas") == 2)

    await eventually(available)

    async def slice_ips() -> list[str]:
        slices = (await client.list(ENDPOINTSLICES, "default",
                                    label_selector="kubernetes.io/service-name=web")).items
        return sorted(a for s in slices for e in s["endpoints"] for a in e["addresses"]
                      if e["conditions"]["ready"])

    assert await eventually(slice_ips) == ["10.244.0.5", "10.244.0.6"]
    ep = await client.get(ENDPOINTS, "web", "default")
    assert sorted(a["ip"] for a in ep["subsets"][0]["addresses"]) == ["10.244.0.5", "10.244.0.6"]

    # Deleting the Deployment: the garbage collector takes its ReplicaSet and pods.
    await client.delete(DEPLOYMENTS, "web", "default", propagation_policy="Background")

    async def all_gone() -> bool:
        rss = (await client.list(REPLICASETS, "default")).items
        return not rss and not await pods()

    await eventually(all_gone)


async def test_kubernetes_service_and_namespace_lifecycle(client: ApiClient) -> None:
    async def kube_slice() -> dict[str, Any] | None:
        try:
            return await client.get(ENDPOINTSLICES, "kubernetes", "default")
        except Exception:
            return None

    es = await eventually(kube_slice)
    assert es["endpoints"][0]["addresses"] == ["192.168.50.1"]

    await client.create(NAMESPACES, {"apiVersion": "v1", "kind": "Namespace",
                                     "metadata": {"name": "team"}})
    await client.create(SERVICES, {"apiVersion": "v1", "kind": "Service",
                                   "metadata": {"name": "x", "namespace": "team"},
                                   "spec": {"ports": [{"port": 80}]}})
    await client.delete(NAMESPACES, "team")

    async def ns_gone() -> bool:
        names = [n["metadata"]["name"] for n in (await client.list(NAMESPACES)).items]
        return "team" not in names

    await eventually(ns_gone)


async def _n(items: Awaitable[list[dict[str, Any]]], n: int) -> list[dict[str, Any]] | None:
    got = await items
    return got if len(got) == n else None


async def test_scheduler_binds_pending_pods_and_explains_when_it_cannot(
        client: ApiClient) -> None:
    def pod(name: str) -> dict[str, Any]:
        return {"apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": name, "namespace": "default"},
                "spec": {"containers": [{"name": "c", "image": "agnhost"}]}}

    await client.create(PODS, pod("early"))

    async def unschedulable() -> Any:
        p = await client.get(PODS, "early", "default")
        conds = {c["type"]: c for c in (p.get("status") or {}).get("conditions") or []}
        return conds.get("PodScheduled", {}).get("reason") == "Unschedulable" and conds

    conds = await eventually(unschedulable)
    assert conds["PodScheduled"]["message"] == "no nodes available to schedule pods"
    events = (await client.list(EVENTS, "default")).items
    assert any(e["reason"] == "FailedScheduling" and e["involvedObject"]["name"] == "early"
               for e in events)

    for i in range(20):
        await client.create(PODS, pod(f"burst-{i}"))
    node = await client.create(NODES, {"apiVersion": "v1", "kind": "Node",
                                       "metadata": {"name": "node-0"}})
    # Not Ready yet: tainted not-ready, so still nowhere to go. Ready: all are bound.
    node["status"] = {"allocatable": {"pods": "110"},
                      "conditions": [{"type": "Ready", "status": "True"}]}
    await client.update_status(NODES, node)

    async def all_bound() -> bool:
        pods = (await client.list(PODS, "default")).items
        return len(pods) == 21 and all(p["spec"].get("nodeName") == "node-0" for p in pods)

    await eventually(all_bound)
    p = await client.get(PODS, "early", "default")
    scheduled = [c for c in p["status"]["conditions"] if c["type"] == "PodScheduled"]
    assert [c["status"] for c in scheduled] == ["True"]

    async def assigned() -> bool:
        events = (await client.list(EVENTS, "default")).items
        return any(e["reason"] == "Scheduled" and e["message"] ==
                   "Successfully assigned default/burst-3 to node-0" for e in events)

    await eventually(assigned)


async def _ready_node(client: ApiClient, name: str, pods: int) -> None:
    """A Node that is Ready and has room for `pods` pods."""
    node = await client.create(NODES, {"apiVersion": "v1", "kind": "Node",
                                       "metadata": {"name": name}})
    node["status"] = {"allocatable": {"pods": str(pods)},
                      "conditions": [{"type": "Ready", "status": "True"}]}
    await client.update_status(NODES, node)


class _GatedBindings(ApiClient):
    """Holds every binding POST until `gate` is set: bindings stay in flight."""

    gate: asyncio.Event

    async def request(self, method: str, path: str, *args: Any, **kwargs: Any) -> Any:
        if method == "POST" and path.endswith("/binding"):
            await self.gate.wait()
        return await super().request(method, path, *args, **kwargs)


async def test_scheduler_counts_pods_whose_bindings_are_in_flight() -> None:
    # Deciding and binding are separate cycles: while the first pods' bindings are still
    # in flight, later pods are decided, and those decisions must count the first ones
    # on the node (kube-scheduler's assumed pods). Room for 3, 2 + 4 pods: 3 bound.
    async with running_api() as api:
        admin = ApiClient(api.base, None, ADMIN_TOKEN)
        gated = _GatedBindings(api.base, None, ADMIN_TOKEN)
        gated.gate = asyncio.Event()
        mgr = ControllerManager(gated, apiserver_address=("192.168.50.1", 6443))
        stop = asyncio.Event()
        run = asyncio.create_task(mgr.run(stop))
        try:
            await _ready_node(admin, "small", pods=3)

            def pod(name: str) -> dict[str, Any]:
                return {"apiVersion": "v1", "kind": "Pod",
                        "metadata": {"name": name, "namespace": "default"},
                        "spec": {"containers": [{"name": "c", "image": "agnhost"}]}}

            async def waiting(n: int) -> Any:
                pods = (await admin.list(PODS, "default")).items
                return [p for p in pods if any(
                    c.get("reason") == "Unschedulable"
                    for c in (p.get("status") or {}).get("conditions") or [])] if len(
                    pods) == n else []

            for name in ("first-0", "first-1"):
                await admin.create(PODS, pod(name))
            await asyncio.sleep(0.3)  # decided; their bindings wait at the gate
            for i in range(4):
                await admin.create(PODS, pod(f"later-{i}"))
            unschedulable = await eventually(lambda: _n(waiting(6), 3))
            assert all("Too many pods" in c["message"] for p in unschedulable
                       for c in p["status"]["conditions"] if c["type"] == "PodScheduled")
            gated.gate.set()

            async def bound() -> Any:
                pods = (await admin.list(PODS, "default")).items
                return sorted(p["metadata"]["name"] for p in pods if p["spec"].get("nodeName"))

            names = await eventually(lambda: _n(bound(), 3))
            assert names[:2] == ["first-0", "first-1"]
            await asyncio.sleep(0.2)
            assert len(await bound()) == 3  # nothing double-booked once the gate opened
        finally:
            stop.set()
            await asyncio.wait_for(run, 5)
            await admin.close()
            await gated.close()


class _RecordingClient(ApiClient):
    """Notes (loop time, what) for each binding answered and each event posted."""

    seen: list[tuple[float, str]]

    async def request(self, method: str, path: str, *args: Any, **kwargs: Any) -> Any:
        loop = asyncio.get_running_loop()
        if method == "POST" and path.endswith("/events"):
            self.seen.append((loop.time(), "event"))
        result = await super().request(method, path, *args, **kwargs)
        if method == "POST" and path.endswith("/binding"):
            self.seen.append((loop.time(), "bound"))
        return result


@pytest.mark.parametrize("max_delay", [30.0, 0.3])
async def test_scheduled_events_wait_until_bindings_are_quiet(max_delay: float) -> None:
    # A burst's Scheduled events must not compete with its pods' own writes: none is
    # posted until no binding has been answered for `event_quiet` seconds, unless it has
    # waited `event_max_delay`; all of them arrive in the end.
    async with running_api() as api:
        admin = ApiClient(api.base, None, ADMIN_TOKEN)
        rec = _RecordingClient(api.base, None, ADMIN_TOKEN)
        rec.seen = []
        mgr = ControllerManager(rec, apiserver_address=("192.168.50.1", 6443))
        sched = next(c for c in mgr.controllers if isinstance(c, SchedulerController))
        sched.event_quiet, sched.event_max_delay = 0.4, max_delay
        stop = asyncio.Event()
        run = asyncio.create_task(mgr.run(stop))
        try:
            await _ready_node(admin, "node-0", pods=110)
            for wave in range(4):  # a binding every 0.2 s: never quiet for 0.4 s
                await admin.create(PODS, {
                    "apiVersion": "v1", "kind": "Pod",
                    "metadata": {"name": f"p-{wave}", "namespace": "default"},
                    "spec": {"containers": [{"name": "c", "image": "agnhost"}]}})
                await asyncio.sleep(0.2)

            async def all_events() -> bool:
                events = (await admin.list(EVENTS, "default")).items
                return sum(e["reason"] == "Scheduled" for e in events) == 4

            await eventually(all_events)
            bound = [t for t, what in rec.seen if what == "bound"]
            posted = [t for t, what in rec.seen if what == "event"]
            assert len(bound) == 4 and len(posted) == 4
            first_bound = min(bound)
            for t in posted:
                last_bind = max(b for b in bound if b <= t)
                assert t - last_bind >= 0.4 or t - first_bound >= max_delay
            if max_delay < 0.4:
                assert min(posted) < max(bound)  # the oldest event did not wait for quiet
        finally:
            stop.set()
            await asyncio.wait_for(run, 5)
            await admin.close()
            await rec.close()
