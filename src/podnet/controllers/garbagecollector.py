"""Owner-reference garbage collection (pkg/controller/garbagecollector).

Pure part: given one object and what is known of its owners, decide what Kubernetes'
garbage collector would do —
- every owner gone (dangling) → delete it, in the background (or with the policy its own
  orphan / foregroundDeletion finalizer asks for);
- some owners alive and some gone → drop the references to the gone ones;
- an owner being deleted in the foreground (foregroundDeletion finalizer) → delete it
  too (in the foreground if it has dependents of its own);
- an owner being deleted with the `orphan` finalizer → remove its reference from every
  dependent, then remove the finalizer;
- an owner being deleted with `foregroundDeletion` → once no dependent blocks it
  (blockOwnerDeletion), remove the finalizer so the API server can delete it.

Reconciler: keys are uids; informers over the types that own or are owned here keep a
uid → object map and reverse (owner → dependents) indexes. Before anything is deleted
because an owner is missing, the owner is looked up live, because informers lag.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from podnet.api.errors import StatusError
from podnet.api.resources import Registry, ResourceType
from podnet.client.informer import Informer, by_owner_uid, object_key
from podnet.controllers.base import (
    DEPLOYMENTS,
    ENDPOINTS,
    ENDPOINTSLICES,
    PODS,
    REPLICASETS,
    SERVICES,
    Controller,
    Deps,
)
from podnet.controllers.common import JSON, meta

log = logging.getLogger(__name__)

ORPHAN = "orphan"
FOREGROUND = "foregroundDeletion"
Policy = Literal["Background", "Foreground", "Orphan"]

DEFAULT_TYPES: tuple[ResourceType, ...] = (
    DEPLOYMENTS, REPLICASETS, PODS, SERVICES, ENDPOINTSLICES, ENDPOINTS,
)


@dataclass(frozen=True, slots=True)
class OwnerRef:
    api_version: str
    kind: str
    name: str
    uid: str
    block: bool = False

    @classmethod
    def from_json(cls, ref: Mapping[str, Any]) -> OwnerRef:
        return cls(str(ref.get("apiVersion", "")), str(ref.get("kind", "")),
                   str(ref.get("name", "")), str(ref.get("uid", "")),
                   bool(ref.get("blockOwnerDeletion")))


@dataclass(frozen=True, slots=True)
class Node:
    """One object as the collector sees it."""

    api_version: str
    kind: str
    namespace: str
    name: str
    uid: str
    resource_version: str
    owners: tuple[OwnerRef, ...]
    deleting: bool
    finalizers: tuple[str, ...]
    raw_owners: tuple[Mapping[str, Any], ...] = ()

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> Node:
        m = meta(obj)
        refs = tuple(m.get("ownerReferences") or ())
        return cls(
            str(obj.get("apiVersion", "")), str(obj.get("kind", "")),
            str(m.get("namespace", "")), str(m.get("name", "")), str(m.get("uid", "")),
            str(m.get("resourceVersion", "")),
            tuple(OwnerRef.from_json(r) for r in refs),
            bool(m.get("deletionTimestamp")), tuple(m.get("finalizers") or ()), refs,
        )

    def blocks(self, owner_uid: str) -> bool:
        return any(r.uid == owner_uid and r.block for r in self.owners)


@dataclass(frozen=True, slots=True)
class OwnerInfo:
    """What a live owner looks like to the collector."""

    deleting: bool
    finalizers: tuple[str, ...] = ()

    @property
    def waiting_for_dependents(self) -> bool:
        return self.deleting and FOREGROUND in self.finalizers


@dataclass(frozen=True, slots=True)
class Delete:
    node: Node
    policy: Policy


@dataclass(frozen=True, slots=True)
class SetOwners:
    """Replace the node's ownerReferences with `owners` (raw JSON, order kept)."""

    node: Node
    owners: tuple[Mapping[str, Any], ...]


@dataclass(frozen=True, slots=True)
class RemoveFinalizer:
    node: Node
    finalizer: str


Action = Delete | SetOwners | RemoveFinalizer


def attempt_to_delete(
    item: Node, owners: Mapping[str, OwnerInfo | None], has_dependents: bool
) -> list[Action]:
    """attemptToDeleteItem for one dependent.

    `owners` maps each owner uid to its live state, or None when verified absent (a
    missing entry means "unknown": nothing is done about that owner).
    """
    if item.deleting or not item.owners:
        return []
    if any(ref.uid not in owners for ref in item.owners):
        return []  # cannot decide safely
    solid = [r for r in item.owners if (o := owners[r.uid]) and not o.waiting_for_dependents]
    dangling = [r for r in item.owners if owners[r.uid] is None]
    waiting = [r for r in item.owners if (o := owners[r.uid]) and o.waiting_for_dependents]
    if solid:
        if not dangling and not waiting:
            return []
        gone = {r.uid for r in dangling + waiting}
        keep = tuple(r for r in item.raw_owners if str(r.get("uid")) not in gone)
        return [SetOwners(item, keep)]
    if waiting and has_dependents:
        # Its owner waits for it; it must in turn wait for its own dependents.
        return [Delete(item, "Foreground")]
    if ORPHAN in item.finalizers:
        policy: Policy = "Orphan"
    elif FOREGROUND in item.finalizers:
        policy = "Foreground"
    else:
        policy = "Background"
    return [Delete(item, policy)]


def process_deleting_owner(owner: Node, dependents: Sequence[Node]) -> list[Action]:
    """What to do for an owner being deleted with the orphan or foreground finalizer."""
    if not owner.deleting:
        return []
    actions: list[Action] = []
    if ORPHAN in owner.finalizers:
        for dep in dependents:
            keep = tuple(r for r in dep.raw_owners if str(r.get("uid")) != owner.uid)
            actions.append(SetOwners(dep, keep))
        actions.append(RemoveFinalizer(owner, ORPHAN))
    elif FOREGROUND in owner.finalizers:
        blocking = [d for d in dependents if d.blocks(owner.uid)]
        if not blocking:
            actions.append(RemoveFinalizer(owner, FOREGROUND))
        else:
            # processDeletingDependentsItem: make sure blocking dependents are on their way.
            actions.extend(
                Delete(d, "Foreground" if FOREGROUND in d.finalizers else "Background")
                for d in blocking if not d.deleting
            )
    return actions


# -- reconciler -----------------------------------------------------------------------


class GarbageCollector(Controller):
    name = "garbage-collector-controller"

    def __init__(
        self,
        deps: Deps,
        types: Sequence[ResourceType] = DEFAULT_TYPES,
        registry: Registry | None = None,
    ) -> None:
        super().__init__(deps)
        self.registry = registry or Registry.builtin()
        self.informers: list[Informer] = []
        self.where: dict[str, tuple[Informer, str]] = {}  # uid → (informer, cache key)
        for rt in types:
            inf = deps.informers.informer(rt)
            inf.cache.add_index("owner", by_owner_uid)
            self._wire(inf)
            self.informers.append(inf)

    def _wire(self, inf: Informer) -> None:
        def added(obj: JSON) -> None:
            self._seen(inf, None, obj)

        def updated(old: JSON, new: JSON) -> None:
            self._seen(inf, old, new)

        inf.on_add(added)
        inf.on_update(updated)
        inf.on_delete(self._gone)

    # -- graph maintenance ------------------------------------------------------------

    def _seen(self, inf: Informer, old: JSON | None, new: JSON) -> None:
        uid = str(meta(new).get("uid", ""))
        if not uid:
            return
        self.where[uid] = (inf, object_key(new))
        node = Node.from_json(new)
        if node.owners or (node.deleting and {ORPHAN, FOREGROUND} & set(node.finalizers)):
            self.queue.add(uid)
        if old is not None:
            # Owners that this object stopped referring to may now be unblocked.
            for ref in Node.from_json(old).owners:
                self.queue.add(ref.uid)
        if node.deleting:
            for ref in node.owners:
                self.queue.add(ref.uid)
            for dep in self.dependents(uid):
                self.queue.add(dep.uid)

    def _gone(self, obj: JSON) -> None:
        node = Node.from_json(obj)
        self.where.pop(node.uid, None)
        for dep in self.dependents(node.uid):
            self.queue.add(dep.uid)
        for ref in node.owners:
            self.queue.add(ref.uid)

    def lookup(self, uid: str) -> JSON | None:
        place = self.where.get(uid)
        if place is None:
            return None
        obj = place[0].cache.get(place[1])
        if obj is None or meta(obj).get("uid") != uid:
            return None
        return obj

    def dependents(self, uid: str) -> list[Node]:
        return [Node.from_json(o) for inf in self.informers
                for o in inf.cache.by_index("owner", uid)]

    def rt_for(self, api_version: str, kind: str) -> ResourceType | None:
        return self.registry.by_api_version_kind(api_version, kind)

    async def owner_info(self, ref: OwnerRef, namespace: str) -> OwnerInfo | str | None:
        """Live owner state: OwnerInfo, None (absent, verified), or "unknown"."""
        rt = self.rt_for(ref.api_version, ref.kind)
        if rt is None:
            return "unknown"
        try:
            obj = await self.client.get(rt, ref.name, namespace if rt.namespaced else None)
        except StatusError as err:
            if err.code == 404:
                return None
            raise
        m = meta(obj)
        if m.get("uid") != ref.uid:
            return None  # same name, another object: the owner we knew is gone
        return OwnerInfo(bool(m.get("deletionTimestamp")), tuple(m.get("finalizers") or ()))

    # -- sync -------------------------------------------------------------------------

    async def sync(self, key: str) -> None:
        obj = self.lookup(key)
        if obj is None:
            return
        node = Node.from_json(obj)
        if node.deleting and {ORPHAN, FOREGROUND} & set(node.finalizers):
            actions = process_deleting_owner(node, self.dependents(node.uid))
        else:
            owners: dict[str, OwnerInfo | None] = {}
            for ref in node.owners:
                cached = self.lookup(ref.uid)
                if cached is not None:
                    m = meta(cached)
                    owners[ref.uid] = OwnerInfo(bool(m.get("deletionTimestamp")),
                                                tuple(m.get("finalizers") or ()))
                    continue
                info = await self.owner_info(ref, node.namespace)
                if not isinstance(info, str):
                    owners[ref.uid] = info
            actions = attempt_to_delete(node, owners, bool(self.dependents(node.uid)))
        for action in actions:
            await self.apply(action)

    async def apply(self, action: Action) -> None:
        node = action.node
        rt = self.rt_for(node.api_version, node.kind)
        if rt is None:
            log.info("component=gc event=unknown-kind kind=%s", node.kind)
            return
        ns = node.namespace or None
        try:
            if isinstance(action, Delete):
                log.info("component=gc event=delete kind=%s ns=%s name=%s policy=%s",
                         node.kind, node.namespace, node.name, action.policy)
                await self.client.delete(rt, node.name, ns, propagation_policy=action.policy,
                                         preconditions={"uid": node.uid})
            elif isinstance(action, SetOwners):
                await self.client.patch(
                    rt, node.name,
                    {"metadata": {"ownerReferences": [dict(r) for r in action.owners],
                                  "resourceVersion": node.resource_version}},
                    ns, patch_type="merge",
                )
            else:
                await self.client.patch(
                    rt, node.name,
                    {"metadata": {"finalizers": [f for f in node.finalizers
                                                 if f != action.finalizer],
                                  "resourceVersion": node.resource_version}},
                    ns, patch_type="merge",
                )
        except StatusError as err:
            if err.code != 404:
                raise
