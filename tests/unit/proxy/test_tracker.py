"""Change tracking: a sync computes pieces only for the ports whose Service or
EndpointSlices changed, and the whole-table view (`proxier.desired`) agrees with it."""

from __future__ import annotations

from typing import Any

import pytest

from podnet.proxy import ruleset
from podnet.proxy.proxier import desired
from podnet.proxy.ruleset import NodeInfo
from podnet.proxy.tracker import ServiceTracker
from podnet.proxy.views import ServicePort, endpoints_for

NODE = NodeInfo(node_ip="10.250.0.2", node_name="node-0")


def service(name: str, ip: str, *ports: dict[str, Any], **spec: Any) -> dict[str, Any]:
    return {"metadata": {"namespace": "default", "name": name},
            "spec": {"clusterIP": ip, "ports": list(ports), **spec}}


def endpoint_slice(name: str, *ips: str, port: int = 9376) -> dict[str, Any]:
    return {"metadata": {"namespace": "default", "name": name + "-x",
                         "labels": {"kubernetes.io/service-name": name}},
            "addressType": "IPv4", "ports": [{"name": "http", "port": port}],
            "endpoints": [{"addresses": [ip], "nodeName": "node-0",
                           "conditions": {"ready": True}} for ip in ips]}


WEB = service("web", "10.96.0.20", {"name": "http", "port": 80},
              {"name": "metrics", "port": 9090})


def test_only_changed_ports_come_back() -> None:
    t = ServiceTracker(NODE)
    first = t.changes("default", "web", WEB, [endpoint_slice("web", "10.244.0.7")])
    assert set(first) == {("default", "web", "http", "TCP"), ("default", "web", "metrics", "TCP")}
    assert t.changes("default", "web", WEB, [endpoint_slice("web", "10.244.0.7")]) == {}
    moved = t.changes("default", "web", WEB, [endpoint_slice("web", "10.244.0.8")])
    assert list(moved) == [("default", "web", "http", "TCP")]  # metrics has no slice port


def test_a_removed_port_or_service_comes_back_as_none() -> None:
    t = ServiceTracker(NODE)
    t.changes("default", "web", WEB, [])
    one_port = service("web", "10.96.0.20", {"name": "http", "port": 80})
    assert t.changes("default", "web", one_port, []) == {
        ("default", "web", "metrics", "TCP"): None}
    assert t.changes("default", "web", None, []) == {("default", "web", "http", "TCP"): None}
    assert t.pieces == {}


def test_udp_endpoints_and_health_targets_follow_changes() -> None:
    t = ServiceTracker(NODE)
    dns = service("dns", "10.96.0.10", {"name": "http", "port": 53, "protocol": "UDP"})
    slice_ = endpoint_slice("dns", "10.244.0.9")
    slice_["ports"][0]["protocol"] = "UDP"
    t.changes("default", "dns", dns, [slice_])
    assert t.udp_endpoints() == {"10.244.0.9"}
    t.changes("default", "dns", None, [])
    assert t.udp_endpoints() == frozenset()
    local = service("lb", "10.96.0.30", {"name": "http", "port": 80, "nodePort": 30010},
                    type="NodePort", externalTrafficPolicy="Local", healthCheckNodePort=32000)
    t.changes("default", "lb", local, [endpoint_slice("lb", "10.244.0.7")])
    assert t.health_targets()[32000].local_endpoints == 1


def test_desired_is_the_build_of_the_same_objects() -> None:
    slices = [endpoint_slice("web", "10.244.0.7", "10.244.0.8")]
    ports = ServicePort.from_service(WEB)
    eps = {p.key: endpoints_for(p, slices) for p in ports}
    assert desired([WEB], slices, NODE) == ruleset.build(ports, eps, NODE)


def test_a_service_that_cannot_be_served_changes_nothing() -> None:
    t = ServiceTracker(NODE)
    t.changes("default", "web", WEB, [endpoint_slice("web", "10.244.0.7")])
    before = dict(t.pieces)
    bad = service("web", "10.96.0.20", {"name": "http", "port": 80},
                  {"name": "odd", "port": 81, "protocol": "ICMP"})
    with pytest.raises(ValueError):
        t.changes("default", "web", bad, [endpoint_slice("web", "10.244.0.8")])
    assert t.pieces == before
