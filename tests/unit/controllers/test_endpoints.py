"""v1 Endpoints: subsets packed as Kubernetes packs them."""

from __future__ import annotations

from typing import Any

import pytest

from podnet.controllers.endpoints import desired_endpoints, endpoints_changed

from .objects import pod, service


def subsets(ep: dict[str, Any] | None) -> list[str]:
    """Each subset as `ready=[..] notReady=[..] ports=[..]`."""
    assert ep is not None
    out = []
    for s in ep.get("subsets", []):
        ready = [a["ip"] for a in s.get("addresses", [])]
        not_ready = [a["ip"] for a in s.get("notReadyAddresses", [])]
        ports = [f"{p.get('name', '')}:{p['port']}" for p in s.get("ports", [])]
        out.append(f"ready={ready} notReady={not_ready} ports={ports}")
    return out


TWO_PORTS = [
    {"name": "http", "port": 80, "protocol": "TCP", "targetPort": "web"},
    {"name": "metrics", "port": 9100, "protocol": "TCP", "targetPort": 9100},
]

CASES = [
    ("ready and not ready share a subset", {},
     [pod("b", "10.244.0.6"), pod("a", "10.244.0.5", ready=False)],
     ["ready=['10.244.0.6'] notReady=['10.244.0.5'] ports=['http:9376']"]),
    ("terminating pods are dropped", {},
     [pod("a", "10.244.0.5", deleting=True), pod("b", "10.244.0.6")],
     ["ready=['10.244.0.6'] notReady=[] ports=['http:9376']"]),
    ("publishNotReadyAddresses keeps terminating and unready as ready",
     {"publish_not_ready": True},
     [pod("a", "10.244.0.5", deleting=True), pod("b", "10.244.0.6", ready=False)],
     ["ready=['10.244.0.5', '10.244.0.6'] notReady=[] ports=['http:9376']"]),
    ("no pods: no subsets", {}, [], []),
    # RepackSubsets groups by the exact address set of each port: metrics is served by
    # all three pods, http only by the two that name the port.
    ("ports are grouped by the set of pods serving them", {"ports": TWO_PORTS},
     [pod("a", "10.244.0.5", ports=[("web", 8080)]), pod("b", "10.244.0.6"),
      pod("c", "10.244.0.7", ports=[("web", 8080)])],
     ["ready=['10.244.0.5', '10.244.0.7'] notReady=[] ports=['http:8080']",
      "ready=['10.244.0.5', '10.244.0.6', '10.244.0.7'] notReady=[] ports=['metrics:9100']"]),
    ("a port served by all pods shares one subset", {"ports": TWO_PORTS},
     [pod("a", "10.244.0.5", ports=[("web", 8080)]), pod("b", "10.244.0.6", ready=False,
                                                       ports=[("web", 8080)])],
     ["ready=['10.244.0.5'] notReady=['10.244.0.6'] ports=['http:8080', 'metrics:9100']"]),
    ("headless without ports keeps addresses", {"cluster_ip": "None", "ports": []},
     [pod("a", "10.244.0.5")], ["ready=['10.244.0.5'] notReady=[] ports=[]"]),
    ("non-headless without ports has none", {"ports": []}, [pod("a", "10.244.0.5")], []),
]


@pytest.mark.parametrize(("case", "svc", "pods", "expected"), CASES, ids=[c[0] for c in CASES])
def test_subsets_table(case: str, svc: dict[str, Any], pods: list[Any], expected: Any) -> None:
    assert subsets(desired_endpoints(service(**svc), pods)) == expected


def test_object_shape() -> None:
    ep = desired_endpoints(service(labels={"team": "x"}), [pod("a", hostname="a", subdomain="web")])
    assert ep is not None
    assert ep["metadata"] == {"name": "web", "namespace": "default", "labels": {"team": "x"}}
    assert ep["subsets"][0]["addresses"] == [{
        "ip": "10.244.0.5", "hostname": "a", "nodeName": "node-1",
        "targetRef": {"kind": "Pod", "namespace": "default", "name": "a", "uid": "uid-a"},
    }]
    assert ep["subsets"][0]["ports"] == [{"name": "http", "port": 9376, "protocol": "TCP"}]


def test_selectorless_service_is_not_managed() -> None:
    assert desired_endpoints(service(selector={}), [pod("a")]) is None


def test_changed_ignores_trigger_time() -> None:
    a = desired_endpoints(service(), [pod("a")])
    b = desired_endpoints(service(), [pod("a")])
    assert a is not None and b is not None
    b["metadata"]["annotations"] = {"endpoints.kubernetes.io/last-change-trigger-time": "x"}
    assert not endpoints_changed(a, b)
    c = desired_endpoints(service(), [pod("a", ready=False)])
    assert c is not None and endpoints_changed(a, c)
