"""Namespace lifecycle: empty a deleted namespace, then release it.

When a Namespace has a deletionTimestamp (pkg/controller/namespace/deletion):
1. status.phase becomes Terminating;
2. every namespaced object of every namespaced resource type in it is deleted (types
   from discovery, so CRDs are included; the built-in table is the fallback);
3. while anything remains, status conditions say what, and the sync comes back later;
4. once empty, the `kubernetes` finalizer is removed from spec.finalizers with a PUT to
   namespaces/<name>/finalize, and the API server deletes the Namespace.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from podnet.api.errors import StatusError
from podnet.api.resources import VIRTUAL_KINDS, Registry, ResourceType
from podnet.client.rest import ApiClient
from podnet.controllers.base import NAMESPACES, Controller, Deps
from podnet.controllers.common import JSON, is_deleting, meta, rfc3339, set_condition

log = logging.getLogger(__name__)

FINALIZER = "kubernetes"
RECHECK_SECONDS = 2.0


# -- pure -----------------------------------------------------------------------------


def deletable_types(types: Iterable[ResourceType]) -> list[ResourceType]:
    """Namespaced types that can be listed and deleted, one version per resource (the
    first seen, i.e. the preferred one), without the virtual review kinds."""
    seen: set[tuple[str, str]] = set()
    out: list[ResourceType] = []
    for rt in types:
        key = (rt.group, rt.plural)
        if (
            key in seen
            or not rt.namespaced
            or rt.kind in VIRTUAL_KINDS
            or "list" not in rt.verbs
            or "delete" not in rt.verbs
        ):
            continue
        seen.add(key)
        out.append(rt)
    return out


def group_resource(rt: ResourceType) -> str:
    """schema.GroupResource.String(): `pods.` for core, `deployments.apps` otherwise."""
    return f"{rt.plural}.{rt.group}"


def terminating_status(
    ns: Mapping[str, Any], remaining: Mapping[str, int], finalizers: Mapping[str, int],
    now: datetime,
) -> JSON:
    """The status Kubernetes shows on a namespace being emptied."""
    stamp = rfc3339(now)
    status = copy.deepcopy(dict(ns.get("status") or {}))
    status["phase"] = "Terminating"
    conds: list[JSON] = list(status.get("conditions") or [])

    def put(ctype: str, value: str, reason: str, message: str) -> None:
        nonlocal conds
        conds = set_condition(conds, {"type": ctype, "status": value,
                                      "lastTransitionTime": stamp, "reason": reason,
                                      "message": message})

    put("NamespaceDeletionDiscoveryFailure", "False", "ResourcesDiscovered",
        "All resources successfully discovered")
    put("NamespaceDeletionGroupVersionParsingFailure", "False", "ParsedGroupVersions",
        "All legacy kube types successfully parsed")
    put("NamespaceDeletionContentFailure", "False", "ContentDeleted",
        "All content successfully deleted, may be waiting on finalization")
    if remaining:
        parts = [f"{gr} has {n} resource instances" for gr, n in sorted(remaining.items())]
        put("NamespaceContentRemaining", "True", "SomeResourcesRemain",
            "Some resources are remaining: " + ", ".join(parts))
    else:
        put("NamespaceContentRemaining", "False", "ContentRemoved",
            "All content successfully removed")
    if finalizers:
        parts = [f"{f} in {n} resource instances" for f, n in sorted(finalizers.items())]
        put("NamespaceFinalizersRemaining", "True", "SomeFinalizersRemain",
            "Some content in the namespace has finalizers remaining: " + ", ".join(parts))
    else:
        put("NamespaceFinalizersRemaining", "False", "ContentHasNoFinalizers",
            "All content-preserving finalizers finished")
    status["conditions"] = conds
    return status


def finalized(ns: Mapping[str, Any]) -> JSON | None:
    """The Namespace to PUT to /finalize, or None if our finalizer is already gone."""
    finalizers = list((ns.get("spec") or {}).get("finalizers") or [])
    if FINALIZER not in finalizers:
        return None
    out = copy.deepcopy(dict(ns))
    out.setdefault("spec", {})["finalizers"] = [f for f in finalizers if f != FINALIZER]
    return out


# -- discovery ------------------------------------------------------------------------


async def discover(client: ApiClient) -> list[ResourceType]:
    """Namespaced, deletable resource types the server serves (legacy discovery:
    /api/v1 and each group's preferred version under /apis)."""
    versions: list[tuple[str, str, str]] = [("", "v1", "/api/v1")]
    groups = await client.get_path("/apis")
    for g in groups.get("groups") or []:
        gv = (g.get("preferredVersion") or {}).get("groupVersion") or ""
        group, _, version = gv.partition("/")
        if group and version:
            versions.append((group, version, f"/apis/{gv}"))
    found: list[ResourceType] = []
    for group, version, path in versions:
        try:
            listing = await client.get_path(path)
        except StatusError as err:
            log.info("component=namespace event=discovery-failed path=%s error=%s", path, err)
            continue
        for r in listing.get("resources") or []:
            if "/" in str(r.get("name", "")):
                continue  # subresource
            found.append(ResourceType(
                group, version, str(r.get("kind", "")), str(r["name"]),
                bool(r.get("namespaced")), tuple(r.get("verbs") or ()),
            ))
    return deletable_types(found)


# -- reconciler -----------------------------------------------------------------------


class NamespaceController(Controller):
    name = "namespace-controller"

    def __init__(self, deps: Deps, registry: Registry | None = None) -> None:
        super().__init__(deps)
        self.registry = registry or Registry.builtin()
        self.namespaces = deps.informers.informer(NAMESPACES)
        self.namespaces.on_add(self._maybe)
        self.namespaces.on_update(lambda _old, new: self._maybe(new))

    def _maybe(self, ns: JSON) -> None:
        if is_deleting(ns):
            self.enqueue(ns)

    async def types(self) -> list[ResourceType]:
        builtin = deletable_types(self.registry)
        try:
            discovered = await discover(self.client)
        except Exception as err:
            log.info("component=namespace event=discovery-failed error=%r", err)
            return builtin
        # Discovery first (it knows CRDs and what is really served); built-ins cover a
        # server whose discovery is partial.
        return deletable_types([*discovered, *builtin])

    async def sync(self, key: str) -> None:
        ns = self.namespaces.cache.get(key)
        if ns is None or not is_deleting(ns):
            return
        name = str(meta(ns)["name"])
        remaining: dict[str, int] = {}
        finalizers: dict[str, int] = {}
        for rt in await self.types():
            try:
                items = (await self.client.list_all(rt, name)).items
            except StatusError as err:
                if err.code in (404, 405):
                    continue  # not served after all
                raise
            for item in items:
                for f in meta(item).get("finalizers") or []:
                    finalizers[f] = finalizers.get(f, 0) + 1
                if is_deleting(item):
                    continue
                try:
                    await self.client.delete(rt, str(meta(item)["name"]), name,
                                             propagation_policy="Background")
                except StatusError as err:
                    if err.code != 404:
                        raise
            if items:
                remaining[group_resource(rt)] = len(items)
        try:
            status = terminating_status(ns, remaining, finalizers, self.clock.now())
            if status != ns.get("status"):
                updated = copy.deepcopy(ns)
                updated["status"] = status
                # The finalize PUT below must carry the resourceVersion this returns.
                ns = await self.client.update_status(NAMESPACES, updated)
            if remaining:
                self.queue.add_after(key, RECHECK_SECONDS)
                return
            body = finalized(ns)
            if body is not None:
                await self.client.update(NAMESPACES, body, subresource="finalize")
        except StatusError as err:
            if err.code != 404:
                raise
            # Already finalized and deleted (our cache was behind): nothing left to do.
