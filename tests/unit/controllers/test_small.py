"""The small pure pieces: selectors, conditions, namespace rules, the kubernetes Service,
events."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, cast

import pytest

from podnet.api.resources import Registry
from podnet.client.rest import ApiClient
from podnet.controllers.common import matches_selector, set_condition
from podnet.controllers.events import EVENTS, EventRecorder, build_event
from podnet.controllers.kubernetes_service import (
    desired_endpoints,
    desired_service,
    desired_slice,
    needs_update,
)
from podnet.controllers.namespace import deletable_types, finalized, group_resource
from podnet.controllers.serviceaccount import desired_service_accounts

from .fakeclient import FakeClient, FixedClock

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("selector", "labels", "matches"),
    [
        ({}, {"a": "1"}, True),
        (None, {"a": "1"}, False),
        ({"matchLabels": {"a": "1"}}, {"a": "1", "b": "2"}, True),
        ({"matchLabels": {"a": "1"}}, {"a": "2"}, False),
        ({"matchExpressions": [{"key": "a", "operator": "In", "values": ["1", "2"]}]},
         {"a": "2"}, True),
        ({"matchExpressions": [{"key": "a", "operator": "NotIn", "values": ["1"]}]}, {}, True),
        ({"matchExpressions": [{"key": "a", "operator": "Exists"}]}, {}, False),
        ({"matchExpressions": [{"key": "a", "operator": "DoesNotExist"}]}, {"a": ""}, False),
    ],
)
def test_label_selector(selector: Any, labels: dict[str, str], matches: bool) -> None:
    assert matches_selector(selector, labels) is matches


def test_set_condition_keeps_transition_time_when_status_unchanged() -> None:
    old = [{"type": "Ready", "status": "True", "reason": "A", "lastTransitionTime": "t0"}]
    same_reason = set_condition(old, {"type": "Ready", "status": "True", "reason": "A",
                                      "lastTransitionTime": "t1"})
    assert same_reason == old
    new_reason = set_condition(old, {"type": "Ready", "status": "True", "reason": "B",
                                     "lastTransitionTime": "t1"})
    assert new_reason[0]["lastTransitionTime"] == "t0" and new_reason[0]["reason"] == "B"
    flipped = set_condition(old, {"type": "Ready", "status": "False", "reason": "B",
                                  "lastTransitionTime": "t1"})
    assert flipped[0]["lastTransitionTime"] == "t1"


def test_deletable_types_are_namespaced_listable_and_unique() -> None:
    types = deletable_types(Registry.builtin())
    names = [group_resource(rt) for rt in types]
    assert "pods." in names and "deployments.apps" in names
    assert "namespaces." not in names and "bindings." not in names
    assert "localsubjectaccessreviews.authorization.k8s.io" not in names
    assert len(names) == len(set(names))  # one version per resource (istio has three)


def test_finalize_body_drops_only_our_finalizer() -> None:
    ns = {"metadata": {"name": "x"}, "spec": {"finalizers": ["kubernetes", "other"]}}
    body = finalized(ns)
    assert body is not None and body["spec"]["finalizers"] == ["other"]
    assert finalized(body) is None


@pytest.mark.parametrize(
    ("ns", "count"),
    [
        ({"metadata": {"name": "a"}, "status": {"phase": "Active"}}, 1),
        ({"metadata": {"name": "a", "deletionTimestamp": "t"}}, 0),
        ({"metadata": {"name": "a"}, "status": {"phase": "Terminating"}}, 0),
    ],
)
def test_default_service_account_only_in_active_namespaces(ns: Any, count: int) -> None:
    assert len(desired_service_accounts(ns)) == count


def test_kubernetes_service_shape() -> None:
    svc = desired_service(6443)
    assert svc["metadata"]["labels"] == {"component": "apiserver", "provider": "kubernetes"}
    assert svc["spec"]["clusterIP"] == "10.96.0.1"
    assert svc["spec"]["ports"] == [{"name": "https", "port": 443, "protocol": "TCP",
                                     "targetPort": 6443}]
    assert "selector" not in svc["spec"]
    assert desired_endpoints("192.168.50.1", 6443)["subsets"] == [{
        "addresses": [{"ip": "192.168.50.1"}],
        "ports": [{"name": "https", "port": 6443, "protocol": "TCP"}]}]
    es = desired_slice("192.168.50.1", 6443)
    assert es["metadata"]["name"] == "kubernetes"
    assert es["metadata"]["labels"] == {"kubernetes.io/service-name": "kubernetes"}


def test_kubernetes_service_update_only_when_ours_changed() -> None:
    current = desired_endpoints("192.168.50.1", 6443)
    current["metadata"]["resourceVersion"] = "5"
    assert needs_update(current, desired_endpoints("192.168.50.1", 6443)) is None
    moved = needs_update(current, desired_endpoints("192.168.50.2", 6443))
    assert moved is not None and moved["metadata"]["resourceVersion"] == "5"
    svc = desired_service(6443)
    svc["spec"]["ports"][0]["nodePort"] = None  # server-added fields are ignored
    assert needs_update(svc, desired_service(6443)) is None
    assert needs_update(svc, desired_service(7443)) is not None


def test_event_shape() -> None:
    rs = {"apiVersion": "apps/v1", "kind": "ReplicaSet",
          "metadata": {"name": "web-abc", "namespace": "default", "uid": "u1",
                       "resourceVersion": "9"}}
    ev = build_event(rs, "Normal", "SuccessfulCreate", "Created pod: web-abc-x1",
                     component="replicaset-controller", now=NOW)
    assert ev["metadata"]["name"].startswith("web-abc.")
    assert ev["metadata"]["namespace"] == "default"
    assert ev["involvedObject"] == {"kind": "ReplicaSet", "apiVersion": "apps/v1",
                                    "namespace": "default", "name": "web-abc", "uid": "u1",
                                    "resourceVersion": "9"}
    assert (ev["count"], ev["firstTimestamp"], ev["type"]) == (1, "2024-05-01T12:00:00Z",
                                                               "Normal")
    assert ev["source"] == {"component": "replicaset-controller"}
    node = {"kind": "Node", "apiVersion": "v1", "metadata": {"name": "n1"}}
    assert build_event(node, "Warning", "X", "y", component="c", now=NOW)["metadata"][
        "namespace"] == "default"


async def test_repeated_events_are_counted() -> None:
    api = FakeClient()
    rec = EventRecorder(cast(ApiClient, api), "deployment-controller", FixedClock(NOW))
    d = {"kind": "Deployment", "apiVersion": "apps/v1",
         "metadata": {"name": "web", "namespace": "default", "uid": "u"}}
    for _ in range(3):
        await rec.normal(d, "ScalingReplicaSet", "Scaled up replica set web-x from 0 to 1")
    await rec.normal(d, "ScalingReplicaSet", "Scaled up replica set web-x from 1 to 2")
    counts = sorted((e["message"], e["count"]) for e in api.stored(EVENTS))
    assert counts == [("Scaled up replica set web-x from 0 to 1", 3),
                      ("Scaled up replica set web-x from 1 to 2", 1)]
