"""Raw Services and EndpointSlices → the proxy's frozen views."""

from __future__ import annotations

from typing import Any

import pytest

from podnet.proxy.views import Endpoint, ServicePort, endpoints_for, usable


def svc(**spec: Any) -> dict[str, Any]:
    status = spec.pop("status", {})
    return {"metadata": {"namespace": "shop", "name": "web"},
            "spec": {"clusterIP": "10.96.0.20", "ports": [{"port": 80}], **spec},
            "status": status}


def test_cluster_ip_defaults() -> None:
    (p,) = ServicePort.from_service(svc())
    assert p == ServicePort("shop", "web", "", "TCP", "10.96.0.20", 80, target_port=80)
    assert p.label == "shop/web:80/tcp"


@pytest.mark.parametrize("spec", [
    {"clusterIP": "None"},
    {"type": "ExternalName", "externalName": "example.com", "clusterIP": ""},
    {"clusterIP": "fd00::1"},
])
def test_no_rules_for_headless_external_name_or_ipv6(spec: dict[str, Any]) -> None:
    assert ServicePort.from_service(svc(**spec)) == []


def test_load_balancer_and_external_ips() -> None:
    (p,) = ServicePort.from_service(svc(
        type="LoadBalancer", ports=[{"port": 80, "nodePort": 30007, "protocol": "UDP"}],
        externalIPs=["10.251.0.50", "junk"], externalTrafficPolicy="Local",
        healthCheckNodePort=32000,
        status={"loadBalancer": {"ingress": [{"ip": "10.251.0.5"}, {"hostname": "x"}]}},
    ))
    assert (p.protocol, p.node_port, p.lb_ips, p.external_ips) == (
        "UDP", 30007, ("10.251.0.5",), ("10.251.0.50",))
    assert p.external_local and p.health_check_node_port == 32000


def test_node_port_and_external_policy_ignored_for_cluster_ip() -> None:
    (p,) = ServicePort.from_service(svc(ports=[{"port": 80, "nodePort": 30007}],
                                        externalTrafficPolicy="Local"))
    assert p.node_port is None and not p.external_local


def test_session_affinity_timeout() -> None:
    (p,) = ServicePort.from_service(svc(sessionAffinity="ClientIP"))
    assert p.session_affinity_timeout == 10800
    (p,) = ServicePort.from_service(svc(
        sessionAffinity="ClientIP", sessionAffinityConfig={"clientIP": {"timeoutSeconds": 5}}))
    assert p.session_affinity_timeout == 5


def test_unsupported_protocol_is_an_error() -> None:
    with pytest.raises(ValueError, match="unsupported protocol"):
        ServicePort.from_service(svc(ports=[{"port": 80, "protocol": "ICMP"}]))


def slice_(name: str, ports: list[dict[str, Any]], *eps: dict[str, Any], **meta: Any) -> Any:
    return {"metadata": {"namespace": meta.get("namespace", "shop"),
                         "labels": {"kubernetes.io/service-name": name}},
            "addressType": meta.get("address_type", "IPv4"), "ports": ports,
            "endpoints": list(eps)}


def test_endpoints_from_slices() -> None:
    (p,) = ServicePort.from_service(svc(ports=[{"name": "http", "port": 80}]))
    slices = [
        slice_("web", [{"name": "http", "port": 8080}],
               {"addresses": ["10.244.0.8"], "nodeName": "n1"},
               {"addresses": ["10.244.0.7"], "conditions": {"ready": False}}),
        slice_("web", [{"name": "http", "port": 8080}], {"addresses": ["10.244.0.8"]}),  # dup
        slice_("web", [{"name": "other", "port": 9}], {"addresses": ["10.244.0.9"]}),
        slice_("api", [{"name": "http", "port": 1}], {"addresses": ["10.244.0.10"]}),
        slice_("web", [{"name": "http", "port": 2}], {"addresses": ["10.244.0.11"]},
               namespace="other"),
        slice_("web", [{"name": "http", "port": 3}], {"addresses": ["fd00::1"]},
               address_type="IPv6"),
    ]
    assert endpoints_for(p, slices) == [
        Endpoint("10.244.0.7", 8080, ready=False, serving=False),
        Endpoint("10.244.0.8", 8080, node_name="n1"),
    ]


def test_usable_prefers_ready_then_serving_terminating() -> None:
    ready = Endpoint("10.244.0.7", 80, node_name="a")
    draining = Endpoint("10.244.0.8", 80, ready=False, serving=True, terminating=True,
                        node_name="b")
    dead = Endpoint("10.244.0.9", 80, ready=False, serving=False, terminating=True)
    assert usable([ready, draining, dead]) == [ready]
    assert usable([draining, dead]) == [draining]
    assert usable([dead]) == []
    assert usable([ready, draining], node_name="b") == [draining]
    assert usable([ready], node_name="b") == []
