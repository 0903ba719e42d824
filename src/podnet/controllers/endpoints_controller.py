"""Reconcilers for EndpointSlices and v1 Endpoints: watch Services, Pods, Nodes (for
zones) and the objects they write; compute with the pure modules; write the difference.

Both key on the Service ("ns/name"). A pod change wakes every Service in its namespace
whose selector matches the pod's old or new labels.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from podnet.api.errors import StatusError
from podnet.controllers.base import (
    ENDPOINTS,
    ENDPOINTSLICES,
    NODES,
    PODS,
    SERVICES,
    Controller,
    Deps,
)
from podnet.controllers.common import (
    JSON,
    labels_of,
    matches_labels,
    meta,
    name_of,
    namespace_of,
    uid_of,
)
from podnet.controllers.endpoints import desired_endpoints, endpoints_changed
from podnet.controllers.endpointslice import (
    LABEL_MANAGED_BY,
    LABEL_SERVICE_NAME,
    MANAGED_BY,
    desired_slices,
    reconcile_slices,
)

ZONE_LABEL = "topology.kubernetes.io/zone"


def _service_key(slice_: Mapping[str, Any]) -> str | None:
    name = labels_of(slice_).get(LABEL_SERVICE_NAME)
    return f"{namespace_of(slice_)}/{name}" if name else None


class _ServicePodController(Controller):
    """Shared wiring: Services and Pods in, one key per Service."""

    def __init__(self, deps: Deps) -> None:
        super().__init__(deps)
        self.services = deps.informers.informer(SERVICES)
        self.pods = deps.informers.informer(PODS)
        self.services.on_change(self.enqueue)
        self.pods.on_add(lambda p: self._pod_changed(None, p))
        self.pods.on_update(self._pod_changed)
        self.pods.on_delete(lambda p: self._pod_changed(None, p))

    def _pod_changed(self, old: JSON | None, new: JSON) -> None:
        label_sets = [labels_of(new)] + ([labels_of(old)] if old is not None else [])
        for svc in self.services.cache.list(namespace_of(new)):
            selector = (svc.get("spec") or {}).get("selector")
            if selector and any(matches_labels(selector, ls) for ls in label_sets):
                self.enqueue(svc)


class SliceTracker:
    """What we wrote, until the informer shows it (endpointSliceTracker).

    Without it a sync right after a create would not see the new slice in the cache and
    create another one. `stale()` says the cache is behind; the sync is then retried.
    """

    def __init__(self) -> None:
        self._written: dict[str, dict[str, str | None]] = {}

    def wrote(self, service_key: str, slice_: Mapping[str, Any]) -> None:
        rv = str(meta(slice_).get("resourceVersion", ""))
        self._written.setdefault(service_key, {})[name_of(slice_)] = rv

    def deleted(self, service_key: str, name: str) -> None:
        self._written.setdefault(service_key, {})[name] = None

    def stale(self, service_key: str, cached: Mapping[str, Mapping[str, Any]]) -> bool:
        pending = self._written.get(service_key, {})
        for name, rv in list(pending.items()):
            current = cached.get(name)
            if rv is None:
                seen = current is None
            else:
                seen = current is not None and _rv_at_least(
                    str(meta(current).get("resourceVersion", "")), rv
                )
            if seen:
                del pending[name]
        if not pending:
            self._written.pop(service_key, None)
        return bool(pending)

    def forget(self, service_key: str) -> None:
        self._written.pop(service_key, None)


def _rv_at_least(have: str, want: str) -> bool:
    """resourceVersions are opaque in Kubernetes, but podnet's (and etcd's) are integer
    revisions; compare as such when both are, else require equality."""
    if have.isdigit() and want.isdigit():
        return int(have) >= int(want)
    return have == want


class EndpointSliceController(_ServicePodController):
    name = "endpointslice-controller"

    def __init__(self, deps: Deps) -> None:
        super().__init__(deps)
        self.slices = deps.informers.informer(ENDPOINTSLICES)
        self.nodes = deps.informers.informer(NODES)
        self.slices.cache.add_index("service", self._slice_index)
        self.tracker = SliceTracker()
        self.slices.on_change(self._slice_changed)
        self.nodes.on_update(lambda old, new: self._node_changed(old, new))

    @staticmethod
    def _slice_index(slice_: JSON) -> list[str]:
        key = _service_key(slice_)
        return [key] if key else []

    def _slice_changed(self, slice_: JSON) -> None:
        if labels_of(slice_).get(LABEL_MANAGED_BY) == MANAGED_BY:
            key = _service_key(slice_)
            if key:
                self.queue.add(key)

    def _node_changed(self, old: JSON, new: JSON) -> None:
        if labels_of(old).get(ZONE_LABEL) != labels_of(new).get(ZONE_LABEL):
            for svc in self.services.cache.list():
                self.enqueue(svc)

    def zones(self) -> dict[str, str]:
        return {
            name_of(n): labels_of(n)[ZONE_LABEL]
            for n in self.nodes.cache.list() if labels_of(n).get(ZONE_LABEL)
        }

    async def sync(self, key: str) -> None:
        svc = self.services.cache.get(key)
        if svc is None:
            # Slices are owned by the Service; the garbage collector removes them.
            self.tracker.forget(key)
            return
        existing = [
            s for s in self.slices.cache.by_index("service", key)
            if labels_of(s).get(LABEL_MANAGED_BY) == MANAGED_BY
            and any(r.get("uid") == uid_of(svc) for r in meta(s).get("ownerReferences") or [])
        ]
        if self.tracker.stale(key, {name_of(s): s for s in existing}):
            self.queue.add_after(key, 0.05)
            return
        pods = self.pods.cache.list(namespace_of(svc))
        desired = desired_slices(svc, pods, self.clock.now(), zones=self.zones())
        changes = reconcile_slices(existing, desired)
        for s in changes.creates:
            created = await self.client.create(ENDPOINTSLICES, s)
            self.tracker.wrote(key, created)
        for s in changes.updates:
            updated = await self.client.update(ENDPOINTSLICES, s)
            self.tracker.wrote(key, updated)
        for s in changes.deletes:
            try:
                await self.client.delete(ENDPOINTSLICES, name_of(s), namespace_of(s),
                                         preconditions={"uid": uid_of(s)})
            except StatusError as err:
                if err.code != 404:
                    raise
            self.tracker.deleted(key, name_of(s))


class EndpointsController(_ServicePodController):
    name = "endpoint-controller"

    def __init__(self, deps: Deps) -> None:
        super().__init__(deps)
        self.endpoints = deps.informers.informer(ENDPOINTS)
        self.endpoints.on_delete(self.enqueue)
        self.services.on_delete(self.enqueue)

    async def sync(self, key: str) -> None:
        svc = self.services.cache.get(key)
        current = self.endpoints.cache.get(key)
        if svc is None:
            # Unlike slices, Endpoints carry no ownerReference: delete them ourselves.
            if current is not None and _ours(current):
                ns, _, name = key.partition("/")
                try:
                    await self.client.delete(ENDPOINTS, name, ns)
                except StatusError as err:
                    if err.code != 404:
                        raise
            return
        desired = desired_endpoints(svc, self.pods.cache.list(namespace_of(svc)),
                                    self.clock.now())
        if desired is None:
            return
        if current is None:
            await self.client.create(ENDPOINTS, desired)
            return
        if not endpoints_changed(current, desired):
            return
        updated = copy.deepcopy(current)
        updated["metadata"]["labels"] = desired["metadata"].get("labels", {})
        annotations = updated["metadata"].setdefault("annotations", {})
        annotations.update(desired["metadata"].get("annotations") or {})
        if desired.get("subsets"):
            updated["subsets"] = desired["subsets"]
        else:
            updated.pop("subsets", None)
        await self.client.update(ENDPOINTS, updated)


def _ours(endpoints: Mapping[str, Any]) -> bool:
    """Endpoints mirrored or written by hand for selector-less Services are not ours;
    without an owner marker we only delete those that name pods (the controller's)."""
    for subset in endpoints.get("subsets") or []:
        for addr in (subset.get("addresses") or []) + (subset.get("notReadyAddresses") or []):
            if (addr.get("targetRef") or {}).get("kind") == "Pod":
                return True
    return not endpoints.get("subsets")

