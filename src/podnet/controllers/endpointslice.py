"""EndpointSlices for a Service — pure.

`desired_slices` turns a Service and its namespace's Pods into the EndpointSlices the
Kubernetes EndpointSlice controller would want (pkg/controller/endpointslice and
staging/src/k8s.io/endpointslice); `reconcile_slices` turns (existing, desired) into the
fewest creates/updates/deletes that get there, keeping slice names stable.

Rules followed, with their Kubernetes source:
- only Services with a selector are managed; ExternalName Services get no slices;
- a pod is included when it has an IP and is not terminal (ShouldPodBeInEndpoints with
  includeTerminating=true); terminating pods stay, with ready=false;
- ready = publishNotReadyAddresses or (Ready condition and not terminating);
  serving = Ready condition; terminating = deletionTimestamp set (podToEndpoint);
- ports are resolved per pod (named targetPorts may differ); pods with different port
  sets go into different slices, and a port a pod cannot resolve is left out of its set;
- at most 100 endpoints per slice (--max-endpoints-per-slice default);
- a Service with no endpoints gets one placeholder slice with no ports and no endpoints.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from ipaddress import IPv4Address, ip_address
from typing import Any

from podnet.controllers.common import (
    JSON,
    is_deleting,
    is_pod_ready,
    is_pod_terminal,
    labels_of,
    matches_labels,
    name_of,
    namespace_of,
    rfc3339,
    uid_of,
)

MANAGED_BY = "endpointslice-controller.k8s.io"
LABEL_SERVICE_NAME = "kubernetes.io/service-name"
LABEL_MANAGED_BY = "endpointslice.kubernetes.io/managed-by"
LABEL_HEADLESS = "service.kubernetes.io/headless"
TRIGGER_TIME = "endpoints.kubernetes.io/last-change-trigger-time"
MAX_ENDPOINTS_PER_SLICE = 100


def manages(service: Mapping[str, Any]) -> bool:
    """Whether the controller owns slices for this Service at all."""
    spec = service.get("spec") or {}
    return bool(spec.get("selector")) and spec.get("type") != "ExternalName"


def is_headless(service: Mapping[str, Any]) -> bool:
    return (service.get("spec") or {}).get("clusterIP") == "None"


def selected_pods(service: Mapping[str, Any], pods: Sequence[Mapping[str, Any]]) -> list[JSON]:
    """Pods in the Service's namespace matched by its selector, sorted by name."""
    selector = (service.get("spec") or {}).get("selector") or {}
    ns = namespace_of(service)
    out = [
        dict(p) for p in pods
        if namespace_of(p) == ns and selector and matches_labels(selector, labels_of(p))
    ]
    return sorted(out, key=name_of)


def pod_ipv4(pod: Mapping[str, Any]) -> str | None:
    """The pod's IPv4 address (status.podIPs first, then status.podIP)."""
    status = pod.get("status") or {}
    candidates = [str(p.get("ip", "")) for p in status.get("podIPs") or []]
    candidates.append(str(status.get("podIP") or ""))
    for ip in candidates:
        try:
            if ip and isinstance(ip_address(ip), IPv4Address):
                return ip
        except ValueError:
            continue
    return None


def should_pod_be_in_endpoints(pod: Mapping[str, Any], include_terminating: bool) -> bool:
    """endpointsliceutil.ShouldPodBeInEndpoints."""
    if is_pod_terminal(pod):
        return False
    status = pod.get("status") or {}
    if not status.get("podIP") and not status.get("podIPs"):
        return False
    return include_terminating or not is_deleting(pod)


def should_set_hostname(pod: Mapping[str, Any], service: Mapping[str, Any]) -> bool:
    """endpointutil.ShouldSetHostname: spec.hostname set and spec.subdomain is the Service."""
    spec = pod.get("spec") or {}
    return (
        bool(spec.get("hostname"))
        and spec.get("subdomain") == name_of(service)
        and namespace_of(pod) == namespace_of(service)
    )


def find_port(pod: Mapping[str, Any], service_port: Mapping[str, Any]) -> int | None:
    """podutil.FindPort: a numeric targetPort as is; a named one looked up in the pod's
    container ports (and restartable init containers) by name and protocol."""
    target = service_port.get("targetPort", service_port.get("port"))
    protocol = service_port.get("protocol") or "TCP"
    if isinstance(target, int):
        return target
    if target is None:
        return None
    spec = pod.get("spec") or {}
    containers = list(spec.get("containers") or []) + [
        c for c in spec.get("initContainers") or [] if c.get("restartPolicy") == "Always"
    ]
    for container in containers:
        for port in container.get("ports") or []:
            if port.get("name") == target and (port.get("protocol") or "TCP") == protocol:
                return int(port["containerPort"])
    return None


def endpoint_ports(service: Mapping[str, Any], pod: Mapping[str, Any]) -> list[JSON]:
    """getEndpointPorts: the Service's ports as this pod resolves them (unresolvable
    named ports are skipped, so the pod lands in a slice without that port)."""
    ports: list[JSON] = []
    for sp in (service.get("spec") or {}).get("ports") or []:
        number = find_port(pod, sp)
        if number is None:
            continue
        port: JSON = {"name": sp.get("name", ""), "port": number,
                      "protocol": sp.get("protocol") or "TCP"}
        if sp.get("appProtocol"):
            port["appProtocol"] = sp["appProtocol"]
        ports.append(port)
    return ports


def pod_to_endpoint(
    pod: Mapping[str, Any],
    service: Mapping[str, Any],
    ip: str,
    zones: Mapping[str, str] | None = None,
) -> JSON:
    """podToEndpoint: one endpoint with the three conditions Kubernetes sets."""
    spec = pod.get("spec") or {}
    serving = is_pod_ready(pod)
    terminating = is_deleting(pod)
    publish_not_ready = bool((service.get("spec") or {}).get("publishNotReadyAddresses"))
    # Compatibility rule from Kubernetes: ready is never true while terminating, unless
    # publishNotReadyAddresses is set.
    ready = publish_not_ready or (serving and not terminating)
    ep: JSON = {
        "addresses": [ip],
        "conditions": {"ready": ready, "serving": serving, "terminating": terminating},
    }
    if should_set_hostname(pod, service):
        ep["hostname"] = spec["hostname"]
    ep["targetRef"] = {
        "kind": "Pod",
        "namespace": namespace_of(pod),
        "name": name_of(pod),
        "uid": uid_of(pod),
    }
    node = spec.get("nodeName")
    if node:
        ep["nodeName"] = node
        zone = (zones or {}).get(node)
        if zone:
            ep["zone"] = zone
    return ep


def slice_labels(service: Mapping[str, Any], managed_by: str = MANAGED_BY) -> dict[str, str]:
    """setEndpointSliceLabels: the Service's labels (minus reserved keys), the headless
    marker, then service-name and managed-by."""
    reserved = {LABEL_SERVICE_NAME, LABEL_MANAGED_BY}
    labels = {k: v for k, v in labels_of(service).items() if k not in reserved}
    if is_headless(service):
        labels[LABEL_HEADLESS] = ""
    else:
        labels.pop(LABEL_HEADLESS, None)
    labels[LABEL_SERVICE_NAME] = name_of(service)
    labels[LABEL_MANAGED_BY] = managed_by
    return labels


def service_owner_ref(service: Mapping[str, Any]) -> JSON:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "name": name_of(service),
        "uid": uid_of(service),
        "controller": True,
        "blockOwnerDeletion": True,
    }


def new_slice(
    service: Mapping[str, Any],
    ports: Sequence[Mapping[str, Any]],
    endpoints: Sequence[Mapping[str, Any]],
    now: datetime | None = None,
) -> JSON:
    """newEndpointSlice: generateName `<svc>-`, labels, controller ownerReference."""
    metadata: JSON = {
        "generateName": f"{name_of(service)}-",
        "namespace": namespace_of(service),
        "labels": slice_labels(service),
        "ownerReferences": [service_owner_ref(service)],
    }
    if now is not None:
        metadata["annotations"] = {TRIGGER_TIME: rfc3339(now)}
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": metadata,
        "addressType": "IPv4",
        "endpoints": [dict(e) for e in endpoints],
        "ports": [dict(p) for p in ports],
    }


def desired_slices(
    service: Mapping[str, Any],
    pods: Sequence[Mapping[str, Any]],
    now: datetime | None = None,
    *,
    zones: Mapping[str, str] | None = None,
) -> list[JSON]:
    """The EndpointSlices a Service should have, without names (see module docstring).

    `pods` may be every pod of the namespace (selection is done here); `zones` maps node
    name → topology.kubernetes.io/zone; `now`, if given, stamps the trigger-time
    annotation.
    """
    if not manages(service):
        return []
    groups: dict[str, tuple[list[JSON], list[JSON]]] = {}
    headless_without_ports = is_headless(service) and not (service.get("spec") or {}).get("ports")
    for pod in selected_pods(service, pods):
        if not should_pod_be_in_endpoints(pod, include_terminating=True):
            continue
        ip = pod_ipv4(pod)
        if ip is None:
            continue
        ports = [] if headless_without_ports else endpoint_ports(service, pod)
        key = json.dumps(ports, sort_keys=True)
        groups.setdefault(key, (ports, []))[1].append(pod_to_endpoint(pod, service, ip, zones))
    slices: list[JSON] = []
    for ports, endpoints in groups.values():
        for i in range(0, len(endpoints), MAX_ENDPOINTS_PER_SLICE):
            chunk = endpoints[i : i + MAX_ENDPOINTS_PER_SLICE]
            slices.append(new_slice(service, ports, chunk, now))
    if not slices:
        slices.append(new_slice(service, [], [], now))  # the placeholder
    return slices


# -- reconcile ------------------------------------------------------------------------


@dataclass
class SliceChanges:
    """What to write: creates have generateName, updates and deletes are existing slices
    (updates carry the new content under the existing name and resourceVersion)."""

    creates: list[JSON] = field(default_factory=list)
    updates: list[JSON] = field(default_factory=list)
    deletes: list[JSON] = field(default_factory=list)

    def __iter__(self) -> Iterator[list[JSON]]:
        """Unpacks as `creates, updates, deletes = reconcile_slices(...)`."""
        return iter((self.creates, self.updates, self.deletes))

    @property
    def empty(self) -> bool:
        return not (self.creates or self.updates or self.deletes)


def _group_key(s: Mapping[str, Any]) -> str:
    return json.dumps([s.get("addressType"), s.get("ports") or []], sort_keys=True)


def _endpoint_key(ep: Mapping[str, Any]) -> str:
    """Identity of an endpoint across syncs (hashEndpoint: addresses + pod ref)."""
    ref = ep.get("targetRef") or {}
    return json.dumps([ep.get("addresses"), ref.get("namespace"), ref.get("name")])


def _content(s: Mapping[str, Any]) -> Any:
    m = s.get("metadata") or {}
    return (
        s.get("addressType"),
        s.get("ports") or [],
        s.get("endpoints") or [],
        m.get("labels") or {},
        m.get("ownerReferences") or [],
    )


def _rebuilt(
    existing: Mapping[str, Any], template: Mapping[str, Any], endpoints: list[JSON]
) -> JSON:
    out = copy.deepcopy(dict(existing))
    tm = template.get("metadata") or {}
    out["metadata"]["labels"] = dict(tm.get("labels") or {})
    out["metadata"]["ownerReferences"] = copy.deepcopy(tm.get("ownerReferences") or [])
    trigger = (tm.get("annotations") or {}).get(TRIGGER_TIME)
    if trigger:
        out["metadata"].setdefault("annotations", {})[TRIGGER_TIME] = trigger
    out["addressType"] = template.get("addressType")
    out["ports"] = copy.deepcopy(template.get("ports") or [])
    out["endpoints"] = endpoints
    return out


def _from_template(template: Mapping[str, Any], endpoints: list[JSON]) -> JSON:
    out = copy.deepcopy(dict(template))
    out["endpoints"] = endpoints
    return out


def reconcile_slices(
    existing: Sequence[Mapping[str, Any]], desired: Sequence[Mapping[str, Any]]
) -> SliceChanges:
    """The fewest writes that turn `existing` (the Service's managed slices) into
    `desired` (from `desired_slices`), following the Kubernetes reconciler:

    1. endpoints still wanted stay in the slice they are in (updated if changed);
    2. slices left empty are deleted; slices of port sets no longer wanted are deleted;
    3. new endpoints first fill slices that are being updated anyway, then new slices of
       100, and a last partial batch goes into an unchanged slice with room if one exists;
    4. with nothing else left, one placeholder slice is kept (or created);
    5. a create paired with a delete becomes an update of the deleted slice, so names stay.
    """
    changes = SliceChanges()
    existing_sorted = sorted(existing, key=name_of)
    groups: dict[str, tuple[Mapping[str, Any], list[JSON]]] = {}
    placeholder: Mapping[str, Any] | None = None
    for s in desired:
        if not s.get("endpoints"):
            placeholder = s
            continue
        key = _group_key(s)
        if key not in groups:
            groups[key] = (s, [])
        groups[key][1].extend(copy.deepcopy(list(s.get("endpoints") or [])))

    by_group: dict[str, list[Mapping[str, Any]]] = {}
    for s in existing_sorted:
        key = _group_key(s)
        if key in groups:
            by_group.setdefault(key, []).append(s)
        else:
            changes.deletes.append(dict(s))

    for key, (template, endpoints) in groups.items():
        want = {_endpoint_key(ep): ep for ep in endpoints}
        placed: set[str] = set()
        updated: list[JSON] = []
        unchanged: list[JSON] = []
        for s in by_group.get(key, []):
            kept: list[JSON] = []
            for ep in s.get("endpoints") or []:
                k = _endpoint_key(ep)
                if k in want and k not in placed:
                    kept.append(want[k])
                    placed.add(k)
            if not kept:
                changes.deletes.append(dict(s))
                continue
            new = _rebuilt(s, template, kept)
            (updated if _content(new) != _content(s) else unchanged).append(new)
        remaining = [ep for k, ep in want.items() if k not in placed]
        for s in updated:
            room = MAX_ENDPOINTS_PER_SLICE - len(s["endpoints"])
            if room > 0 and remaining:
                s["endpoints"].extend(remaining[:room])
                remaining = remaining[room:]
        while len(remaining) >= MAX_ENDPOINTS_PER_SLICE:
            changes.creates.append(_from_template(template, remaining[:MAX_ENDPOINTS_PER_SLICE]))
            remaining = remaining[MAX_ENDPOINTS_PER_SLICE:]
        if remaining:
            fits = [
                s for s in sorted(unchanged, key=lambda s: -len(s["endpoints"]))
                if MAX_ENDPOINTS_PER_SLICE - len(s["endpoints"]) >= len(remaining)
            ]
            if fits:
                fits[0]["endpoints"].extend(remaining)
                updated.append(fits[0])
            else:
                changes.creates.append(_from_template(template, remaining))
        changes.updates.extend(updated)

    # `placeholder` is only set when nothing has endpoints; an empty `desired` means the
    # Service is no longer managed, and then everything goes.
    if placeholder is not None and len(changes.deletes) == len(existing_sorted):
        same = [d for d in changes.deletes if _placeholder_equal(d, placeholder)]
        if same:
            changes.deletes.remove(same[0])
        else:
            changes.creates.append(copy.deepcopy(dict(placeholder)))

    # Turn create+delete pairs into updates of the deleted slices (stable names).
    while changes.creates and changes.deletes:
        create = changes.creates.pop()
        victim = changes.deletes.pop(0)
        changes.updates.append(_rebuilt(victim, create, list(create.get("endpoints") or [])))
    return changes


def _placeholder_equal(existing: Mapping[str, Any], placeholder: Mapping[str, Any]) -> bool:
    """placeholderSliceCompare: no endpoints, same ports, addressType, labels, owner."""
    return not existing.get("endpoints") and _content(existing) == _content(placeholder)
