"""A small kit for DNS tests: raw API objects in, zone-file lines out.

`Cluster` builds raw Services, EndpointSlices and Pods the way the API server returns
them and feeds them to whatever `apply` does (a Zone directly, or a running server);
subclasses implement `query`, which returns (rcode, answer, authority, additional) as
zone-file lines.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from podnet.dns.records import ZoneFeeder

Obj = dict[str, Any]
PortSpec = tuple[str, int, str]  # (name, port, protocol)
EndpointSpec = tuple[str, str, bool]  # (ip, hostname or "", ready)


def service(name: str, ns: str = "default", *, cluster_ip: str | None = None,
            ports: Sequence[PortSpec] = (), headless: bool = False,
            external_name: str | None = None, publish_not_ready: bool = False) -> Obj:
    spec: Obj = {"ports": [{"name": n, "port": p, "protocol": proto} for n, p, proto in ports]}
    if external_name is not None:
        spec.update(type="ExternalName", externalName=external_name)
    elif headless:
        spec.update(type="ClusterIP", clusterIP="None", clusterIPs=["None"])
    else:
        spec.update(type="ClusterIP", clusterIP=cluster_ip, clusterIPs=[cluster_ip])
    if publish_not_ready:
        spec["publishNotReadyAddresses"] = True
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": ns}, "spec": spec}


def endpoint_slice(service_name: str, ns: str = "default", *,
                   endpoints: Sequence[EndpointSpec] = (), ports: Sequence[PortSpec] = (),
                   name: str | None = None) -> Obj:
    eps: list[Obj] = []
    for ip, hostname, ready in endpoints:
        ep: Obj = {"addresses": [ip], "conditions": {"ready": ready}}
        if hostname:
            ep["hostname"] = hostname
        eps.append(ep)
    return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": name or f"{service_name}-abc12", "namespace": ns,
                         "labels": {"kubernetes.io/service-name": service_name}},
            "addressType": "IPv4", "endpoints": eps,
            "ports": [{"name": n, "port": p, "protocol": proto} for n, p, proto in ports]}


def pod(name: str, ns: str = "default", *, ip: str, hostname: str = "", subdomain: str = "",
        ready: bool = True) -> Obj:
    spec: Obj = {"containers": [{"name": "c", "image": "busybox"}]}
    if hostname:
        spec["hostname"] = hostname
    if subdomain:
        spec["subdomain"] = subdomain
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": ns},
            "spec": spec,
            "status": {"podIP": ip, "podIPs": [{"ip": ip}],
                       "conditions": [{"type": "Ready", "status": str(ready)}]}}


class Cluster:
    """Test-facing verbs; `apply` runs a feeder action wherever the zone lives."""

    def __init__(self, feeder: ZoneFeeder, apply: Callable[[Callable[[], None]], None]):
        self.feeder = feeder
        self.apply = apply

    def add_service(self, name: str, ns: str = "default", **kw: Any) -> None:
        obj = service(name, ns, **kw)
        self.apply(lambda: self.feeder.on_service("ADDED", obj))

    def delete_service(self, name: str, ns: str = "default") -> None:
        obj = service(name, ns, cluster_ip="")
        self.apply(lambda: self.feeder.on_service("DELETED", obj))

    def set_endpoints(self, service_name: str, ns: str = "default", **kw: Any) -> None:
        obj = endpoint_slice(service_name, ns, **kw)
        self.apply(lambda: self.feeder.on_slice("MODIFIED", obj))

    def add_pod(self, name: str, ns: str = "default", **kw: Any) -> None:
        obj = pod(name, ns, **kw)
        self.apply(lambda: self.feeder.on_pod("ADDED", obj))

    def delete_pod(self, name: str, ns: str = "default") -> None:
        obj = pod(name, ns, ip="")
        self.apply(lambda: self.feeder.on_pod("DELETED", obj))

    def query(self, name: str, rtype: str) -> tuple[str, list[str], list[str], list[str]]:
        raise NotImplementedError

    def ask(self, name: str, rtype: str) -> list[str]:
        """The answer section as zone-file lines (in the order served)."""
        return self.query(name, rtype)[1]

    def rcode(self, name: str, rtype: str) -> str:
        return self.query(name, rtype)[0]

    def authority(self, name: str, rtype: str) -> list[str]:
        return self.query(name, rtype)[2]

    def additional(self, name: str, rtype: str) -> list[str]:
        return self.query(name, rtype)[3]


SOA_LINE = ("cluster.local. 5 IN SOA ns.dns.cluster.local. hostmaster.cluster.local. "
            "1 7200 1800 86400 5")
