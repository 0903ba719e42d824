"""LoadBalancer IP assignment, as tables of Services → the ingress IPs they get."""

from __future__ import annotations

from typing import Any

from podnet.controllers.loadbalancer import Pool, plan

POOL = Pool.of("10.251.0.0/29")  # hosts .1 - .6


def svc(name: str, type_: str = "LoadBalancer", ip: str | None = None,
        requested: str | None = None, cls: str | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"type": type_}
    if requested:
        spec["loadBalancerIP"] = requested
    if cls:
        spec["loadBalancerClass"] = cls
    status = {"loadBalancer": {"ingress": [{"ip": ip}]} if ip else {}}
    return {"metadata": {"namespace": "default", "name": name}, "spec": spec, "status": status}


def test_new_services_get_the_lowest_free_addresses() -> None:
    assert plan([svc("a"), svc("b")], POOL) == {"default/a": ["10.251.0.1"],
                                                "default/b": ["10.251.0.2"]}


def test_existing_assignments_are_kept_and_skipped() -> None:
    assert plan([svc("a"), svc("z", ip="10.251.0.1")], POOL) == {
        "default/a": ["10.251.0.2"], "default/z": ["10.251.0.1"]}


def test_requested_ip_is_honoured_when_free() -> None:
    assert plan([svc("a", requested="10.251.0.5")], POOL) == {"default/a": ["10.251.0.5"]}


def test_not_load_balancers_or_other_classes_get_nothing() -> None:
    assert plan([svc("c", "ClusterIP", ip="10.251.0.3"), svc("k", cls="example.com/lb")],
                POOL) == {"default/c": [], "default/k": []}


def test_full_pool_leaves_the_service_pending() -> None:
    many = [svc(f"s{i}") for i in range(7)]
    result = plan(many, POOL)
    assert sum(1 for v in result.values() if v) == 6
    assert result["default/s6"] == []


def test_address_outside_the_pool_is_replaced() -> None:
    assert plan([svc("a", ip="192.0.2.9")], POOL) == {"default/a": ["10.251.0.1"]}
