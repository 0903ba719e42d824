"""Small frozen views of Services and EndpointSlices: the proxy's input, converted once at
the boundary (DESIGN.md principle 4). Pure: no I/O.

`ServicePort.from_service(svc)` gives one view per port of a Service that gets rules
(none for headless or ExternalName Services). `endpoints_for(port, slices)` gives the
endpoints of one service port from its EndpointSlices, with the slice's port number
(which the EndpointSlice controller has already resolved per pod for a named
targetPort). `usable(endpoints, node_name)` picks the ones traffic may go to: ready
ones, else serving-and-terminating ones (Kubernetes' fallback, KEP-1669).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address
from typing import Any, Literal

Protocol = Literal["TCP", "UDP", "SCTP"]
PROTOCOLS: tuple[Protocol, ...] = ("TCP", "UDP", "SCTP")
SERVICE_NAME_LABEL = "kubernetes.io/service-name"
# Kubernetes' default and maximum for sessionAffinityConfig.clientIP.timeoutSeconds.
DEFAULT_AFFINITY_TIMEOUT = 10800


def _ipv4(value: object) -> str | None:
    """The address if it is IPv4 text, else None (IPv6 and junk get no rules here)."""
    if not isinstance(value, str):
        return None
    try:
        return str(IPv4Address(value))
    except ValueError:
        return None


def _protocol(value: object) -> Protocol:
    if value is None:
        return "TCP"
    if value not in PROTOCOLS:
        raise ValueError(f"unsupported protocol {value!r}")
    return value


@dataclass(frozen=True, slots=True)
class ServicePort:
    """One port of one Service, with everything the ruleset needs to serve it."""

    namespace: str
    name: str
    port_name: str
    protocol: Protocol
    cluster_ip: str | None
    port: int
    node_port: int | None = None
    target_port: int | str | None = None
    session_affinity_timeout: int | None = None  # seconds; None: no ClientIP affinity
    external_ips: tuple[str, ...] = ()
    lb_ips: tuple[str, ...] = ()
    external_local: bool = False  # externalTrafficPolicy: Local
    internal_local: bool = False  # internalTrafficPolicy: Local
    health_check_node_port: int | None = None

    @property
    def key(self) -> tuple[str, str, str, str]:
        """What identifies this port across changes (and names its chains)."""
        return (self.namespace, self.name, self.port_name, self.protocol)

    @property
    def label(self) -> str:
        """`ns/name:port` as users write it (logs, rule comments, trace)."""
        port = self.port_name or str(self.port)
        return f"{self.namespace}/{self.name}:{port}/{self.protocol.lower()}"

    @classmethod
    def from_service(cls, svc: Mapping[str, Any]) -> list[ServicePort]:
        meta: Mapping[str, Any] = svc.get("metadata") or {}
        spec: Mapping[str, Any] = svc.get("spec") or {}
        status: Mapping[str, Any] = svc.get("status") or {}
        kind = spec.get("type") or "ClusterIP"
        if kind == "ExternalName":
            return []
        cluster_ip = _ipv4(spec.get("clusterIP"))
        if cluster_ip is None:
            # Headless ("None") or IPv6-only: DNS answers with endpoints; no VIP to serve.
            return []
        affinity_timeout: int | None = None
        if spec.get("sessionAffinity") == "ClientIP":
            cfg = ((spec.get("sessionAffinityConfig") or {}).get("clientIP") or {})
            affinity_timeout = int(cfg.get("timeoutSeconds") or DEFAULT_AFFINITY_TIMEOUT)
        external_ips = tuple(
            ip for ip in (_ipv4(x) for x in spec.get("externalIPs") or ()) if ip is not None
        )
        lb_ips: tuple[str, ...] = ()
        if kind == "LoadBalancer":
            ingress = (status.get("loadBalancer") or {}).get("ingress") or ()
            lb_ips = tuple(
                ip for ip in (_ipv4(i.get("ip")) for i in ingress) if ip is not None
            )
        node_ports = kind in ("NodePort", "LoadBalancer")
        # Kubernetes only honours externalTrafficPolicy where there is external traffic.
        external_local = (
            spec.get("externalTrafficPolicy") == "Local"
            and (node_ports or bool(external_ips))
        )
        hc = spec.get("healthCheckNodePort") if external_local else None
        ports = []
        for p in spec.get("ports") or ():
            node_port = p.get("nodePort") if node_ports else None
            ports.append(
                cls(
                    namespace=str(meta.get("namespace") or "default"),
                    name=str(meta.get("name") or ""),
                    port_name=str(p.get("name") or ""),
                    protocol=_protocol(p.get("protocol")),
                    cluster_ip=cluster_ip,
                    port=int(p["port"]),
                    node_port=int(node_port) if node_port else None,
                    target_port=p.get("targetPort", p["port"]),
                    session_affinity_timeout=affinity_timeout,
                    external_ips=external_ips,
                    lb_ips=lb_ips,
                    external_local=external_local,
                    internal_local=spec.get("internalTrafficPolicy") == "Local",
                    health_check_node_port=int(hc) if hc else None,
                )
            )
        return ports


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One address:port behind one service port, with its EndpointSlice conditions."""

    ip: str
    port: int
    ready: bool = True
    serving: bool = True
    terminating: bool = False
    node_name: str | None = None

    @property
    def address(self) -> str:
        return f"{self.ip}:{self.port}"


def _slice_port(slice_: Mapping[str, Any], port: ServicePort) -> int | None:
    """The slice's port number for `port`: the slice port with the same name and
    protocol (the EndpointSlice controller copies the service port's name)."""
    for sp in slice_.get("ports") or ():
        if str(sp.get("name") or "") == port.port_name and (
            _protocol(sp.get("protocol")) == port.protocol
        ):
            number = sp.get("port")
            return int(number) if number else None
    return None


def endpoints_for(port: ServicePort, slices: Iterable[Mapping[str, Any]]) -> list[Endpoint]:
    """Every IPv4 endpoint of `port` in the EndpointSlices of its Service, whatever its
    conditions (`usable` decides), deduplicated by address:port across slices, sorted.

    Slices of other Services or namespaces are ignored, so callers may pass a superset.
    Conditions follow the API's rules: a missing `ready` means ready, a missing
    `serving` means the same as `ready`, a missing `terminating` means not terminating."""
    found: dict[tuple[str, int], Endpoint] = {}
    for s in slices:
        meta = s.get("metadata") or {}
        labels = meta.get("labels") or {}
        if meta.get("namespace", port.namespace) != port.namespace:
            continue
        if labels.get(SERVICE_NAME_LABEL) != port.name:
            continue
        if s.get("addressType", "IPv4") != "IPv4":
            continue
        number = _slice_port(s, port)
        if number is None:
            continue
        for ep in s.get("endpoints") or ():
            cond = ep.get("conditions") or {}
            ready = cond.get("ready") is not False
            serving = cond["serving"] is not False if cond.get("serving") is not None else ready
            terminating = cond.get("terminating") is True
            node = ep.get("nodeName")
            for raw in ep.get("addresses") or ():
                ip = _ipv4(raw)
                if ip is None or (ip, number) in found:
                    continue
                found[(ip, number)] = Endpoint(ip, number, ready, serving, terminating, node)
    return sorted(found.values(), key=lambda e: (IPv4Address(e.ip), e.port))


def usable(endpoints: Sequence[Endpoint], node_name: str | None = None) -> list[Endpoint]:
    """The endpoints traffic may go to, among those on `node_name` when given (the Local
    traffic policies): the ready ones; if there are none, the serving-and-terminating
    ones, so connections keep working while a rollout drains the last pods (Kubernetes
    "ProxyTerminatingEndpoints")."""
    candidates = [e for e in endpoints if node_name is None or e.node_name == node_name]
    ready = [e for e in candidates if e.ready]
    if ready:
        return ready
    return [e for e in candidates if e.serving and e.terminating]
