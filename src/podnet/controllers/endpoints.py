"""The v1 Endpoints object for a Service — pure (pkg/controller/endpoint).

Same inputs as `endpointslice.desired_slices`, the older shape: `subsets`, each a set of
addresses (ready) and notReadyAddresses sharing one list of ports, packed the way
`endpoints.RepackSubsets` packs them. Differences from slices that Kubernetes keeps:
terminating pods are left out unless publishNotReadyAddresses is set, and there are no
conditions beyond ready / not ready.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from podnet.controllers.common import (
    JSON,
    is_pod_ready,
    labels_of,
    name_of,
    namespace_of,
    rfc3339,
    uid_of,
)
from podnet.controllers.endpointslice import (
    LABEL_HEADLESS,
    TRIGGER_TIME,
    find_port,
    is_headless,
    manages,
    pod_ipv4,
    selected_pods,
    should_pod_be_in_endpoints,
    should_set_hostname,
)


def endpoint_address(pod: Mapping[str, Any], service: Mapping[str, Any], ip: str) -> JSON:
    """podToEndpointAddressForService, with the hostname rule applied."""
    addr: JSON = {"ip": ip}
    spec = pod.get("spec") or {}
    if should_set_hostname(pod, service):
        addr["hostname"] = spec["hostname"]
    if spec.get("nodeName"):
        addr["nodeName"] = spec["nodeName"]
    addr["targetRef"] = {
        "kind": "Pod",
        "namespace": namespace_of(pod),
        "name": name_of(pod),
        "uid": uid_of(pod),
    }
    return addr


def _port(sp: Mapping[str, Any], number: int) -> JSON:
    """endpointPortFromServicePort: name omitted when empty (omitempty)."""
    port: JSON = {}
    if sp.get("name"):
        port["name"] = sp["name"]
    port["port"] = number
    port["protocol"] = sp.get("protocol") or "TCP"
    if sp.get("appProtocol"):
        port["appProtocol"] = sp["appProtocol"]
    return port


def desired_endpoints(
    service: Mapping[str, Any],
    pods: Sequence[Mapping[str, Any]],
    now: datetime | None = None,
) -> JSON | None:
    """The Endpoints object for `service`, or None if the controller does not manage it
    (no selector; ExternalName)."""
    if not manages(service):
        return None
    spec = service.get("spec") or {}
    publish_not_ready = bool(spec.get("publishNotReadyAddresses"))
    service_ports = spec.get("ports") or []
    # (address, ready, port or None) triples; repacked below.
    entries: list[tuple[JSON, bool, JSON | None]] = []
    for pod in selected_pods(service, pods):
        if not should_pod_be_in_endpoints(pod, include_terminating=publish_not_ready):
            continue
        ip = pod_ipv4(pod)
        if ip is None:
            continue
        addr = endpoint_address(pod, service, ip)
        ready = publish_not_ready or is_pod_ready(pod)
        if not service_ports:
            if is_headless(service):  # headless services may have no ports
                entries.append((addr, ready, None))
            continue
        for sp in service_ports:
            number = find_port(pod, sp)
            if number is not None:
                entries.append((addr, ready, _port(sp, number)))

    labels = dict(labels_of(service))
    if is_headless(service):
        labels[LABEL_HEADLESS] = ""
    else:
        labels.pop(LABEL_HEADLESS, None)
    metadata: JSON = {"name": name_of(service), "namespace": namespace_of(service)}
    if labels:
        metadata["labels"] = labels
    if now is not None:
        metadata["annotations"] = {TRIGGER_TIME: rfc3339(now)}
    endpoints: JSON = {"apiVersion": "v1", "kind": "Endpoints", "metadata": metadata}
    subsets = repack(entries)
    if subsets:
        endpoints["subsets"] = subsets
    return endpoints


def _addr_key(addr: Mapping[str, Any]) -> tuple[str, str]:
    return (str(addr.get("ip", "")), str((addr.get("targetRef") or {}).get("uid", "")))


def repack(entries: Sequence[tuple[JSON, bool, JSON | None]]) -> list[JSON]:
    """endpoints.RepackSubsets: group addresses by the exact set of ports they serve.

    An address is ready for a port if any entry says so. Addresses sort by (ip, uid);
    ports by (name, port, protocol) and subsets by their first address — Kubernetes
    sorts ports and subsets by a hash, which is stable but not meaningful.
    """
    addrs: dict[tuple[str, str], JSON] = {}
    by_port: dict[str, dict[tuple[str, str], bool]] = {}
    port_of: dict[str, JSON | None] = {}
    for addr, ready, port in entries:
        key = _addr_key(addr)
        addrs.setdefault(key, addr)
        pkey = json.dumps(port, sort_keys=True)
        port_of[pkey] = port
        seen = by_port.setdefault(pkey, {})
        seen[key] = seen.get(key, False) or ready
    groups: dict[str, tuple[dict[tuple[str, str], bool], list[JSON]]] = {}
    for pkey, members in by_port.items():
        gkey = json.dumps(sorted(members.items()))
        group = groups.setdefault(gkey, (members, []))
        port = port_of[pkey]
        if port is not None:
            group[1].append(port)
    subsets: list[JSON] = []
    for members, ports in groups.values():
        ready_addrs = [addrs[k] for k in sorted(members) if members[k]]
        not_ready = [addrs[k] for k in sorted(members) if not members[k]]
        subset: JSON = {}
        if ready_addrs:
            subset["addresses"] = ready_addrs
        if not_ready:
            subset["notReadyAddresses"] = not_ready
        if ports:
            subset["ports"] = sorted(
                ports, key=lambda p: (p.get("name", ""), p["port"], p["protocol"])
            )
        subsets.append(subset)

    def first(s: JSON) -> tuple[str, str]:
        a = (s.get("addresses") or s.get("notReadyAddresses") or [{}])[0]
        return _addr_key(a)

    return sorted(subsets, key=lambda s: (first(s), json.dumps(s.get("ports"), sort_keys=True)))


def endpoints_changed(existing: Mapping[str, Any], desired: Mapping[str, Any]) -> bool:
    """Whether `existing` needs an update: subsets or labels differ (the trigger-time
    annotation alone never causes a write, as in Kubernetes)."""
    em, dm = existing.get("metadata") or {}, desired.get("metadata") or {}
    return (existing.get("subsets") or []) != (desired.get("subsets") or []) or (
        em.get("labels") or {}
    ) != (dm.get("labels") or {})
