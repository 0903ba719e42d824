"""Builders for the raw API objects controller tests feed in (as the API returns them)."""

from __future__ import annotations

from typing import Any

NOW = "2024-05-01T12:00:00Z"


def pod(
    name: str,
    ip: str | None = "10.244.0.5",
    *,
    ready: bool = True,
    labels: dict[str, str] | None = None,
    ns: str = "default",
    node: str = "node-1",
    phase: str = "Running",
    deleting: bool = False,
    ports: list[tuple[str, int]] | None = None,
    hostname: str = "",
    subdomain: str = "",
    owner: dict[str, Any] | None = None,
    created: str = "2024-05-01T11:00:00Z",
    ready_since: str = "2024-05-01T11:00:10Z",
    restarts: int = 0,
    uid: str = "",
    annotations: dict[str, str] | None = None,
) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "name": name,
        "namespace": ns,
        "uid": uid or f"uid-{name}",
        "labels": {"app": "web"} if labels is None else labels,
        "creationTimestamp": created,
        "resourceVersion": "1",
    }
    if deleting:
        meta["deletionTimestamp"] = NOW
    if owner is not None:
        meta["ownerReferences"] = [owner]
    if annotations:
        meta["annotations"] = annotations
    spec: dict[str, Any] = {
        "containers": [{
            "name": "c",
            "ports": [{"name": n, "containerPort": p, "protocol": "TCP"}
                      for n, p in (ports or [])],
        }],
    }
    if node:
        spec["nodeName"] = node
    if hostname:
        spec["hostname"] = hostname
    if subdomain:
        spec["subdomain"] = subdomain
    status: dict[str, Any] = {
        "phase": phase,
        "conditions": [{"type": "Ready", "status": "True" if ready else "False",
                        "lastTransitionTime": ready_since}],
        "containerStatuses": [{"name": "c", "restartCount": restarts}],
    }
    if ip:
        status["podIP"] = ip
        status["podIPs"] = [{"ip": ip}]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec, "status": status}


def service(
    name: str = "web",
    *,
    selector: dict[str, str] | None = None,
    ports: list[dict[str, Any]] | None = None,
    ns: str = "default",
    cluster_ip: str = "10.96.0.20",
    publish_not_ready: bool = False,
    type_: str = "ClusterIP",
    labels: dict[str, str] | None = None,
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "type": type_,
        "clusterIP": cluster_ip,
        "ports": [{"name": "http", "port": 80, "protocol": "TCP", "targetPort": 9376}]
        if ports is None else ports,
    }
    if selector != {}:
        spec["selector"] = {"app": "web"} if selector is None else selector
    if publish_not_ready:
        spec["publishNotReadyAddresses"] = True
    meta: dict[str, Any] = {"name": name, "namespace": ns, "uid": f"uid-svc-{name}"}
    if labels:
        meta["labels"] = labels
    return {"apiVersion": "v1", "kind": "Service", "metadata": meta, "spec": spec}
