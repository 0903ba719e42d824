"""Reconcilers end to end against an in-memory API: caches seeded like informers after a
list, one sync, then the writes the controller made."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import pytest

from podnet.client.informer import SharedInformers
from podnet.client.rest import ApiClient
from podnet.controllers.base import (
    DEPLOYMENTS,
    ENDPOINTSLICES,
    NAMESPACES,
    PODS,
    REPLICASETS,
    SERVICEACCOUNTS,
    SERVICES,
    Deps,
)
from podnet.controllers.deployment import DeploymentController
from podnet.controllers.endpoints_controller import EndpointsController, EndpointSliceController
from podnet.controllers.events import EVENTS, EventRecorder
from podnet.controllers.garbagecollector import GarbageCollector
from podnet.controllers.kubernetes_service import KubernetesServiceController
from podnet.controllers.manager import ControllerManager
from podnet.controllers.namespace import NamespaceController
from podnet.controllers.replicaset import ReplicaSetController
from podnet.controllers.serviceaccount import ServiceAccountController

from .fakeclient import FakeClient, FixedClock
from .objects import pod, service


class World:
    def __init__(self) -> None:
        self.api = FakeClient()
        client = cast(ApiClient, self.api)
        self.informers = SharedInformers(client)
        self.clock = FixedClock()
        self.slept: list[float] = []

        async def sleep(d: float) -> None:
            self.slept.append(d)
            await asyncio.Event().wait()  # delayed requeues never fire in these tests

        self.deps = Deps(client, self.informers, self.clock,
                         EventRecorder(client, "test-controller", self.clock), sleep)

    async def relist(self) -> None:
        """What informers do on (re)list: make every cache equal to the server."""
        for inf in self.informers.all():
            inf.replace((await self.api.list_all(inf.rt)).items, str(self.api.rv))

    def events(self) -> list[str]:
        return [f"{e['reason']}: {e['message']}" for e in self.api.stored(EVENTS)]

    def take_writes(self) -> list[str]:
        out = [w for w in self.api.writes if " events " not in w]
        self.api.writes.clear()
        return out


@pytest.fixture
def world() -> World:
    return World()


def rs_obj(replicas: int) -> dict[str, Any]:
    return {
        "metadata": {"name": "web-abc", "namespace": "default", "generation": 1},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}},
                              "spec": {"containers": [{"name": "c", "image": "x"}]}}},
    }


async def test_replicaset_creates_once_until_it_sees_its_pods(world: World) -> None:
    rsc = ReplicaSetController(world.deps)
    world.api.put(REPLICASETS, rs_obj(2))
    await world.relist()
    await rsc.sync("default/web-abc")
    assert world.take_writes() == [
        "create pods default/web-abc-00001", "create pods default/web-abc-00002",
        "update/status replicasets default/web-abc",
    ]
    assert world.events() == ["SuccessfulCreate: Created pod: web-abc-00001",
                              "SuccessfulCreate: Created pod: web-abc-00002"]
    # The RS status write shows up in the cache, the pods not yet: no second round.
    rs = await world.api.get(REPLICASETS, "web-abc", "default")
    world.informers.informer(REPLICASETS).apply("MODIFIED", rs)
    await rsc.sync("default/web-abc")
    assert world.take_writes() == []
    await world.relist()  # now the pods arrive: expectations met, status catches up
    await rsc.sync("default/web-abc")
    assert world.take_writes() == ["update/status replicasets default/web-abc"]
    rs = await world.api.get(REPLICASETS, "web-abc", "default")
    assert rs["status"] == {"replicas": 2, "fullyLabeledReplicas": 2, "observedGeneration": 1}


async def test_deployment_first_sync(world: World) -> None:
    dc = DeploymentController(world.deps)
    world.api.put(DEPLOYMENTS, {
        "metadata": {"name": "web", "namespace": "default", "generation": 1},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}},
                              "spec": {"containers": [{"name": "c", "image": "x"}]}}},
    })
    await world.relist()
    await dc.sync("default/web")
    writes = world.take_writes()
    assert writes[0].startswith("create replicasets default/web-")
    assert writes[1:] == ["update deployments default/web", "update/status deployments default/web"]
    rs_name = writes[0].rsplit("/", 1)[1]
    assert world.events() == [f"ScalingReplicaSet: Scaled up replica set {rs_name} from 0 to 2"]
    d = await world.api.get(DEPLOYMENTS, "web", "default")
    assert d["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "1"
    conds = {c["type"]: c["reason"] for c in d["status"]["conditions"]}
    assert conds == {"Progressing": "NewReplicaSetCreated",
                     "Available": "MinimumReplicasUnavailable"}


async def test_endpointslice_create_then_no_duplicate_while_cache_lags(world: World) -> None:
    esc = EndpointSliceController(world.deps)
    world.api.put(SERVICES, service())
    world.api.put(PODS, pod("a"))
    await world.relist()
    await esc.sync("default/web")
    assert world.take_writes() == ["create endpointslices default/web-00001"]
    await esc.sync("default/web")  # the informer has not delivered the slice yet
    assert world.take_writes() == []
    await world.relist()
    await esc.sync("default/web")
    assert world.take_writes() == []
    [s] = world.api.stored(ENDPOINTSLICES)
    assert s["endpoints"][0]["addresses"] == ["10.244.0.5"]


async def test_endpoints_create_update_delete(world: World) -> None:
    ec = EndpointsController(world.deps)
    world.api.put(SERVICES, service())
    world.api.put(PODS, pod("a"))
    await world.relist()
    await ec.sync("default/web")
    world.api.put(PODS, pod("a", ready=False))
    await world.relist()
    await ec.sync("default/web")
    await world.api.delete(SERVICES, "web", "default")
    world.take_writes()
    await world.relist()
    await ec.sync("default/web")
    assert world.take_writes() == ["delete endpoints default/web"]


async def test_namespace_is_emptied_then_finalized(world: World) -> None:
    nc = NamespaceController(world.deps)
    world.api.put(NAMESPACES, {
        "metadata": {"name": "team", "deletionTimestamp": "2024-05-01T11:59:00Z"},
        "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"},
    })
    world.api.put(PODS, pod("a", ns="team"))
    world.api.put(SERVICES, service(ns="team"))
    await world.relist()
    await nc.sync("team")
    assert sorted(world.take_writes()) == [
        "delete pods team/a", "delete services team/web", "update/status namespaces team"]
    ns = await world.api.get(NAMESPACES, "team")
    assert ns["status"]["phase"] == "Terminating"
    remaining = next(c for c in ns["status"]["conditions"]
                     if c["type"] == "NamespaceContentRemaining")
    assert remaining["message"] == ("Some resources are remaining: pods. has 1 resource "
                                    "instances, services. has 1 resource instances")
    await world.relist()
    await nc.sync("team")
    assert world.take_writes() == [
        "update/status namespaces team", "update/finalize namespaces team"]


async def test_default_service_account(world: World) -> None:
    sac = ServiceAccountController(world.deps)
    world.api.put(NAMESPACES, {"metadata": {"name": "team"}, "status": {"phase": "Active"}})
    await world.relist()
    await sac.sync("team")
    assert world.take_writes() == ["create serviceaccounts team/default"]
    await world.relist()
    await sac.sync("team")
    assert world.take_writes() == []
    assert len(world.api.stored(SERVICEACCOUNTS)) == 1


async def test_gc_deletes_pod_whose_owner_is_gone(world: World) -> None:
    gc = GarbageCollector(world.deps)
    world.api.put(PODS, pod("a", owner={"apiVersion": "apps/v1", "kind": "ReplicaSet",
                                        "name": "gone", "uid": "uid-gone", "controller": True}))
    world.api.put(PODS, pod("b", owner={"apiVersion": "apps/v1", "kind": "ReplicaSet",
                                        "name": "web-abc", "uid": "uid-web-abc",
                                        "controller": True}))
    world.api.put(REPLICASETS, rs_obj(1))
    await world.relist()
    await gc.sync("uid-a")
    await gc.sync("uid-b")
    assert world.take_writes() == ["delete pods default/a"]


async def test_kubernetes_service_objects(world: World) -> None:
    ksc = KubernetesServiceController(world.deps, "192.168.50.1", 6443)
    await world.relist()
    await ksc.sync("default/kubernetes")
    assert world.take_writes() == [
        "create services default/kubernetes", "create endpoints default/kubernetes",
        "create endpointslices default/kubernetes"]
    await world.relist()
    await ksc.sync("default/kubernetes")
    assert world.take_writes() == []


async def test_manager_runs_and_stops(world: World) -> None:
    world.api.put(NAMESPACES, {"metadata": {"name": "team"}, "status": {"phase": "Active"}})
    world.api.put(REPLICASETS, rs_obj(2))
    mgr = ControllerManager(cast(ApiClient, world.api), world.clock, ("192.168.50.1", 6443))
    assert len(mgr.controllers) == 10
    stop = asyncio.Event()
    run = asyncio.create_task(mgr.run(stop))
    for _ in range(200):
        if len(world.api.stored(PODS)) == 2 and world.api.stored(SERVICEACCOUNTS):
            break
        await asyncio.sleep(0.005)
    stop.set()
    await asyncio.wait_for(run, 2)
    assert {s["metadata"]["namespace"] for s in world.api.stored(SERVICEACCOUNTS)} == {"team"}
    assert len(world.api.stored(PODS)) == 2
    assert len(world.api.stored(SERVICES)) == 1  # default/kubernetes
    with pytest.raises(ValueError, match="unknown controllers"):
        ControllerManager(cast(ApiClient, world.api), enabled=["nope"])


async def test_gc_foreground_deletion(world: World) -> None:
    gc = GarbageCollector(world.deps)
    owner = rs_obj(1)
    owner["metadata"].update(deletionTimestamp="2024-05-01T11:59:00Z",
                             finalizers=["foregroundDeletion"])
    world.api.put(REPLICASETS, owner)
    world.api.put(PODS, pod("a", owner={"apiVersion": "apps/v1", "kind": "ReplicaSet",
                                        "name": "web-abc", "uid": "uid-web-abc",
                                        "controller": True, "blockOwnerDeletion": True}))
    await world.relist()
    await gc.sync("uid-web-abc")
    assert world.take_writes() == ["delete pods default/a"]
    await world.relist()
    await gc.sync("uid-web-abc")
    assert world.take_writes() == ["patch replicasets default/web-abc"]
    rs = await world.api.get(REPLICASETS, "web-abc", "default")
    assert rs["metadata"]["finalizers"] == []


async def test_gc_orphan_deletion(world: World) -> None:
    gc = GarbageCollector(world.deps)
    owner = rs_obj(1)
    owner["metadata"].update(deletionTimestamp="2024-05-01T11:59:00Z", finalizers=["orphan"])
    world.api.put(REPLICASETS, owner)
    world.api.put(PODS, pod("a", owner={"apiVersion": "apps/v1", "kind": "ReplicaSet",
                                        "name": "web-abc", "uid": "uid-web-abc",
                                        "controller": True, "blockOwnerDeletion": True}))
    await world.relist()
    await gc.sync("uid-web-abc")
    assert world.take_writes() == ["patch pods default/a", "patch replicasets default/web-abc"]
    p = await world.api.get(PODS, "a", "default")
    assert p["metadata"]["ownerReferences"] == []
