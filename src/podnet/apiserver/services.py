"""Service admission: ClusterIP, NodePort and health-check port allocation on create/update.

Runs after defaulting and validation, before the store write. Every allocation it makes
is recorded in an `Undo` so a failed write gives the addresses and ports back.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from podnet.api.errors import Cause, duplicate, invalid_value
from podnet.apiserver.allocator import AllocationError, IPAllocator, PortAllocator

KUBERNETES_SERVICE_IP = "10.96.0.1"
DNS_SERVICE_IP = "10.96.0.10"


@dataclass
class Undo:
    actions: list[Callable[[], None]] = field(default_factory=list)

    def __call__(self) -> None:
        for action in reversed(self.actions):
            action()
        self.actions.clear()


def _needs_node_ports(spec: Mapping[str, Any]) -> bool:
    t = spec.get("type", "ClusterIP")
    if t == "NodePort":
        return True
    return t == "LoadBalancer" and spec.get("allocateLoadBalancerNodePorts", True) is not False


def _needs_health_check(spec: Mapping[str, Any]) -> bool:
    return (
        spec.get("type") == "LoadBalancer" and spec.get("externalTrafficPolicy") == "Local"
    )


def _cluster_ip_of(svc: Mapping[str, Any] | None) -> str:
    if not svc:
        return ""
    return str((svc.get("spec") or {}).get("clusterIP") or "")


@dataclass
class ServiceAllocations:
    ips: IPAllocator
    ports: PortAllocator

    @classmethod
    def create(
        cls,
        service_cidr: str = "10.96.0.0/12",
        node_port_range: tuple[int, int] = (30000, 32767),
        reserved: Iterable[str] = (KUBERNETES_SERVICE_IP, DNS_SERVICE_IP),
    ) -> ServiceAllocations:
        return cls(
            IPAllocator.from_cidr(service_cidr, reserved),
            PortAllocator(node_port_range[0], node_port_range[1]),
        )

    def rebuild(self, services: Iterable[Mapping[str, Any]]) -> None:
        """Mark every address and port the stored Services hold."""
        for svc in services:
            spec = svc.get("spec") or {}
            for ip in spec.get("clusterIPs") or [spec.get("clusterIP")]:
                if ip and ip != "None":
                    self.ips.mark(ip)
            for port in spec.get("ports") or []:
                if port.get("nodePort"):
                    self.ports.mark(int(port["nodePort"]))
            if spec.get("healthCheckNodePort"):
                self.ports.mark(int(spec["healthCheckNodePort"]))

    def admit(
        self, new: dict[str, Any], old: Mapping[str, Any] | None
    ) -> tuple[list[Cause], Undo]:
        """Allocate what `new` needs (mutating it) and free what it no longer holds.

        Frees are applied through `commit()` of the returned Undo's counterpart: to keep
        this simple, releases happen only after the write succeeds (see `released`).
        """
        undo = Undo()
        causes: list[Cause] = []
        spec: dict[str, Any] = new.setdefault("spec", {})
        old_spec: Mapping[str, Any] = (old or {}).get("spec") or {}
        svc_type = spec.get("type", "ClusterIP")

        # ClusterIP
        if svc_type != "ExternalName":
            requested = spec.get("clusterIP") or ""
            if not requested and spec.get("clusterIPs"):
                requested = spec["clusterIPs"][0]
            old_ip = _cluster_ip_of(old) if old_spec.get("type") != "ExternalName" else ""
            if requested == "None":
                spec["clusterIP"] = "None"
                spec["clusterIPs"] = ["None"]
            elif old_ip and old_ip != "None" and requested in ("", old_ip):
                spec["clusterIP"] = old_ip
                spec["clusterIPs"] = [old_ip]
            else:
                try:
                    ip = self.ips.allocate(requested or None)
                except AllocationError as e:
                    value = f'[]string{{"{requested}"}}' if requested else "[]string(nil)"
                    causes.append(Cause("FieldValueInvalid", "spec.clusterIPs",
                                        f"Invalid value: {value}: {e.detail}"))
                else:
                    undo.actions.append(functools.partial(self.ips.release, ip))
                    spec["clusterIP"] = ip
                    spec["clusterIPs"] = [ip]

        # NodePorts
        old_node_ports = {
            (p.get("port"), p.get("protocol", "TCP")): p.get("nodePort")
            for p in old_spec.get("ports") or []
            if p.get("nodePort")
        }
        old_held = set(old_node_ports.values())
        seen: dict[tuple[int, str], int] = {}
        if _needs_node_ports(spec):
            for i, port in enumerate(spec.get("ports") or []):
                proto = port.get("protocol", "TCP")
                want = port.get("nodePort")
                path = f"spec.ports[{i}].nodePort"
                if want and (int(want), proto) in seen:
                    causes.append(duplicate(path, int(want)))
                    continue
                if not want:
                    want = old_node_ports.get((port.get("port"), proto))
                    if want and want in old_held:
                        port["nodePort"] = want
                        seen[(int(want), proto)] = i
                        continue
                if want and want in old_held:
                    seen[(int(want), proto)] = i
                    continue
                # The same nodePort on another protocol in this Service is allowed.
                shared = [p for (p, _), _i in seen.items() if want and p == int(want)]
                if shared:
                    seen[(int(want), proto)] = i
                    continue
                try:
                    got = self.ports.allocate(int(want) if want else None)
                except AllocationError as e:
                    causes.append(invalid_value(path, int(want) if want else 0, e.detail))
                    continue
                undo.actions.append(functools.partial(self.ports.release, got))
                port["nodePort"] = got
                seen[(got, proto)] = i
        else:
            for port in spec.get("ports") or []:
                port.pop("nodePort", None)

        if _needs_health_check(spec):
            want = spec.get("healthCheckNodePort") or old_spec.get("healthCheckNodePort")
            if not (want and want == old_spec.get("healthCheckNodePort")):
                try:
                    got = self.ports.allocate(int(want) if want else None)
                except AllocationError as e:
                    causes.append(invalid_value("spec.healthCheckNodePort", want, e.detail))
                else:
                    undo.actions.append(functools.partial(self.ports.release, got))
                    spec["healthCheckNodePort"] = got
            else:
                spec["healthCheckNodePort"] = want
        else:
            spec.pop("healthCheckNodePort", None)

        if causes:
            undo()
        return causes, undo

    def released_by(self, new: Mapping[str, Any] | None, old: Mapping[str, Any]) -> None:
        """After a successful write: free what `old` held and `new` (None = deleted) does not."""
        new_spec: Mapping[str, Any] = (new or {}).get("spec") or {}
        old_spec: Mapping[str, Any] = old.get("spec") or {}
        old_ip = _cluster_ip_of(old)
        if old_ip and old_ip != "None" and old_ip != _cluster_ip_of(new):
            self.ips.release(old_ip)
        keep = {p.get("nodePort") for p in new_spec.get("ports") or [] if p.get("nodePort")}
        keep.add(new_spec.get("healthCheckNodePort"))
        for p in old_spec.get("ports") or []:
            if p.get("nodePort") and p["nodePort"] not in keep:
                self.ports.release(int(p["nodePort"]))
        hc = old_spec.get("healthCheckNodePort")
        if hc and hc not in keep:
            self.ports.release(int(hc))
