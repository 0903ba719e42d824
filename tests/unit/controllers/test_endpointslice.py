"""EndpointSlices: tables of pods → the endpoints Kubernetes would publish."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from podnet.controllers.endpointslice import (
    LABEL_MANAGED_BY,
    LABEL_SERVICE_NAME,
    TRIGGER_TIME,
    desired_slices,
    reconcile_slices,
)

from .objects import pod, service


def summary(slices: list[dict[str, Any]]) -> list[tuple[str, list[str]]]:
    """Each slice as (ports, ["ip ready serving terminating pod"]), flags as R/S/T or -."""
    out = []
    for s in slices:
        ports = ",".join(f"{p['name']}:{p['port']}/{p['protocol']}" for p in s["ports"])
        eps = []
        for ep in s["endpoints"]:
            c = ep["conditions"]
            flags = ("R" if c["ready"] else "-") + ("S" if c["serving"] else "-") + (
                "T" if c["terminating"] else "-")
            eps.append(f"{ep['addresses'][0]} {flags} {ep['targetRef']['name']}")
        out.append((ports, eps))
    return out


HTTP = "http:9376/TCP"

CASES = [
    # (case, service kwargs, pods, expected slices)
    ("ready pod", {}, [pod("a", "10.244.0.5")], [(HTTP, ["10.244.0.5 RS- a"])]),
    ("not ready pod", {}, [pod("a", "10.244.0.5", ready=False)], [(HTTP, ["10.244.0.5 --- a"])]),
    ("terminating ready pod is serving, not ready", {},
     [pod("a", "10.244.0.5", deleting=True)], [(HTTP, ["10.244.0.5 -ST a"])]),
    ("terminating unready pod", {},
     [pod("a", "10.244.0.5", deleting=True, ready=False)], [(HTTP, ["10.244.0.5 --T a"])]),
    ("publishNotReadyAddresses makes ready", {"publish_not_ready": True},
     [pod("a", "10.244.0.5", ready=False), pod("b", "10.244.0.6", deleting=True)],
     [(HTTP, ["10.244.0.5 R-- a", "10.244.0.6 RST b"])]),
    ("no IP yet is skipped", {}, [pod("a", None), pod("b", "10.244.0.6")],
     [(HTTP, ["10.244.0.6 RS- b"])]),
    ("terminal pods are skipped", {},
     [pod("a", "10.244.0.5", phase="Succeeded"), pod("b", "10.244.0.6", phase="Failed"),
      pod("c", "10.244.0.7", phase="Pending", ready=False)],
     [(HTTP, ["10.244.0.7 --- c"])]),
    ("selector and namespace filter", {},
     [pod("a", "10.244.0.5", labels={"app": "db"}), pod("b", "10.244.0.6", ns="other"),
      pod("c", "10.244.0.7", labels={"app": "web", "tier": "x"})],
     [(HTTP, ["10.244.0.7 RS- c"])]),
    ("IPv6-only pod is skipped for IPv4 slices", {}, [pod("a", "fd00::5")], [("", [])]),
    ("no pods: one placeholder slice", {}, [], [("", [])]),
    ("named targetPort resolved per pod, one slice per resolution",
     {"ports": [{"name": "http", "port": 80, "protocol": "TCP", "targetPort": "web"}]},
     [pod("a", "10.244.0.5", ports=[("web", 8080)]), pod("b", "10.244.0.6", ports=[("web", 9090)]),
      pod("c", "10.244.0.7", ports=[("web", 8080)])],
     [("http:8080/TCP", ["10.244.0.5 RS- a", "10.244.0.7 RS- c"]),
      ("http:9090/TCP", ["10.244.0.6 RS- b"])]),
    ("pod without the named port is left out of that port",
     {"ports": [{"name": "http", "port": 80, "protocol": "TCP", "targetPort": "web"},
                {"name": "metrics", "port": 9100, "protocol": "TCP", "targetPort": 9100}]},
     [pod("a", "10.244.0.5", ports=[("web", 8080)]), pod("b", "10.244.0.6")],
     [("http:8080/TCP,metrics:9100/TCP", ["10.244.0.5 RS- a"]),
      ("metrics:9100/TCP", ["10.244.0.6 RS- b"])]),
    ("named port with the wrong protocol does not resolve",
     {"ports": [{"name": "dns", "port": 53, "protocol": "UDP", "targetPort": "web"}]},
     [pod("a", "10.244.0.5", ports=[("web", 53)])], [("", ["10.244.0.5 RS- a"])]),
    ("missing targetPort defaults to port",
     {"ports": [{"name": "", "port": 8080, "protocol": "TCP"}]},
     [pod("a", "10.244.0.5")], [(":8080/TCP", ["10.244.0.5 RS- a"])]),
]


@pytest.mark.parametrize(("case", "svc", "pods", "expected"), CASES, ids=[c[0] for c in CASES])
def test_endpoints_table(case: str, svc: dict[str, Any], pods: list[Any], expected: Any) -> None:
    assert summary(desired_slices(service(**svc), pods)) == expected


@pytest.mark.parametrize("svc", [service(selector={}), service(type_="ExternalName")])
def test_unmanaged_services_get_no_slices(svc: dict[str, Any]) -> None:
    assert desired_slices(svc, [pod("a")]) == []


def test_slice_metadata_like_kubernetes() -> None:
    svc = service(labels={"team": "x", LABEL_SERVICE_NAME: "spoof"})
    [s] = desired_slices(svc, [pod("a")], datetime(2024, 5, 1, 12, 0, tzinfo=UTC))
    assert s["apiVersion"] == "discovery.k8s.io/v1" and s["addressType"] == "IPv4"
    assert s["metadata"]["generateName"] == "web-"
    assert s["metadata"]["labels"] == {
        "team": "x", LABEL_SERVICE_NAME: "web",
        LABEL_MANAGED_BY: "endpointslice-controller.k8s.io",
    }
    assert s["metadata"]["ownerReferences"] == [{
        "apiVersion": "v1", "kind": "Service", "name": "web", "uid": "uid-svc-web",
        "controller": True, "blockOwnerDeletion": True,
    }]
    assert s["metadata"]["annotations"] == {TRIGGER_TIME: "2024-05-01T12:00:00Z"}
    assert s["endpoints"][0]["targetRef"] == {
        "kind": "Pod", "namespace": "default", "name": "a", "uid": "uid-a"}
    assert s["endpoints"][0]["nodeName"] == "node-1"


def test_headless_label_hostname_and_zone() -> None:
    svc = service(cluster_ip="None")
    pods = [pod("a", "10.244.0.5", hostname="a", subdomain="web"),
            pod("b", "10.244.0.6", hostname="b", subdomain="other")]
    [s] = desired_slices(svc, pods, zones={"node-1": "zone-a"})
    assert s["metadata"]["labels"]["service.kubernetes.io/headless"] == ""
    assert [ep.get("hostname") for ep in s["endpoints"]] == ["a", None]
    assert [ep.get("zone") for ep in s["endpoints"]] == ["zone-a", "zone-a"]


def test_at_most_100_endpoints_per_slice() -> None:
    pods = [pod(f"p{i:03}", f"10.244.{i // 250}.{i % 250 + 1}") for i in range(250)]
    assert [len(s["endpoints"]) for s in desired_slices(service(), pods)] == [100, 100, 50]


# -- reconcile: fewest writes, stable names ----------------------------------------------


def existing(slices: list[dict[str, Any]], *names: str) -> list[dict[str, Any]]:
    """Give desired slices the names and resourceVersions the server would."""
    out = []
    for s, name in zip(slices, names, strict=True):
        s = {**s, "metadata": {**s["metadata"], "name": name, "resourceVersion": "7"}}
        del s["metadata"]["generateName"]
        out.append(s)
    return out


def names(slices: list[dict[str, Any]]) -> list[str]:
    return [s["metadata"].get("name", s["metadata"].get("generateName")) for s in slices]


def test_first_sync_creates() -> None:
    creates, updates, deletes = reconcile_slices([], desired_slices(service(), [pod("a")]))
    assert (names(creates), updates, deletes) == (["web-"], [], [])


def test_no_change_no_writes() -> None:
    desired = desired_slices(service(), [pod("a"), pod("b", "10.244.0.6")])
    assert reconcile_slices(existing(desired, "web-abc"), desired).empty


def test_readiness_change_updates_the_same_slice() -> None:
    before = existing(desired_slices(service(), [pod("a")]), "web-abc")
    creates, updates, deletes = reconcile_slices(
        before, desired_slices(service(), [pod("a", ready=False)]))
    assert (creates, names(updates), deletes) == ([], ["web-abc"], [])
    assert updates[0]["metadata"]["resourceVersion"] == "7"
    assert summary(updates) == [(HTTP, ["10.244.0.5 --- a"])]


def test_pod_replaced_stays_in_slice() -> None:
    before = existing(desired_slices(service(), [pod("a"), pod("b", "10.244.0.6")]), "web-abc")
    after = desired_slices(service(), [pod("a"), pod("c", "10.244.0.7")])
    creates, updates, deletes = reconcile_slices(before, after)
    assert (creates, names(updates), deletes) == ([], ["web-abc"], [])
    assert summary(updates) == [(HTTP, ["10.244.0.5 RS- a", "10.244.0.7 RS- c"])]


def test_placeholder_is_kept() -> None:
    desired = desired_slices(service(), [])
    assert reconcile_slices(existing(desired, "web-abc"), desired).empty


def test_last_endpoint_gone_turns_slice_into_placeholder_in_place() -> None:
    before = existing(desired_slices(service(), [pod("a")]), "web-abc")
    creates, updates, deletes = reconcile_slices(before, desired_slices(service(), []))
    assert (creates, names(updates), deletes) == ([], ["web-abc"], [])
    assert updates[0]["endpoints"] == [] and updates[0]["ports"] == []


def test_port_change_reuses_the_slice_name() -> None:
    before = existing(desired_slices(service(), [pod("a")]), "web-abc")
    svc = service(ports=[{"name": "http", "port": 80, "protocol": "TCP", "targetPort": 8080}])
    creates, updates, deletes = reconcile_slices(before, desired_slices(svc, [pod("a")]))
    assert (creates, names(updates), deletes) == ([], ["web-abc"], [])
    assert summary(updates) == [("http:8080/TCP", ["10.244.0.5 RS- a"])]


def test_new_endpoints_fill_an_unchanged_slice_with_room() -> None:
    pods = [pod(f"p{i:03}", f"10.244.0.{i + 1}") for i in range(60)]
    before = existing(desired_slices(service(), pods), "web-abc")
    more = pods + [pod(f"q{i:03}", f"10.244.1.{i + 1}") for i in range(30)]
    creates, updates, deletes = reconcile_slices(before, desired_slices(service(), more))
    assert (creates, names(updates), deletes) == ([], ["web-abc"], [])
    assert len(updates[0]["endpoints"]) == 90


def test_new_endpoints_that_do_not_fit_get_a_new_slice() -> None:
    pods = [pod(f"p{i:03}", f"10.244.0.{i + 1}") for i in range(60)]
    before = existing(desired_slices(service(), pods), "web-abc")
    more = pods + [pod(f"q{i:03}", f"10.244.1.{i + 1}") for i in range(50)]
    creates, updates, deletes = reconcile_slices(before, desired_slices(service(), more))
    assert (names(creates), updates, deletes) == (["web-"], [], [])
    assert len(creates[0]["endpoints"]) == 50


def test_unmanaged_service_deletes_everything() -> None:
    before = existing(desired_slices(service(), [pod("a")]), "web-abc")
    creates, updates, deletes = reconcile_slices(before, [])
    assert (creates, updates, names(deletes)) == ([], [], ["web-abc"])
