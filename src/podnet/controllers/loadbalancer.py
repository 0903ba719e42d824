"""LoadBalancer Services get an IP from podnet's pool (the cloud controller's job).

Pure part: `plan(services, pool)` decides, for every Service, the ingress IP it should
show (keeping what it has, honouring `spec.loadBalancerIP` when free, else the lowest
free address) and which IPs are free again. The reconciler writes `status.loadBalancer`.
Services with a `loadBalancerClass` are someone else's, as in Kubernetes.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from podnet.api.errors import StatusError
from podnet.controllers.base import SERVICES, Controller, Deps
from podnet.controllers.common import JSON, name_of, namespace_of

DEFAULT_POOL = "10.251.0.0/24"


def _ingress_ips(svc: Mapping[str, Any]) -> list[str]:
    lb = ((svc.get("status") or {}).get("loadBalancer") or {})
    return [i["ip"] for i in lb.get("ingress") or [] if i.get("ip")]


def wants_ip(svc: Mapping[str, Any]) -> bool:
    spec = svc.get("spec") or {}
    return spec.get("type") == "LoadBalancer" and not spec.get("loadBalancerClass")


@dataclass(frozen=True, slots=True)
class Pool:
    cidr: ipaddress.IPv4Network

    @classmethod
    def of(cls, cidr: str = DEFAULT_POOL) -> Pool:
        return cls(ipaddress.IPv4Network(cidr))

    def contains(self, ip: str) -> bool:
        try:
            return ipaddress.IPv4Address(ip) in self.cidr
        except ValueError:
            return False

    def hosts(self) -> Iterable[str]:
        return (str(h) for h in self.cidr.hosts())


def plan(services: Iterable[Mapping[str, Any]], pool: Pool) -> dict[str, list[str]]:
    """`ns/name` → the ingress IPs it should have (an empty list: none). Existing
    assignments win, then requested IPs, then the lowest free address; a full pool leaves
    the Service pending (no ingress), as a cloud without capacity would."""
    services = sorted(services, key=lambda s: (namespace_of(s), name_of(s)))
    used: set[str] = set()
    result: dict[str, list[str]] = {}
    for svc in services:
        key = f"{namespace_of(svc)}/{name_of(svc)}"
        if not wants_ip(svc):
            result[key] = []
            continue
        keep = [ip for ip in _ingress_ips(svc) if pool.contains(ip) and ip not in used]
        if keep:
            used.update(keep)
            result[key] = keep[:1]
    for svc in services:
        key = f"{namespace_of(svc)}/{name_of(svc)}"
        if key in result:
            continue
        requested = (svc.get("spec") or {}).get("loadBalancerIP")
        if requested and pool.contains(requested) and requested not in used:
            used.add(requested)
            result[key] = [requested]
            continue
        free = next((ip for ip in pool.hosts() if ip not in used), None)
        if free is None:
            result[key] = []
            continue
        used.add(free)
        result[key] = [free]
    return result


class LoadBalancerController(Controller):
    name = "service-lb-controller"

    def __init__(self, deps: Deps, pool: Pool | None = None) -> None:
        super().__init__(deps)
        self.pool = pool or Pool.of()
        self.services = deps.informers.informer(SERVICES)
        self.services.on_change(self.enqueue)

    async def sync(self, key: str) -> None:
        svc = self.services.cache.get(key)
        if svc is None:
            return
        if not wants_ip(svc):
            if not _ingress_ips(svc):
                return  # the common case, O(1): a Service that is no LoadBalancer of ours
            wanted: list[str] = []
        else:
            # Only LoadBalancer Services take part in the plan: an event on one of 10,000
            # Services must not re-plan all 10,000.
            lbs = [s for s in self.services.cache.list() if wants_ip(s)]
            wanted = plan(lbs, self.pool).get(key, [])
        if _ingress_ips(svc) == wanted:
            return
        status = dict(svc.get("status") or {})
        status["loadBalancer"] = {"ingress": [{"ip": ip, "ipMode": "VIP"} for ip in wanted]} \
            if wanted else {}
        body: JSON = {**svc, "status": status}
        try:
            await self.client.update_status(SERVICES, body)
        except StatusError as err:
            if err.code not in (404, 409):
                raise
            if err.code == 409:
                self.queue.add_rate_limited(key)
            return
        if wanted:
            await self.recorder.normal(svc, "EnsuredLoadBalancer", "Ensured load balancer")
