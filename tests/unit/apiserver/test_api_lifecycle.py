"""Deletion as Kubernetes does it: finalizers, propagation policies, graceful pod
deletion, bindings, namespace termination and finalize, and the scale subresource."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from podnet.testing.apiserver import InProcessApi, running_api
from tests.unit.apiserver.support import (
    CONFIGMAPS,
    DEPLOYMENTS,
    PODS,
    configmap,
    created,
    deployment,
    pod,
    status_of,
)


@pytest.fixture
async def api() -> AsyncIterator[InProcessApi]:
    async with running_api() as a:
        yield a


async def test_finalizers_hold_deletion_until_removed(api: InProcessApi) -> None:
    cm = configmap("f")
    cm["metadata"]["finalizers"] = ["example.com/keep"]
    await created(api, CONFIGMAPS, cm)
    code, body, _ = await api.delete(f"{CONFIGMAPS}/f")
    assert code == 200
    # Still there: the response is the object, marked for deletion.
    assert body["kind"] == "ConfigMap"
    assert body["metadata"]["deletionTimestamp"]
    assert body["metadata"]["deletionGracePeriodSeconds"] == 0
    code, got, _ = await api.get(f"{CONFIGMAPS}/f")
    assert code == 200 and got["metadata"]["deletionTimestamp"]
    # Other changes are still allowed while deleting.
    code, _, _ = await api.patch(f"{CONFIGMAPS}/f", {"data": {"a": "b"}})
    assert code == 200
    code, _, _ = await api.patch(f"{CONFIGMAPS}/f", {"metadata": {"finalizers": None}})
    assert code == 200
    code, body, _ = await api.get(f"{CONFIGMAPS}/f")
    assert code == 404


async def test_no_new_finalizers_while_deleting(api: InProcessApi) -> None:
    cm = configmap("f")
    cm["metadata"]["finalizers"] = ["a/one"]
    await created(api, CONFIGMAPS, cm)
    await api.delete(f"{CONFIGMAPS}/f")
    code, body, _ = await api.patch(f"{CONFIGMAPS}/f",
                                    {"metadata": {"finalizers": ["a/one", "b/two"]}})
    assert code == 422
    code, live, _ = await api.get(f"{CONFIGMAPS}/f")
    assert live["metadata"]["finalizers"] == ["a/one"]
    assert status_of(body) == (
        "Invalid",
        'ConfigMap "f" is invalid: metadata.finalizers: Forbidden: no new finalizers can be '
        "added if the object is being deleted, found new finalizers []string{\"b/two\"}")


async def test_foreground_deletion_adds_finalizer(api: InProcessApi) -> None:
    await created(api, DEPLOYMENTS, deployment("d"))
    code, body, _ = await api.delete(f"{DEPLOYMENTS}/d", {"propagationPolicy": "Foreground"})
    assert code == 200
    assert body["kind"] == "Deployment"
    assert body["metadata"]["finalizers"] == ["foregroundDeletion"]
    assert body["metadata"]["deletionTimestamp"]
    code, _, _ = await api.get(f"{DEPLOYMENTS}/d")
    assert code == 200


async def test_orphan_deletion_adds_finalizer(api: InProcessApi) -> None:
    await created(api, DEPLOYMENTS, deployment("d"))
    code, body, _ = await api.delete(f"{DEPLOYMENTS}/d?propagationPolicy=Orphan")
    assert code == 200
    assert body["metadata"]["finalizers"] == ["orphan"]


async def test_bad_propagation_policy(api: InProcessApi) -> None:
    await created(api, CONFIGMAPS, configmap("x"))
    code, body, _ = await api.delete(f"{CONFIGMAPS}/x", {"propagationPolicy": "Sometimes"})
    assert code == 422
    assert body["reason"] == "Invalid"
    code, _, _ = await api.get(f"{CONFIGMAPS}/x")
    assert code == 200


async def test_delete_preconditions(api: InProcessApi) -> None:
    obj = await created(api, CONFIGMAPS, configmap("x"))
    code, body, _ = await api.delete(f"{CONFIGMAPS}/x", {"preconditions": {"uid": "other"}})
    assert code == 409
    assert status_of(body) == (
        "Conflict",
        'Operation cannot be fulfilled on configmaps "x": Precondition failed: UID in '
        f"precondition: other, UID in object meta: {obj['metadata']['uid']}")
    code, _, _ = await api.delete(f"{CONFIGMAPS}/x",
                                  {"preconditions": {"uid": obj["metadata"]["uid"]}})
    assert code == 200


async def test_unscheduled_pod_is_deleted_at_once(api: InProcessApi) -> None:
    await created(api, PODS, pod("p"))
    code, body, _ = await api.delete(f"{PODS}/p")
    assert code == 200
    assert body["kind"] == "Pod"  # pods answer with the object, not a Status
    code, _, _ = await api.get(f"{PODS}/p")
    assert code == 404


async def test_scheduled_pod_is_deleted_gracefully(api: InProcessApi) -> None:
    await created(api, PODS, pod("p", node="node1"))
    code, body, _ = await api.delete(f"{PODS}/p")
    assert code == 200
    meta = body["metadata"]
    assert meta["deletionGracePeriodSeconds"] == 30
    assert meta["deletionTimestamp"]
    code, got, _ = await api.get(f"{PODS}/p")
    assert code == 200 and got["metadata"]["deletionGracePeriodSeconds"] == 30
    # Deleting again with the same grace changes nothing.
    code, again, _ = await api.delete(f"{PODS}/p")
    assert code == 200
    assert again["metadata"]["resourceVersion"] == got["metadata"]["resourceVersion"]
    # The node agent confirms with gracePeriodSeconds=0.
    code, _, _ = await api.delete(f"{PODS}/p", {"gracePeriodSeconds": 0})
    assert code == 200
    code, _, _ = await api.get(f"{PODS}/p")
    assert code == 404


async def test_pod_grace_from_spec(api: InProcessApi) -> None:
    p = pod("p", node="node1")
    p["spec"]["terminationGracePeriodSeconds"] = 5
    await created(api, PODS, p)
    _, body, _ = await api.delete(f"{PODS}/p")
    assert body["metadata"]["deletionGracePeriodSeconds"] == 5


async def test_binding_sets_node_once(api: InProcessApi) -> None:
    await created(api, PODS, pod("p"))
    binding: dict[str, Any] = {
        "apiVersion": "v1", "kind": "Binding", "metadata": {"name": "p"},
        "target": {"apiVersion": "v1", "kind": "Node", "name": "node1"}}
    code, body, _ = await api.post(f"{PODS}/p/binding", binding)
    assert code == 201, body
    assert body["kind"] == "Status" and body["status"] == "Success"
    code, got, _ = await api.get(f"{PODS}/p")
    assert got["spec"]["nodeName"] == "node1"
    sched = [c for c in got["status"]["conditions"] if c["type"] == "PodScheduled"]
    assert sched and sched[0]["status"] == "True"
    binding["target"]["name"] = "node2"
    code, body, _ = await api.post(f"{PODS}/p/binding", binding)
    assert code == 409
    assert status_of(body) == (
        "Conflict",
        'Operation cannot be fulfilled on pods/binding "p": pod p is already assigned to node '
        '"node1"')


async def test_node_name_is_immutable(api: InProcessApi) -> None:
    await created(api, PODS, pod("p", node="node1"))
    code, body, _ = await api.patch(f"{PODS}/p", {"spec": {"nodeName": "node2"}})
    assert code == 422
    assert body["reason"] == "Invalid"


async def test_namespace_termination(api: InProcessApi) -> None:
    ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team"}}
    obj = await created(api, "/api/v1/namespaces", ns)
    assert obj["status"] == {"phase": "Active"}
    assert obj["spec"] == {"finalizers": ["kubernetes"]}
    assert obj["metadata"]["labels"] == {"kubernetes.io/metadata.name": "team"}
    await created(api, "/api/v1/namespaces/team/configmaps", configmap("inside"))

    code, body, _ = await api.delete("/api/v1/namespaces/team")
    assert code == 200
    assert body["kind"] == "Namespace"
    assert body["status"]["phase"] == "Terminating"
    assert body["metadata"]["deletionTimestamp"]

    code, body, _ = await api.post("/api/v1/namespaces/team/configmaps", configmap("new"))
    assert code == 403
    assert status_of(body) == (
        "Forbidden",
        'configmaps "new" is forbidden: unable to create new content in namespace team '
        "because it is being terminated")
    # Existing content can still be read and deleted.
    code, _, _ = await api.delete("/api/v1/namespaces/team/configmaps/inside")
    assert code == 200

    code, live, _ = await api.get("/api/v1/namespaces/team")
    live["spec"]["finalizers"] = []
    code, body, _ = await api.put("/api/v1/namespaces/team/finalize", live)
    assert code == 200, body
    code, _, _ = await api.get("/api/v1/namespaces/team")
    assert code == 404


async def test_namespace_finalize_only_touches_spec_finalizers(api: InProcessApi) -> None:
    await created(api, "/api/v1/namespaces",
                  {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "keep"}})
    code, live, _ = await api.get("/api/v1/namespaces/keep")
    live["spec"]["finalizers"] = ["kubernetes", "example.com/x"]
    live["metadata"]["labels"]["extra"] = "ignored"
    code, body, _ = await api.put("/api/v1/namespaces/keep/finalize", live)
    assert code == 200, body
    assert body["spec"]["finalizers"] == ["kubernetes", "example.com/x"]
    assert "extra" not in body["metadata"]["labels"]


async def test_scale_subresource(api: InProcessApi) -> None:
    await created(api, DEPLOYMENTS, deployment("d", replicas=2))
    code, scale, _ = await api.get(f"{DEPLOYMENTS}/d/scale")
    assert code == 200
    assert scale["kind"] == "Scale" and scale["apiVersion"] == "autoscaling/v1"
    assert scale["spec"] == {"replicas": 2}
    assert scale["status"]["selector"] == "app=d"
    code, body, _ = await api.patch(f"{DEPLOYMENTS}/d/scale", {"spec": {"replicas": 5}})
    assert code == 200, body
    assert body["spec"]["replicas"] == 5
    code, dep, _ = await api.get(f"{DEPLOYMENTS}/d")
    assert dep["spec"]["replicas"] == 5
    scale = body
    scale["spec"]["replicas"] = 1
    code, body, _ = await api.put(f"{DEPLOYMENTS}/d/scale", scale)
    assert code == 200 and body["spec"]["replicas"] == 1
    code, body, _ = await api.patch(f"{DEPLOYMENTS}/d/scale", {"spec": {"replicas": -1}})
    assert code == 422
    assert status_of(body) == (
        "Invalid", 'Scale.autoscaling "d" is invalid: spec.replicas: Invalid value: -1: must '
                   "be greater than or equal to 0")


async def test_scale_bumps_generation(api: InProcessApi) -> None:
    await created(api, DEPLOYMENTS, deployment("d"))
    code, _, _ = await api.patch(f"{DEPLOYMENTS}/d/scale", {"spec": {"replicas": 3}})
    assert code == 200
    _, dep, _ = await api.get(f"{DEPLOYMENTS}/d")
    assert dep["metadata"]["generation"] == 2
