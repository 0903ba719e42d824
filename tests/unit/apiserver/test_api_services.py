"""Service admission through HTTP: ClusterIP and NodePort allocation, the errors
Kubernetes 1.32 gives for taken or out-of-range values, release on delete, type changes
and defaults."""

from __future__ import annotations

import ipaddress
from collections.abc import AsyncIterator
from typing import Any

import pytest

from podnet.testing.apiserver import InProcessApi, running_api
from tests.unit.apiserver.support import SERVICES, created, list_rv, service, status_of

SERVICE_CIDR = ipaddress.ip_network("10.96.0.0/12")


@pytest.fixture
async def api() -> AsyncIterator[InProcessApi]:
    async with running_api() as a:
        yield a


async def invalid(api: InProcessApi, obj: dict[str, Any]) -> tuple[str, list[dict[str, str]]]:
    """POST a Service that must be refused with 422; (message, causes); store unchanged."""
    before = await list_rv(api, SERVICES)
    code, body, _ = await api.post(SERVICES, obj)
    assert code == 422, body
    reason, message = status_of(body)
    assert reason == "Invalid"
    assert await list_rv(api, SERVICES) == before
    causes: list[dict[str, str]] = body["details"]["causes"]
    return message, causes


async def test_cluster_ip_allocated_in_range(api: InProcessApi) -> None:
    ips = set()
    for i in range(20):
        svc = await created(api, SERVICES, service(f"s{i}"))
        ip = svc["spec"]["clusterIP"]
        assert ipaddress.ip_address(ip) in SERVICE_CIDR
        assert ip not in ("10.96.0.1", "10.96.0.10", "10.96.0.0")
        assert svc["spec"]["clusterIPs"] == [ip]
        ips.add(ip)
    assert len(ips) == 20


async def test_defaults(api: InProcessApi) -> None:
    svc = await created(api, SERVICES, service("web", 80))
    spec = svc["spec"]
    assert spec["type"] == "ClusterIP"
    assert spec["ports"] == [{"port": 80, "protocol": "TCP", "targetPort": 80}]
    assert spec["sessionAffinity"] == "None"
    assert spec["ipFamilies"] == ["IPv4"]
    assert spec["ipFamilyPolicy"] == "SingleStack"
    assert spec["internalTrafficPolicy"] == "Cluster"
    assert svc["status"] == {"loadBalancer": {}}
    assert "externalTrafficPolicy" not in spec  # only for NodePort / LoadBalancer


async def test_node_port_defaults(api: InProcessApi) -> None:
    svc = await created(api, SERVICES, service("np", 80, type="NodePort"))
    assert svc["spec"]["externalTrafficPolicy"] == "Cluster"
    assert 30000 <= svc["spec"]["ports"][0]["nodePort"] <= 32767


async def test_requested_cluster_ip_taken(api: InProcessApi) -> None:
    await created(api, SERVICES, service("kubernetes", 443, clusterIP="10.96.0.1"))
    message, causes = await invalid(api, service("other", clusterIP="10.96.0.1"))
    detail = ('Invalid value: []string{"10.96.0.1"}: failed to allocate IP 10.96.0.1: '
              "provided IP is already allocated")
    assert causes == [{"reason": "FieldValueInvalid", "field": "spec.clusterIPs",
                       "message": detail}]
    assert message == f'Service "other" is invalid: spec.clusterIPs: {detail}'


async def test_requested_cluster_ip_taken_cause(api: InProcessApi) -> None:
    # The cause is right apart from the Go-style value formatting (see the test above).
    await created(api, SERVICES, service("a", clusterIP="10.96.0.50"))
    code, body, _ = await api.post(SERVICES, service("b", clusterIP="10.96.0.50"))
    assert code == 422
    cause = body["details"]["causes"][0]
    assert cause["field"] == "spec.clusterIPs"
    assert cause["message"].endswith(
        "failed to allocate IP 10.96.0.50: provided IP is already allocated")


async def test_requested_cluster_ip_out_of_range(api: InProcessApi) -> None:
    message, _ = await invalid(api, service("other", clusterIP="10.0.0.5"))
    assert message == (
        'Service "other" is invalid: spec.clusterIPs: Invalid value: []string{"10.0.0.5"}: '
        "failed to allocate IP 10.0.0.5: the provided IP (10.0.0.5) is not in the valid "
        "range. The range of valid IPs is 10.96.0.0/12")


async def test_requested_free_cluster_ip(api: InProcessApi) -> None:
    svc = await created(api, SERVICES, service("dns", 53, clusterIP="10.96.0.10"))
    assert svc["spec"]["clusterIP"] == "10.96.0.10"


async def test_node_port_allocated_in_range(api: InProcessApi) -> None:
    obj = service("np", 80, 443, type="NodePort")
    obj["spec"]["ports"][0]["name"] = "http"
    obj["spec"]["ports"][1]["name"] = "https"
    svc = await created(api, SERVICES, obj)
    ports = [p["nodePort"] for p in svc["spec"]["ports"]]
    assert all(30000 <= p <= 32767 for p in ports)
    assert len(set(ports)) == 2


async def test_node_port_out_of_range(api: InProcessApi) -> None:
    obj = service("np", type="NodePort")
    obj["spec"]["ports"][0]["nodePort"] = 80
    message, causes = await invalid(api, obj)
    detail = ("Invalid value: 80: provided port is not in the valid range. The range of "
              "valid ports is 30000-32767")
    assert message == f'Service "np" is invalid: spec.ports[0].nodePort: {detail}'
    assert causes == [{"reason": "FieldValueInvalid", "field": "spec.ports[0].nodePort",
                       "message": detail}]


async def test_node_port_taken(api: InProcessApi) -> None:
    a = service("a", type="NodePort")
    a["spec"]["ports"][0]["nodePort"] = 30080
    await created(api, SERVICES, a)
    b = service("b", type="NodePort")
    b["spec"]["ports"][0]["nodePort"] = 30080
    message, _ = await invalid(api, b)
    assert message == ('Service "b" is invalid: spec.ports[0].nodePort: Invalid value: 30080: '
                       "provided port is already allocated")


async def test_failed_create_releases_what_it_allocated(api: InProcessApi) -> None:
    taken = service("taken", type="NodePort")
    taken["spec"]["ports"][0]["nodePort"] = 30001
    await created(api, SERVICES, taken)
    # Port 0 allocates 30002, port 1 collides: nothing may stay allocated.
    obj = service("bad", 80, 81, type="NodePort", clusterIP="10.96.0.77")
    obj["spec"]["ports"][0]["nodePort"] = 30002
    obj["spec"]["ports"][1]["nodePort"] = 30001
    obj["spec"]["ports"][0]["name"] = "a"
    obj["spec"]["ports"][1]["name"] = "b"
    await invalid(api, obj)
    again = service("good", type="NodePort", clusterIP="10.96.0.77")
    again["spec"]["ports"][0]["nodePort"] = 30002
    svc = await created(api, SERVICES, again)
    assert svc["spec"]["clusterIP"] == "10.96.0.77"


async def test_delete_frees_ip_and_port(api: InProcessApi) -> None:
    obj = service("a", type="NodePort", clusterIP="10.96.0.42")
    obj["spec"]["ports"][0]["nodePort"] = 30042
    await created(api, SERVICES, obj)
    code, _, _ = await api.delete(f"{SERVICES}/a")
    assert code == 200
    obj["metadata"]["name"] = "b"
    svc = await created(api, SERVICES, obj)
    assert svc["spec"]["clusterIP"] == "10.96.0.42"
    assert svc["spec"]["ports"][0]["nodePort"] == 30042


async def test_type_changes(api: InProcessApi) -> None:
    svc = await created(api, SERVICES, service("t", 80))
    ip = svc["spec"]["clusterIP"]
    # ClusterIP -> NodePort keeps the clusterIP and allocates a nodePort.
    code, np, _ = await api.patch(f"{SERVICES}/t", {"spec": {"type": "NodePort"}})
    assert code == 200, np
    assert np["spec"]["clusterIP"] == ip
    node_port = np["spec"]["ports"][0]["nodePort"]
    assert 30000 <= node_port <= 32767
    # NodePort -> ClusterIP drops the nodePort (and frees it).
    code, back, _ = await api.patch(f"{SERVICES}/t", {"spec": {"type": "ClusterIP"}})
    assert code == 200, back
    assert "nodePort" not in back["spec"]["ports"][0]
    assert back["spec"]["clusterIP"] == ip
    other = service("o", type="NodePort")
    other["spec"]["ports"][0]["nodePort"] = node_port
    await created(api, SERVICES, other)
    # -> ExternalName clears clusterIP(s) and frees the address.
    code, ext, _ = await api.patch(f"{SERVICES}/t", {"spec": {
        "type": "ExternalName", "externalName": "example.com"}})
    assert code == 200, ext
    assert "clusterIP" not in ext["spec"] and "clusterIPs" not in ext["spec"]
    assert "ipFamilies" not in ext["spec"] and "ipFamilyPolicy" not in ext["spec"]
    reuse = await created(api, SERVICES, service("reuse", clusterIP=ip))
    assert reuse["spec"]["clusterIP"] == ip
    # ExternalName -> ClusterIP allocates a fresh address.
    code, again, _ = await api.patch(f"{SERVICES}/t", {"spec": {
        "type": "ClusterIP", "externalName": None}})
    assert code == 200, again
    new_ip = again["spec"]["clusterIP"]
    assert ipaddress.ip_address(new_ip) in SERVICE_CIDR and new_ip != ip
    assert again["spec"]["clusterIPs"] == [new_ip]


async def test_cluster_ip_is_immutable(api: InProcessApi) -> None:
    svc = await created(api, SERVICES, service("imm"))
    code, body, _ = await api.patch(f"{SERVICES}/imm", {"spec": {"clusterIP": "10.96.0.99"}})
    assert code == 422
    reason, message = status_of(body)
    assert reason == "Invalid"
    assert message == ('Service "imm" is invalid: spec.clusterIPs[0]: Invalid value: '
                       '[]string{"10.96.0.99"}: may not change once set')
    code, got, _ = await api.get(f"{SERVICES}/imm")
    assert got["spec"]["clusterIP"] == svc["spec"]["clusterIP"]


async def test_put_without_cluster_ip_keeps_it(api: InProcessApi) -> None:
    svc = await created(api, SERVICES, service("keep", type="NodePort"))
    ip = svc["spec"]["clusterIP"]
    node_port = svc["spec"]["ports"][0]["nodePort"]
    fresh = service("keep", type="NodePort")
    fresh["metadata"]["labels"] = {"a": "b"}
    code, body, _ = await api.put(f"{SERVICES}/keep", fresh)
    assert code == 200, body
    assert body["spec"]["clusterIP"] == ip
    assert body["spec"]["ports"][0]["nodePort"] == node_port


async def test_headless(api: InProcessApi) -> None:
    svc = await created(api, SERVICES, service("h", 80, clusterIP="None"))
    assert svc["spec"]["clusterIP"] == "None"
    assert svc["spec"]["clusterIPs"] == ["None"]
    # A second headless service is fine: "None" is not an address.
    svc2 = await created(api, SERVICES, service("h2", 80, clusterIP="None"))
    assert svc2["spec"]["clusterIP"] == "None"


async def test_external_name_has_no_cluster_ip(api: InProcessApi) -> None:
    obj = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "ext"},
           "spec": {"type": "ExternalName", "externalName": "example.com"}}
    svc = await created(api, SERVICES, obj)
    assert "clusterIP" not in svc["spec"]


async def test_ports_required(api: InProcessApi) -> None:
    obj = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "noports"},
           "spec": {"selector": {"a": "b"}}}
    message, _ = await invalid(api, obj)
    assert message == 'Service "noports" is invalid: spec.ports: Required value'


async def test_duplicate_node_port_in_one_service(api: InProcessApi) -> None:
    obj = service("dup", 80, 81, type="NodePort")
    for i, p in enumerate(obj["spec"]["ports"]):
        p["name"] = f"p{i}"
        p["nodePort"] = 30500
    _, causes = await invalid(api, obj)
    assert causes[0]["field"] == "spec.ports[1].nodePort"
    assert causes[0]["message"] == "Duplicate value: 30500"
