"""The `default/kubernetes` Service and its Endpoints and EndpointSlice, pointing at the
API server — what kube-apiserver's own endpoint reconciler maintains in a real cluster
(pkg/controlplane/controller/kubernetesservice and pkg/controlplane/reconcilers).

Pods reach the API server at 10.96.0.1:443 (and `kubernetes.default.svc`) through it.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from podnet.api.errors import StatusError
from podnet.api.resources import ResourceType
from podnet.client.informer import Informer
from podnet.controllers.base import ENDPOINTS, ENDPOINTSLICES, SERVICES, Controller, Deps
from podnet.controllers.common import JSON, meta, name_of, namespace_of

NAME = "kubernetes"
NAMESPACE = "default"
KEY = f"{NAMESPACE}/{NAME}"
CLUSTER_IP = "10.96.0.1"
RESYNC_SECONDS = 60.0


def desired_service(target_port: int, cluster_ip: str = CLUSTER_IP) -> JSON:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": NAME,
            "namespace": NAMESPACE,
            "labels": {"component": "apiserver", "provider": "kubernetes"},
        },
        "spec": {
            "type": "ClusterIP",
            "clusterIP": cluster_ip,
            "clusterIPs": [cluster_ip],
            "ipFamilies": ["IPv4"],
            "ipFamilyPolicy": "SingleStack",
            "internalTrafficPolicy": "Cluster",
            "sessionAffinity": "None",
            "ports": [{"name": "https", "port": 443, "protocol": "TCP",
                       "targetPort": target_port}],
        },
    }


def desired_endpoints(address: str, port: int) -> JSON:
    """The apiserver marks these Endpoints skip-mirror: it writes the slice itself."""
    return {
        "apiVersion": "v1",
        "kind": "Endpoints",
        "metadata": {
            "name": NAME,
            "namespace": NAMESPACE,
            "labels": {"endpointslice.kubernetes.io/skip-mirror": "true"},
        },
        "subsets": [{
            "addresses": [{"ip": address}],
            "ports": [{"name": "https", "port": port, "protocol": "TCP"}],
        }],
    }


def desired_slice(address: str, port: int) -> JSON:
    """As the apiserver's EndpointsAdapter writes it: named `kubernetes`, only the
    service-name label, ready endpoint, no owner."""
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": NAME,
            "namespace": NAMESPACE,
            "labels": {"kubernetes.io/service-name": NAME},
        },
        "addressType": "IPv4",
        "endpoints": [{"addresses": [address], "conditions": {"ready": True}}],
        "ports": [{"name": "https", "port": port, "protocol": "TCP"}],
    }


# Fields we own in each object; anything else (defaults the server adds) is left alone.
_OWNED: Mapping[str, tuple[str, ...]] = {
    "Service": (),
    "Endpoints": ("subsets",),
    "EndpointSlice": ("addressType", "endpoints", "ports"),
}


def needs_update(current: Mapping[str, Any], desired: Mapping[str, Any]) -> JSON | None:
    """`current` with our fields put back, or None if nothing of ours changed.

    For the Service only labels and ports are reconciled (clusterIP is immutable; a
    different one needs a human)."""
    out = copy.deepcopy(dict(current))
    labels = out.setdefault("metadata", {}).setdefault("labels", {})
    for k, v in (meta(desired).get("labels") or {}).items():
        labels[k] = v
    if desired.get("kind") == "Service":
        out.setdefault("spec", {})["ports"] = copy.deepcopy(desired["spec"]["ports"])
        cur_ports = [
            {k: p.get(k) for k in ("name", "port", "protocol", "targetPort")}
            for p in (current.get("spec") or {}).get("ports") or []
        ]
        changed = cur_ports != desired["spec"]["ports"]
    else:
        changed = False
        for f in _OWNED[str(desired.get("kind"))]:
            if current.get(f) != desired.get(f):
                out[f] = copy.deepcopy(desired[f])
                changed = True
    if labels != (meta(current).get("labels") or {}):
        changed = True
    return out if changed else None


class KubernetesServiceController(Controller):
    name = "kubernetes-service-controller"

    def __init__(self, deps: Deps, address: str, port: int,
                 cluster_ip: str = CLUSTER_IP) -> None:
        super().__init__(deps)
        self.address, self.port, self.cluster_ip = address, port, cluster_ip
        self.watched: list[tuple[ResourceType, Informer]] = []
        for rt in (SERVICES, ENDPOINTS, ENDPOINTSLICES):
            inf = deps.informers.informer(rt)
            inf.on_change(self._changed)
            self.watched.append((rt, inf))

    def _changed(self, obj: JSON) -> None:
        if namespace_of(obj) == NAMESPACE and name_of(obj) == NAME:
            self.queue.add(KEY)

    def start(self) -> None:
        self.queue.add(KEY)

    async def sync(self, key: str) -> None:
        wanted = (
            desired_service(self.port, self.cluster_ip),
            desired_endpoints(self.address, self.port),
            desired_slice(self.address, self.port),
        )
        for (rt, inf), desired in zip(self.watched, wanted, strict=True):
            current = inf.cache.get(KEY)
            if current is None:
                try:
                    await self.client.create(rt, desired)
                except StatusError as err:
                    if err.reason != "AlreadyExists":
                        raise
                continue
            update = needs_update(current, desired)
            if update is not None:
                await self.client.update(rt, update)
        self.queue.add_after(key, RESYNC_SECONDS)
