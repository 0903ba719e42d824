"""Packet walks over `ruleset.build()` (STYLE.md §4): what the node does with the first
packet of a connection. The same flows run with real sockets in
tests/kernel/test_proxy_packets.py.

The cluster: node-0 (10.250.0.2, pods 10.244.0.0/24) and node-1 (pods 10.244.1.0/24);
the host end of the node link is 10.250.0.1; pod 10.244.0.5 is a client with no Service.
"""

from __future__ import annotations

from typing import Any

import pytest

from podnet.proxy import ruleset
from podnet.proxy.ir import Ruleset
from podnet.proxy.ruleset import NodeInfo
from podnet.proxy.tracer import LOCAL, trace
from podnet.proxy.views import ServicePort, endpoints_for

NODE = NodeInfo(node_ip="10.250.0.2", node_name="node-0")
HOST = "10.250.0.1"
POD = "10.244.0.5"


def service(name: str, cluster_ip: str, ports: list[dict[str, Any]], **spec: Any) -> dict[str, Any]:
    status = spec.pop("status", {})
    return {
        "metadata": {"namespace": "default", "name": name},
        "spec": {"clusterIP": cluster_ip, "ports": ports, **spec},
        "status": status,
    }


def endpoint_slice(
    service_name: str, ports: list[dict[str, Any]], *endpoints: dict[str, Any]
) -> dict[str, Any]:
    return {
        "metadata": {"namespace": "default", "name": service_name + "-abc",
                     "labels": {"kubernetes.io/service-name": service_name}},
        "addressType": "IPv4",
        "ports": ports,
        "endpoints": list(endpoints),
    }


def ep(ip: str, node: str = "node-0", **conditions: bool) -> dict[str, Any]:
    return {"addresses": [ip], "nodeName": node,
            "conditions": conditions or {"ready": True}}


HTTP = [{"name": "http", "port": 80, "targetPort": 9376}]
SERVICES = [
    service("web", "10.96.0.20", [{**HTTP[0], "nodePort": 30007}], type="LoadBalancer",
            status={"loadBalancer": {"ingress": [{"ip": "10.251.0.5"}]}},
            externalIPs=["10.251.0.50"]),
    service("empty", "10.96.0.30", [{"port": 80, "nodePort": 30008}], type="NodePort"),
    service("local", "10.96.0.40", [{"port": 80, "targetPort": 8080, "nodePort": 30009}],
            type="NodePort", externalTrafficPolicy="Local"),
    service("named", "10.96.0.41", [{"name": "web", "port": 80, "targetPort": "http-alt"}]),
    service("dns", "10.96.0.10", [
        {"name": "dns", "port": 53, "protocol": "UDP", "targetPort": 5353},
        {"name": "dns-tcp", "port": 53, "protocol": "TCP", "targetPort": 5353},
        {"name": "metrics", "port": 9153, "protocol": "TCP"},
    ]),
    service("draining", "10.96.0.50", [{"port": 80}]),
    service("inside", "10.96.0.60", [{"port": 80}], internalTrafficPolicy="Local"),
    service("far", "10.96.0.61", [{"port": 80}], internalTrafficPolicy="Local"),
    service("sticky", "10.96.0.70", [{"port": 80}], sessionAffinity="ClientIP",
            sessionAffinityConfig={"clientIP": {"timeoutSeconds": 60}}),
    service("headless", "None", [{"port": 80}]),
    service("alias", "", [], type="ExternalName", externalName="example.com"),
]
SLICES = [
    endpoint_slice("web", [{"name": "http", "port": 9376}],
                   ep("10.244.0.7"), ep("10.244.0.8"), ep("10.244.1.9", "node-1")),
    endpoint_slice("local", [{"port": 8080}], ep("10.244.0.7"), ep("10.244.1.9", "node-1")),
    # The EndpointSlice controller resolved targetPort "http-alt" per pod: two ports.
    endpoint_slice("named", [{"name": "web", "port": 8080}], ep("10.244.0.7")),
    endpoint_slice("named", [{"name": "web", "port": 8081}], ep("10.244.0.8")),
    endpoint_slice("dns", [{"name": "dns", "port": 5353, "protocol": "UDP"},
                           {"name": "dns-tcp", "port": 5353, "protocol": "TCP"},
                           {"name": "metrics", "port": 9153, "protocol": "TCP"}],
                   ep("10.244.0.7")),
    endpoint_slice("draining", [{"port": 80}],
                   ep("10.244.0.7", ready=False, serving=True, terminating=True),
                   ep("10.244.0.8", ready=False, serving=False, terminating=True)),
    endpoint_slice("inside", [{"port": 80}], ep("10.244.0.7"), ep("10.244.1.9", "node-1")),
    endpoint_slice("far", [{"port": 80}], ep("10.244.1.9", "node-1")),
    endpoint_slice("sticky", [{"port": 80}], ep("10.244.0.7"), ep("10.244.0.8")),
]


def cluster() -> Ruleset:
    ports = [p for s in SERVICES for p in ServicePort.from_service(s)]
    return ruleset.build(ports, {p.key: endpoints_for(p, SLICES) for p in ports}, NODE)


RS = cluster()
WEB_ANY = "one of: dnat 10.244.0.7:9376 | dnat 10.244.0.8:9376 | dnat 10.244.1.9:9376"
WEB_ANY_MASQ = (
    "one of: dnat 10.244.0.7:9376 masquerade | dnat 10.244.0.8:9376 masquerade"
    " | dnat 10.244.1.9:9376 masquerade"
)

FLOWS = [
    # from         to                  proto  expected
    (POD,          "10.96.0.20:80",    "tcp", WEB_ANY),                     # ClusterIP spread
    (HOST,         "10.96.0.20:80",    "tcp", WEB_ANY_MASQ),                # from off the pod range
    (POD,          "10.96.0.30:80",    "tcp", "reject"),                    # no endpoints
    (POD,          "10.96.0.30:80",    "udp", "reject"),
    (POD,          "10.96.0.99:80",    "tcp", "reject"),             # service range, no service
    (POD,          "10.96.0.20:81",    "tcp", "reject"),             # a Service, not that port
    (POD,          "10.96.0.20:80",    "udp", "reject"),             # a Service, not that proto
    (HOST,         "10.250.0.2:30007", "tcp", WEB_ANY_MASQ),         # NodePort on the node IP
    (HOST,         "10.250.0.2:30008", "tcp", "reject"),             # NodePort, no endpoints
    (HOST,         "10.250.0.2:30010", "tcp", "accept"),             # no NodePort: not ours
    (HOST,         "10.250.0.3:30007", "tcp", "accept"),             # another node's IP
    (HOST,         "10.251.0.5:80",    "tcp", WEB_ANY_MASQ),                # LoadBalancer IP
    (HOST,         "10.251.0.50:80",   "tcp", WEB_ANY_MASQ),                # externalIP
    (HOST,         "10.251.0.6:80",    "tcp", "reject"),             # LB pool, not allocated
    ("10.244.0.7", "10.96.0.20:80",    "tcp",                        # hairpin
     "one of: dnat 10.244.0.7:9376 masquerade | dnat 10.244.0.8:9376"
     " | dnat 10.244.1.9:9376"),
    (HOST,         "10.250.0.2:30009", "tcp", "dnat 10.244.0.7:8080"),  # Local keeps the source
    (POD,          "10.250.0.2:30009", "tcp",                        # pods: cluster behaviour
     "one of: dnat 10.244.0.7:8080 | dnat 10.244.1.9:8080"),
    (POD,          "10.96.0.41:80",    "tcp",                        # named targetPort
     "one of: dnat 10.244.0.7:8080 | dnat 10.244.0.8:8081"),
    (POD,          "10.96.0.10:53",    "udp", "dnat 10.244.0.7:5353"),  # UDP
    (POD,          "10.96.0.10:53",    "tcp", "dnat 10.244.0.7:5353"),  # multi-port
    (POD,          "10.96.0.10:9153",  "tcp", "dnat 10.244.0.7:9153"),
    (POD,          "10.96.0.10:9153",  "udp", "reject"),
    (POD,          "10.96.0.50:80",    "tcp", "dnat 10.244.0.7:80"),    # serving-terminating
    (POD,          "10.96.0.60:80",    "tcp", "dnat 10.244.0.7:80"),    # internal Local
    (POD,          "10.96.0.61:80",    "tcp", "drop"),               # internal Local, none here
    (POD,          "10.244.0.8:9376",  "tcp", "accept"),             # pod IPs: untouched
]


@pytest.mark.parametrize(("src", "dst", "proto", "expected"), FLOWS)
def test_flows(src: str, dst: str, proto: str, expected: str) -> None:
    ip, port = dst.rsplit(":", 1)
    assert trace(RS, src, ip, int(port), proto).verdict == expected


def test_the_node_itself_goes_through_output() -> None:
    t = trace(RS, "10.250.0.2", "10.96.0.20", 80, "tcp", iif=LOCAL)
    assert t.verdict == WEB_ANY_MASQ
    assert trace(RS, "10.250.0.2", "10.96.0.99", 80, "tcp", iif=LOCAL).verdict == "reject"


def test_spread_is_even() -> None:
    t = trace(RS, POD, "10.96.0.20", 80)
    assert len(t.outcomes) == 3
    assert all(any("random" in step and "/3" in step for step in o.path) for o in t.outcomes)


def test_client_ip_affinity_remembers_the_client() -> None:
    t = trace(RS, POD, "10.96.0.70", 80)
    assert t.verdict == "one of: dnat 10.244.0.7:80 | dnat 10.244.0.8:80"
    for o in t.outcomes:
        assert any(f"remember client {POD}" in step for step in o.path), o.path


def test_headless_and_external_name_get_no_rules() -> None:
    names = {c for c in RS.labels.values()}
    assert not any("headless" in n or "alias" in n for n in names)


def test_path_explains_the_hops() -> None:
    (o, *_) = trace(RS, HOST, "10.250.0.2", 30007).outcomes
    text = "\n".join(o.path)
    assert "service-nodeports[tcp . 30007]" in text
    assert "mark for masquerade" in text
    assert "default/web:http/tcp" in text
    assert "nat-postrouting: masquerade" in text
    (r,) = trace(RS, POD, "10.96.0.99", 80).outcomes
    assert r.path[-1] == "reject-service: reject (tcp reset)"
    (u,) = trace(RS, POD, "10.96.0.99", 80, "udp").outcomes
    assert u.path[-1] == "reject-service: reject (port-unreachable)"
