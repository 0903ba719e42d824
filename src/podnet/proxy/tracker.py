"""Change tracking: the previous and current inputs of every service port, so a sync
computes pieces only for the ports whose Service or EndpointSlices changed. Pure.

The proxier hands over one Service (or None, when deleted) with the EndpointSlices
labelled for it; `changes` answers with the ports whose (view, endpoints) differ from
what was last seen — their new `ruleset.piece`, or None for a port that went — and
nothing for ports that stayed the same, so an unchanged Service costs a comparison.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

from podnet.proxy import ruleset
from podnet.proxy.healthcheck import Target
from podnet.proxy.ir import (
    Piece,
    PortKey,
)
from podnet.proxy.ruleset import (
    NodeInfo,
)
from podnet.proxy.views import Endpoint, ServicePort, endpoints_for


def health_target(port: ServicePort, endpoints: Iterable[Endpoint], node_name: str) -> Target:
    """What `port`'s healthCheckNodePort reports: its ready endpoints on this node."""
    local = sum(1 for e in endpoints if e.ready and e.node_name == node_name)
    return Target(port.namespace, port.name, local)


class ServiceTracker:
    def __init__(self, node: NodeInfo) -> None:
        self.node = node
        self.pieces: dict[PortKey, Piece] = {}
        self._inputs: dict[PortKey, tuple[ServicePort, tuple[Endpoint, ...]]] = {}
        self._ports: dict[tuple[str, str], set[PortKey]] = {}
        self._udp: Counter[str] = Counter()
        self._health: dict[PortKey, tuple[int, Target]] = {}

    def changes(self, namespace: str, name: str, service: Mapping[str, Any] | None,
                slices: Iterable[Mapping[str, Any]]) -> dict[PortKey, Piece | None]:
        """Record the current state of one Service; the ports that changed."""
        slices = list(slices)
        ports = ServicePort.from_service(service) if service is not None else []
        seen: set[PortKey] = set()
        fresh: list[tuple[ServicePort, tuple[Endpoint, ...], Piece]] = []
        for port in ports:  # everything that may raise, before any state changes
            eps = tuple(endpoints_for(port, slices))
            seen.add(port.key)
            if self._inputs.get(port.key) != (port, eps):
                fresh.append((port, eps, ruleset.piece(port, eps, self.node)))
        out: dict[PortKey, Piece | None] = {}
        for port, eps, pc in fresh:
            self._forget(port.key)
            self._inputs[port.key] = (port, eps)
            if port.protocol == "UDP":
                self._udp.update({e.ip for e in eps})
            hc = port.health_check_node_port
            if hc:
                self._health[port.key] = (hc, health_target(port, eps, self.node.node_name))
            self.pieces[port.key] = pc
            out[port.key] = pc
        for key in self._ports.get((namespace, name), set()) - seen:
            self._forget(key)
            out[key] = None
        if seen:
            self._ports[(namespace, name)] = seen
        else:
            self._ports.pop((namespace, name), None)
        return out

    def _forget(self, key: PortKey) -> None:
        old = self._inputs.pop(key, None)
        self.pieces.pop(key, None)
        self._health.pop(key, None)
        if old is not None and old[0].protocol == "UDP":
            self._udp.subtract({e.ip for e in old[1]})
            self._udp = +self._udp

    def udp_endpoints(self) -> frozenset[str]:
        """Addresses some UDP service port may send to (for conntrack cleanup)."""
        return frozenset(self._udp)

    def health_targets(self) -> dict[int, Target]:
        """healthCheckNodePort → what it reports (the first port by key wins a clash)."""
        out: dict[int, Target] = {}
        for _, (hc, target) in sorted(self._health.items()):
            out.setdefault(hc, target)
        return out
