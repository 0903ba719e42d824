"""ReplicaSets → Pods: the pure planner, then a reconciler with expectations.

`plan(rs, pods, now)` is one sync of the Kubernetes ReplicaSet controller
(pkg/controller/replicaset): claim pods (adopt matching orphans, release owned pods that
no longer match), create or delete pods to reach spec.replicas (deleting the pods
Kubernetes ranks first, see `deletion_order`) and compute status.

The reconciler keeps *expectations* like Kubernetes: after asking for N creates it does
not act on that ReplicaSet again until its pod informer has seen them (or a timeout
passes), because a lagging cache would otherwise make it create the same pods twice.
"""

from __future__ import annotations

import copy
import functools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from podnet.api.errors import StatusError
from podnet.client.informer import by_controller_uid, object_key
from podnet.controllers.base import PODS, REPLICASETS, Controller, Deps
from podnet.controllers.common import (
    JSON,
    controller_ref,
    is_controlled_by,
    is_deleting,
    is_pod_active,
    is_pod_available,
    is_pod_ready,
    labels_of,
    matches_labels,
    matches_selector,
    meta,
    name_of,
    namespace_of,
    new_controller_ref,
    parse_time,
    pod_condition,
    uid_of,
)

DELETION_COST = "controller.kubernetes.io/pod-deletion-cost"
BURST_REPLICAS = 500  # --replicaset-controller burstReplicas default
_PHASE_ORDINAL = {"Pending": 0, "Unknown": 1, "Running": 2}


# -- deletion ranking -------------------------------------------------------------------


def _ready_time(pod: Mapping[str, Any]) -> datetime | None:
    cond = pod_condition(pod, "Ready")
    return parse_time(cond.get("lastTransitionTime")) if cond else None


def _after_or_zero(t1: datetime | None, t2: datetime | None) -> bool:
    if t1 is None or t2 is None:
        return t1 is None
    return t1 > t2


def _log_rank(t: datetime, now: datetime) -> int:
    nanos = (now - t).total_seconds() * 1e9
    return int(math.log2(nanos)) if nanos > 0 else -1


def _max_restarts(pod: Mapping[str, Any]) -> int:
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    return max((int(s.get("restartCount") or 0) for s in statuses), default=0)


def _deletion_cost(pod: Mapping[str, Any]) -> int:
    try:
        return int((meta(pod).get("annotations") or {}).get(DELETION_COST, "0"))
    except ValueError:
        return 0


def _newer_first(
    t1: datetime | None, t2: datetime | None, uid1: str, uid2: str, now: datetime | None
) -> bool:
    """LogarithmicScaleDown: times in the same power-of-two age bucket count as equal,
    and then the uid breaks the tie (so the choice is random-ish but stable)."""
    if now is None or t1 is None or t2 is None:
        return _after_or_zero(t1, t2)
    diff = _log_rank(t1, now) - _log_rank(t2, now)
    if diff == 0:
        return uid1 < uid2
    return diff < 0


def _less(
    a: Mapping[str, Any], b: Mapping[str, Any], rank_a: int, rank_b: int, now: datetime | None
) -> bool:
    """ActivePodsWithRanks.Less: True if `a` should be deleted before `b`."""
    node_a = (a.get("spec") or {}).get("nodeName") or ""
    node_b = (b.get("spec") or {}).get("nodeName") or ""
    # 1. unassigned < assigned
    if node_a != node_b and (not node_a or not node_b):
        return not node_a
    # 2. Pending < Unknown < Running
    pa = _PHASE_ORDINAL.get((a.get("status") or {}).get("phase", ""), 0)
    pb = _PHASE_ORDINAL.get((b.get("status") or {}).get("phase", ""), 0)
    if pa != pb:
        return pa < pb
    # 3. not ready < ready
    ra, rb = is_pod_ready(a), is_pod_ready(b)
    if ra != rb:
        return not ra
    # 4. lower pod-deletion-cost first
    ca, cb = _deletion_cost(a), _deletion_cost(b)
    if ca != cb:
        return ca < cb
    # 5. doubled up (more siblings on the same node) first
    if rank_a != rank_b:
        return rank_a > rank_b
    # 6. ready for less time first
    if ra and rb:
        ta, tb = _ready_time(a), _ready_time(b)
        if ta != tb:
            return _newer_first(ta, tb, uid_of(a), uid_of(b), now)
    # 7. more restarts first
    xa, xb = _max_restarts(a), _max_restarts(b)
    if xa != xb:
        return xa > xb
    # 8. newer first
    ta = parse_time(meta(a).get("creationTimestamp"))
    tb = parse_time(meta(b).get("creationTimestamp"))
    if ta != tb:
        return _newer_first(ta, tb, uid_of(a), uid_of(b), now)
    return False


def deletion_order(
    pods: Sequence[Mapping[str, Any]],
    related: Sequence[Mapping[str, Any]] | None = None,
    now: datetime | None = None,
) -> list[JSON]:
    """Pods in the order Kubernetes deletes them (getPodsToDelete).

    `related` are the active pods of every ReplicaSet with the same owner (they count
    toward "doubled up" on a node); it defaults to `pods`.
    """
    on_node: dict[str, int] = {}
    for p in related if related is not None else pods:
        node = (p.get("spec") or {}).get("nodeName")
        if node:
            on_node[node] = on_node.get(node, 0) + 1
    ranked = [
        (dict(p), on_node.get((p.get("spec") or {}).get("nodeName") or "", 0)) for p in pods
    ]

    def cmp(x: tuple[JSON, int], y: tuple[JSON, int]) -> int:
        if _less(x[0], y[0], x[1], y[1], now):
            return -1
        if _less(y[0], x[0], y[1], x[1], now):
            return 1
        return 0

    return [p for p, _ in sorted(ranked, key=functools.cmp_to_key(cmp))]


# -- the plan -------------------------------------------------------------------------


def pod_from_template(rs: Mapping[str, Any]) -> JSON:
    """GetPodFromTemplate: generateName `<rs>-`, the template's labels, annotations and
    finalizers, and a controller ownerReference to the ReplicaSet."""
    template = (rs.get("spec") or {}).get("template") or {}
    tmeta = template.get("metadata") or {}
    metadata: JSON = {"generateName": f"{name_of(rs)}-", "namespace": namespace_of(rs)}
    for key in ("labels", "annotations", "finalizers"):
        if tmeta.get(key):
            metadata[key] = copy.deepcopy(tmeta[key])
    metadata["ownerReferences"] = [new_controller_ref(rs, "apps/v1", "ReplicaSet")]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": metadata,
        "spec": copy.deepcopy(template.get("spec") or {}),
    }


@dataclass
class Plan:
    """Pods to create (from the template; the server names them), pods to delete, pods
    to adopt or release (ownerReferences to patch), the new status, and when to look
    again (minReadySeconds)."""

    creates: list[JSON] = field(default_factory=list)
    deletes: list[JSON] = field(default_factory=list)
    adopt: list[JSON] = field(default_factory=list)
    release: list[JSON] = field(default_factory=list)
    status: JSON = field(default_factory=dict)
    requeue_after: float | None = None


def claim(
    rs: Mapping[str, Any], pods: Sequence[Mapping[str, Any]]
) -> tuple[list[JSON], list[JSON], list[JSON]]:
    """ClaimPods: (owned and still matching, orphans to adopt, owned to release)."""
    selector = (rs.get("spec") or {}).get("selector")
    ns = namespace_of(rs)
    owned: list[JSON] = []
    adopt: list[JSON] = []
    release: list[JSON] = []
    for p in pods:
        if namespace_of(p) != ns:
            continue
        matches = matches_selector(selector, labels_of(p))
        if is_controlled_by(p, rs):
            (owned if matches else release).append(dict(p))
        elif controller_ref(p) is None and matches and is_pod_active(p) and not is_deleting(rs):
            adopt.append(dict(p))
    return owned, adopt, release


def plan(
    rs: Mapping[str, Any],
    pods: Sequence[Mapping[str, Any]],
    now: datetime,
    *,
    manage: bool = True,
    burst: int = BURST_REPLICAS,
) -> Plan:
    """One sync of a ReplicaSet. `pods` may be every pod of the namespace. With
    `manage=False` (unsatisfied expectations, or the RS is being deleted) only the
    status is computed."""
    result = Plan()
    owned, result.adopt, result.release = claim(rs, pods)
    active = [p for p in owned + result.adopt if is_pod_active(p)]
    spec = rs.get("spec") or {}
    want = int(spec["replicas"]) if spec.get("replicas") is not None else 1
    if manage and not is_deleting(rs):
        diff = len(active) - want
        if diff < 0:
            result.creates = [pod_from_template(rs) for _ in range(min(-diff, burst))]
        elif diff > 0:
            result.deletes = deletion_order(active, now=now)[: min(diff, burst)]
    result.status = status(rs, active, now)
    min_ready = int(spec.get("minReadySeconds") or 0)
    if min_ready > 0 and result.status.get("readyReplicas", 0) != result.status.get(
        "availableReplicas", 0
    ):
        result.requeue_after = float(min_ready)
    return result


def status(rs: Mapping[str, Any], active: Sequence[Mapping[str, Any]], now: datetime) -> JSON:
    """calculateStatus: replicas and observedGeneration always; the rest when non-zero
    (omitempty), as the API returns them."""
    spec = rs.get("spec") or {}
    template_labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
    min_ready = int(spec.get("minReadySeconds") or 0)
    counts = {
        "fullyLabeledReplicas": sum(
            1 for p in active if matches_labels(template_labels, labels_of(p))
        ),
        "readyReplicas": sum(1 for p in active if is_pod_ready(p)),
        "availableReplicas": sum(1 for p in active if is_pod_available(p, min_ready, now)),
    }
    out: JSON = {"replicas": len(active)}
    out.update({k: v for k, v in counts.items() if v})
    generation = int(meta(rs).get("generation") or 0)
    if generation:
        out["observedGeneration"] = generation
    conditions = (rs.get("status") or {}).get("conditions")
    if conditions:
        out["conditions"] = conditions
    return out


# -- reconciler -----------------------------------------------------------------------


class Expectations:
    """Creates and deletes asked for but not yet seen in the pod informer, per RS key.

    Satisfied when both are zero, or after `ttl` seconds (a lost watch event must not
    wedge a ReplicaSet forever; Kubernetes uses 5 minutes).
    """

    def __init__(self, ttl: float = 300.0) -> None:
        self.ttl = ttl
        self._adds: dict[str, int] = {}
        self._deletes: dict[str, set[str]] = {}
        self._since: dict[str, datetime] = {}

    def expect(self, key: str, adds: int, deletes: Sequence[str], now: datetime) -> None:
        self._adds[key] = adds
        self._deletes[key] = set(deletes)
        self._since[key] = now

    def created(self, key: str) -> None:
        if self._adds.get(key, 0) > 0:
            self._adds[key] -= 1

    def deleted(self, key: str, pod_key: str) -> None:
        self._deletes.get(key, set()).discard(pod_key)

    def satisfied(self, key: str, now: datetime) -> bool:
        if key not in self._since:
            return True
        if self._adds.get(key, 0) <= 0 and not self._deletes.get(key):
            return True
        return (now - self._since[key]).total_seconds() > self.ttl

    def forget(self, key: str) -> None:
        self._adds.pop(key, None)
        self._deletes.pop(key, None)
        self._since.pop(key, None)


class ReplicaSetController(Controller):
    name = "replicaset"

    def __init__(self, deps: Deps) -> None:
        super().__init__(deps)
        self.replicasets = deps.informers.informer(REPLICASETS)
        self.pods = deps.informers.informer(PODS)
        self.pods.cache.add_index("controller", by_controller_uid)
        self.expectations = Expectations()
        self.replicasets.on_add(self.enqueue)
        self.replicasets.on_update(lambda _old, new: self.enqueue(new))
        self.replicasets.on_delete(self._rs_deleted)
        self.pods.on_add(self._pod_added)
        self.pods.on_update(self._pod_updated)
        self.pods.on_delete(self._pod_deleted)

    def _rs_deleted(self, rs: JSON) -> None:
        self.expectations.forget(object_key(rs))

    def _owner_key(self, pod: Mapping[str, Any]) -> str | None:
        ref = controller_ref(pod)
        if ref is None or ref.get("kind") != "ReplicaSet":
            return None
        return f"{namespace_of(pod)}/{ref.get('name')}"

    def _pod_added(self, pod: JSON) -> None:
        key = self._owner_key(pod)
        if key is not None:
            self.expectations.created(key)
            self.queue.add(key)
        else:
            self._wake_matching(pod)

    def _pod_updated(self, old: JSON, new: JSON) -> None:
        if is_deleting(new) and not is_deleting(old):
            # A pod with a deletionTimestamp counts as deleted for expectations.
            self._pod_deleted(new)
            return
        for pod in (old, new):
            key = self._owner_key(pod)
            if key is not None:
                self.queue.add(key)
        if controller_ref(new) is None:
            self._wake_matching(new)

    def _pod_deleted(self, pod: JSON) -> None:
        key = self._owner_key(pod)
        if key is not None:
            self.expectations.deleted(key, object_key(pod))
            self.queue.add(key)

    def _wake_matching(self, pod: JSON) -> None:
        """An orphan appeared: every RS whose selector matches it may adopt it."""
        for rs in self.replicasets.cache.list(namespace_of(pod)):
            if matches_selector((rs.get("spec") or {}).get("selector"), labels_of(pod)):
                self.enqueue(rs)

    async def sync(self, key: str) -> None:
        rs = self.replicasets.cache.get(key)
        if rs is None:
            self.expectations.forget(key)
            return
        now = self.clock.now()
        pods = self.pods.cache.by_index("controller", uid_of(rs))
        orphans = [
            p for p in self.pods.cache.list(namespace_of(rs)) if controller_ref(p) is None
        ]
        manage = self.expectations.satisfied(key, now)
        p = plan(rs, pods + orphans, now, manage=manage)
        for pod in p.adopt:
            await self._set_owner(pod, [*(meta(pod).get("ownerReferences") or []),
                                        new_controller_ref(rs, "apps/v1", "ReplicaSet")])
        for pod in p.release:
            refs = [r for r in meta(pod).get("ownerReferences") or [] if r.get("uid") != uid_of(rs)]
            await self._set_owner(pod, refs)
        if p.creates or p.deletes:
            self.expectations.expect(key, len(p.creates), [object_key(d) for d in p.deletes], now)
        await self._create(rs, key, p.creates)
        for pod in p.deletes:
            try:
                await self.client.delete(PODS, name_of(pod), namespace_of(pod),
                                         preconditions={"uid": uid_of(pod)})
            except StatusError as err:
                self.expectations.deleted(key, object_key(pod))
                if err.code != 404:
                    await self.recorder.warning(rs, "FailedDelete", f"Error deleting: {err}")
                    raise
                continue
            await self.recorder.normal(rs, "SuccessfulDelete", f"Deleted pod: {name_of(pod)}")
        if p.status != (rs.get("status") or {}):
            updated = copy.deepcopy(rs)
            updated["status"] = p.status
            await self.client.update_status(REPLICASETS, updated)
        if p.requeue_after is not None:
            self.queue.add_after(key, p.requeue_after)

    async def _create(self, rs: JSON, key: str, pods: list[JSON]) -> None:
        """Slow start, as Kubernetes does: batches of 1, 2, 4, ...; the first failure
        stops the rest (a quota or admission error would fail them all)."""
        batch, i = 1, 0
        while i < len(pods):
            chunk = pods[i : i + batch]
            for pod in chunk:
                try:
                    created = await self.client.create(PODS, pod)
                except StatusError as err:
                    for _ in range(len(pods) - i):
                        self.expectations.created(key)
                    await self.recorder.warning(rs, "FailedCreate", f"Error creating: {err}")
                    raise
                i += 1
                await self.recorder.normal(rs, "SuccessfulCreate",
                                           f"Created pod: {name_of(created)}")
            batch *= 2

    async def _set_owner(self, pod: JSON, refs: list[Any]) -> None:
        await self.client.patch(
            PODS, name_of(pod),
            {"metadata": {"ownerReferences": refs, "uid": uid_of(pod)}},
            namespace_of(pod), patch_type="merge",
        )
