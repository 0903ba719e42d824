"""Deployments → ReplicaSets: the pure rollout planner, then a small reconciler.

`plan(deployment, replica_sets, now)` does what one sync of the Kubernetes Deployment
controller does (pkg/controller/deployment: sync.go, rolling.go, recreate.go,
progress.go and util/deployment_util.go) and returns the writes instead of making them:
ReplicaSets to create / scale / delete, events, the Deployment's new revision
annotation and its new status. The reconciler applies the plan.

One sync does at most one rollout step, as Kubernetes does: create the new ReplicaSet
(already scaled up as far as maxSurge allows) and scale old ones down as far as
maxUnavailable allows; each later sync, triggered by ReplicaSet status changes, goes a
step further.
"""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from podnet.api.errors import StatusError
from podnet.client.informer import by_controller_uid, object_key
from podnet.controllers.base import DEPLOYMENTS, REPLICASETS, Controller, Deps
from podnet.controllers.common import (
    JSON,
    get_condition,
    is_controlled_by,
    is_deleting,
    meta,
    name_of,
    namespace_of,
    new_controller_ref,
    parse_time,
    rfc3339,
    set_condition,
)

HASH_LABEL = "pod-template-hash"
REVISION = "deployment.kubernetes.io/revision"
REVISION_HISTORY = "deployment.kubernetes.io/revision-history"
DESIRED_REPLICAS = "deployment.kubernetes.io/desired-replicas"
MAX_REPLICAS = "deployment.kubernetes.io/max-replicas"
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
# Deployment annotations never copied to its ReplicaSets (annotationsToSkip).
_SKIP_ANNOTATIONS = frozenset(
    {LAST_APPLIED, REVISION, REVISION_HISTORY, DESIRED_REPLICAS, MAX_REPLICAS,
     "deprecated.deployment.rollback.to"}
)

# Condition reasons, from deployment_util.go.
NEW_RS_CREATED = "NewReplicaSetCreated"
FOUND_NEW_RS = "FoundNewReplicaSet"
NEW_RS_AVAILABLE = "NewReplicaSetAvailable"
RS_UPDATED = "ReplicaSetUpdated"
TIMED_OUT = "ProgressDeadlineExceeded"
MIN_AVAILABLE = "MinimumReplicasAvailable"
MIN_UNAVAILABLE = "MinimumReplicasUnavailable"

_SAFE = "bcdfghjklmnpqrstvwxz2456789"  # rand.SafeEncodeString's alphabet (no vowels)


# -- small rules ------------------------------------------------------------------------


def pod_template_hash(template: Mapping[str, Any], collision_count: int | None = None) -> str:
    """A short, stable, DNS-safe hash of a pod template (controller.ComputeHash).

    Kubernetes hashes the Go struct with FNV-32a and encodes the decimal digits with
    SafeEncodeString; we hash canonical JSON instead, so the values differ from a real
    cluster's but have the same shape (up to 10 chars from a vowel-free alphabet) and the
    same properties: equal templates, equal hash; collisionCount changes it.
    """
    data = json.dumps(template, sort_keys=True, separators=(",", ":")).encode()
    h = 0x811C9DC5
    for byte in data:
        h = ((h ^ byte) * 0x01000193) & 0xFFFFFFFF
    if collision_count:
        for byte in str(collision_count).encode():
            h = ((h ^ byte) * 0x01000193) & 0xFFFFFFFF
    return "".join(_SAFE[ord(c) % len(_SAFE)] for c in str(h))


def scaled_value(value: int | str | None, total: int, round_up: bool, default: str) -> int:
    """intstr.GetScaledValueFromIntOrPercent: ints as is, "25%" of total rounded."""
    if value is None:
        value = default
    if isinstance(value, int):
        return value
    if not value.endswith("%"):
        return int(value)
    exact = int(value[:-1]) * total / 100
    return math.ceil(exact) if round_up else math.floor(exact)


def resolve_fenceposts(deployment: Mapping[str, Any]) -> tuple[int, int]:
    """(maxSurge, maxUnavailable): surge rounds up, unavailable down; both 0 → (0, 1)."""
    spec = deployment.get("spec") or {}
    ru = ((spec.get("strategy") or {}).get("rollingUpdate")) or {}
    desired = replicas_of(deployment)
    surge = scaled_value(ru.get("maxSurge"), desired, True, "25%")
    unavailable = scaled_value(ru.get("maxUnavailable"), desired, False, "25%")
    if surge == 0 and unavailable == 0:
        unavailable = 1
    return surge, unavailable


def replicas_of(obj: Mapping[str, Any]) -> int:
    spec = obj.get("spec") or {}
    return int(spec["replicas"]) if spec.get("replicas") is not None else 1


def _status_int(obj: Mapping[str, Any], name: str) -> int:
    return int((obj.get("status") or {}).get(name) or 0)


def revision_of(rs: Mapping[str, Any]) -> int:
    try:
        return int((meta(rs).get("annotations") or {}).get(REVISION, "0"))
    except ValueError:
        return 0


def is_rolling(deployment: Mapping[str, Any]) -> bool:
    strategy = ((deployment.get("spec") or {}).get("strategy") or {}).get("type")
    return strategy != "Recreate"


def max_surge(deployment: Mapping[str, Any]) -> int:
    return resolve_fenceposts(deployment)[0] if is_rolling(deployment) else 0


def max_unavailable(deployment: Mapping[str, Any]) -> int:
    """deploymentutil.MaxUnavailable: 0 for Recreate, never above replicas."""
    if not is_rolling(deployment) or replicas_of(deployment) == 0:
        return 0
    return min(resolve_fenceposts(deployment)[1], replicas_of(deployment))


def equal_ignore_hash(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    """Whether two pod templates are equal apart from the pod-template-hash label."""
    a2, b2 = copy.deepcopy(dict(a)), copy.deepcopy(dict(b))
    for t in (a2, b2):
        labels = (t.get("metadata") or {}).get("labels")
        if labels:
            labels.pop(HASH_LABEL, None)
            if not labels:
                del t["metadata"]["labels"]
        if t.get("metadata") == {}:
            del t["metadata"]
    return a2 == b2


def _by_creation(rss: Sequence[JSON]) -> list[JSON]:
    return sorted(rss, key=lambda r: (meta(r).get("creationTimestamp") or "", name_of(r)))


def find_new_and_old(
    deployment: Mapping[str, Any], replica_sets: Sequence[Mapping[str, Any]]
) -> tuple[JSON | None, list[JSON]]:
    """FindNewReplicaSet / FindOldReplicaSets among the Deployment's own ReplicaSets:
    the oldest one whose template matches is the new one; every other is old."""
    owned = _by_creation([dict(r) for r in replica_sets if is_controlled_by(r, deployment)])
    template = (deployment.get("spec") or {}).get("template") or {}
    new = next(
        (r for r in owned if equal_ignore_hash((r.get("spec") or {}).get("template") or {},
                                               template)),
        None,
    )
    return new, [r for r in owned if r is not new]


def new_rs_new_replicas(
    deployment: Mapping[str, Any], all_rss: Sequence[Mapping[str, Any]], new_replicas: int
) -> int:
    """NewRSNewReplicas: how far the new ReplicaSet may grow this step."""
    desired = replicas_of(deployment)
    if not is_rolling(deployment):
        return desired
    surge = max_surge(deployment)
    current = sum(replicas_of(r) for r in all_rss)
    max_total = desired + surge
    if current >= max_total:
        return new_replicas
    return new_replicas + min(max_total - current, desired - new_replicas)


# -- the plan -------------------------------------------------------------------------


@dataclass
class Plan:
    """The writes one sync wants, in order: creates, updates (scales and annotation
    changes, whole objects), deletes; then the Deployment's own revision annotation and
    status. `events` are (type, reason, message) about the Deployment."""

    creates: list[JSON] = field(default_factory=list)
    updates: list[JSON] = field(default_factory=list)
    deletes: list[JSON] = field(default_factory=list)
    events: list[tuple[str, str, str]] = field(default_factory=list)
    revision: str | None = None
    status: JSON = field(default_factory=dict)
    requeue_after: float | None = None


class _Sync:
    """The state of one sync: the ReplicaSets as they will be after the plan's writes."""

    def __init__(self, deployment: Mapping[str, Any], replica_sets: Sequence[Mapping[str, Any]],
                 now: datetime) -> None:
        self.d = deployment
        self.now = now
        self.plan = Plan()
        self.new, self.old = find_new_and_old(deployment, replica_sets)
        self.conditions: list[JSON] = [
            dict(c) for c in (deployment.get("status") or {}).get("conditions") or []
        ]

    @property
    def all(self) -> list[JSON]:
        return ([self.new] if self.new is not None else []) + self.old

    def _touch(self, rs: JSON) -> None:
        if rs not in self.plan.updates and rs not in self.plan.creates:
            self.plan.updates.append(rs)

    def scale(self, rs: JSON, replicas: int) -> bool:
        """scaleReplicaSetAndRecordEvent: new size plus the replicas annotations."""
        before = replicas_of(rs)
        changed = self._set_replica_annotations(rs)
        if before == replicas and not changed:
            return False
        if before != replicas:
            rs.setdefault("spec", {})["replicas"] = replicas
            direction = "up" if replicas > before else "down"
            self.plan.events.append((
                "Normal", "ScalingReplicaSet",
                f"Scaled {direction} replica set {name_of(rs)} from {before} to {replicas}",
            ))
        self._touch(rs)
        return before != replicas

    def _set_replica_annotations(self, rs: JSON) -> bool:
        ann = rs.setdefault("metadata", {}).setdefault("annotations", {})
        want = {
            DESIRED_REPLICAS: str(replicas_of(self.d)),
            MAX_REPLICAS: str(replicas_of(self.d) + max_surge(self.d)),
        }
        if all(ann.get(k) == v for k, v in want.items()):
            return False
        ann.update(want)
        return True

    def set_progressing(self, status: str, reason: str, message: str) -> None:
        stamp = rfc3339(self.now)
        self.conditions = set_condition(self.conditions, {
            "type": "Progressing", "status": status, "lastUpdateTime": stamp,
            "lastTransitionTime": stamp, "reason": reason, "message": message,
        })

    # -- new ReplicaSet ---------------------------------------------------------------

    def ensure_new(self, create: bool) -> None:
        """getNewReplicaSet: sync the revision of the existing new RS, or create it."""
        max_old = max((revision_of(r) for r in self.old), default=0)
        revision = str(max_old + 1)
        if self.new is not None:
            ann = self.new.setdefault("metadata", {}).setdefault("annotations", {})
            if revision_of(self.new) < max_old + 1:
                ann[REVISION] = revision
                self._touch(self.new)
            if self._set_replica_annotations(self.new):
                self._touch(self.new)
            if get_condition(self.conditions, "Progressing") is None:
                self.set_progressing("True", FOUND_NEW_RS,
                                     f'Found new replica set "{name_of(self.new)}"')
            self._sync_revision(str(revision_of(self.new)))
            return
        if not create:
            return
        rs = self.build_new(revision)
        rs["spec"]["replicas"] = new_rs_new_replicas(self.d, [*self.old, rs], 0)
        self.plan.creates.append(rs)
        self.new = rs
        if replicas_of(rs) > 0:
            self.plan.events.append((
                "Normal", "ScalingReplicaSet",
                f"Scaled up replica set {name_of(rs)} from 0 to {replicas_of(rs)}",
            ))
        self.set_progressing("True", NEW_RS_CREATED, f'Created new replica set "{name_of(rs)}"')
        self._sync_revision(revision)

    def _sync_revision(self, revision: str) -> None:
        if (meta(self.d).get("annotations") or {}).get(REVISION) != revision:
            self.plan.revision = revision

    def build_new(self, revision: str) -> JSON:
        spec = self.d.get("spec") or {}
        collision = (self.d.get("status") or {}).get("collisionCount")
        template = copy.deepcopy(spec.get("template") or {})
        hsh = pod_template_hash(template, collision)
        template.setdefault("metadata", {}).setdefault("labels", {})[HASH_LABEL] = hsh
        selector = copy.deepcopy(spec.get("selector") or {})
        selector.setdefault("matchLabels", {})[HASH_LABEL] = hsh
        annotations = {
            k: v for k, v in (meta(self.d).get("annotations") or {}).items()
            if k not in _SKIP_ANNOTATIONS
        }
        annotations[REVISION] = revision
        annotations[DESIRED_REPLICAS] = str(replicas_of(self.d))
        annotations[MAX_REPLICAS] = str(replicas_of(self.d) + max_surge(self.d))
        rs_spec: JSON = {"replicas": 0, "selector": selector, "template": template}
        if spec.get("minReadySeconds"):
            rs_spec["minReadySeconds"] = spec["minReadySeconds"]
        return {
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "metadata": {
                "name": f"{name_of(self.d)}-{hsh}",
                "namespace": namespace_of(self.d),
                "labels": dict(template["metadata"]["labels"]),
                "annotations": annotations,
                "ownerReferences": [new_controller_ref(self.d, "apps/v1", "Deployment")],
            },
            "spec": rs_spec,
        }

    # -- rolling update ---------------------------------------------------------------

    def reconcile_new(self) -> bool:
        """reconcileNewReplicaSet: grow (or shrink) the new RS; True if it changed."""
        assert self.new is not None
        desired = replicas_of(self.d)
        current = replicas_of(self.new)
        if current == desired:
            return False
        if current > desired:
            return self.scale(self.new, desired)
        return self.scale(self.new, new_rs_new_replicas(self.d, self.all, current))

    def reconcile_old(self) -> bool:
        """reconcileOldReplicaSets: shrink old RSs without dropping below
        replicas - maxUnavailable available pods; unhealthy ones go first."""
        assert self.new is not None
        old_pods = sum(replicas_of(r) for r in self.old)
        if old_pods == 0:
            return False
        all_pods = sum(replicas_of(r) for r in self.all)
        min_available = replicas_of(self.d) - max_unavailable(self.d)
        new_unavailable = replicas_of(self.new) - _status_int(self.new, "availableReplicas")
        max_scaled_down = all_pods - min_available - new_unavailable
        if max_scaled_down <= 0:
            return False
        cleaned = self._cleanup_unhealthy(max_scaled_down)
        scaled = self._scale_down_old(min_available)
        return cleaned + scaled > 0

    def _cleanup_unhealthy(self, max_cleanup: int) -> int:
        total = 0
        for rs in _by_creation(self.old):
            if total >= max_cleanup:
                break
            replicas = replicas_of(rs)
            available = _status_int(rs, "availableReplicas")
            if replicas == 0 or replicas == available:
                continue
            down = min(max_cleanup - total, replicas - available)
            self.scale(rs, replicas - down)
            total += down
        return total

    def _scale_down_old(self, min_available: int) -> int:
        available = sum(_status_int(r, "availableReplicas") for r in self.all)
        if available <= min_available:
            return 0
        budget = available - min_available
        total = 0
        for rs in _by_creation(self.old):
            if total >= budget:
                break
            replicas = replicas_of(rs)
            if replicas == 0:
                continue
            down = min(replicas, budget - total)
            self.scale(rs, replicas - down)
            total += down
        return total

    def cleanup_history(self) -> None:
        """cleanupDeployment: keep revisionHistoryLimit scaled-to-zero old RSs."""
        limit = (self.d.get("spec") or {}).get("revisionHistoryLimit")
        limit = 10 if limit is None else int(limit)
        cleanable = [
            r for r in self.old
            if replicas_of(r) == 0 and _status_int(r, "replicas") == 0 and not is_deleting(r)
        ]
        excess = len(cleanable) - limit
        if excess <= 0:
            return
        for rs in sorted(cleanable, key=lambda r: (revision_of(r), name_of(r)))[:excess]:
            self.plan.deletes.append(rs)

    # -- status -----------------------------------------------------------------------

    def status(self) -> JSON:
        """calculateStatus + syncRolloutStatus."""
        rss = self.all
        desired = replicas_of(self.d)
        available = sum(_status_int(r, "availableReplicas") for r in rss)
        total = sum(replicas_of(r) for r in rss)
        old_status = self.d.get("status") or {}
        counts = {
            "observedGeneration": int(meta(self.d).get("generation") or 0),
            "replicas": sum(_status_int(r, "replicas") for r in rss),
            "updatedReplicas": _status_int(self.new, "replicas") if self.new else 0,
            "readyReplicas": sum(_status_int(r, "readyReplicas") for r in rss),
            "availableReplicas": available,
            "unavailableReplicas": max(0, total - available),
        }
        stamp = rfc3339(self.now)
        if available >= desired - max_unavailable(self.d):
            avail = ("True", MIN_AVAILABLE, "Deployment has minimum availability.")
        else:
            avail = ("False", MIN_UNAVAILABLE, "Deployment does not have minimum availability.")
        self.conditions = set_condition(self.conditions, {
            "type": "Available", "status": avail[0], "lastUpdateTime": stamp,
            "lastTransitionTime": stamp, "reason": avail[1], "message": avail[2],
        })
        self._progress(counts, old_status)
        status: JSON = {k: v for k, v in counts.items() if v}
        if old_status.get("collisionCount") is not None:
            status["collisionCount"] = old_status["collisionCount"]
        status["conditions"] = self.conditions
        return status

    def _progress(self, counts: Mapping[str, int], old: Mapping[str, Any]) -> None:
        rs_name = name_of(self.new) if self.new else ""
        what = f'ReplicaSet "{rs_name}"' if self.new else f'Deployment "{name_of(self.d)}"'
        desired = replicas_of(self.d)
        complete = (
            counts["updatedReplicas"] == desired
            and counts["replicas"] == desired
            and counts["availableReplicas"] == desired
            and counts["observedGeneration"] >= int(meta(self.d).get("generation") or 0)
        )
        current = get_condition(self.conditions, "Progressing")
        old_old = int(old.get("replicas") or 0) - int(old.get("updatedReplicas") or 0)
        new_old = counts["replicas"] - counts["updatedReplicas"]
        progressing = (
            counts["updatedReplicas"] > int(old.get("updatedReplicas") or 0)
            or new_old < old_old
            or counts["readyReplicas"] > int(old.get("readyReplicas") or 0)
            or counts["availableReplicas"] > int(old.get("availableReplicas") or 0)
        )
        deadline = (self.d.get("spec") or {}).get("progressDeadlineSeconds", 600)
        if complete:
            self.set_progressing("True", NEW_RS_AVAILABLE, f"{what} has successfully progressed.")
        elif progressing:
            stamp = rfc3339(self.now)
            cond = {"type": "Progressing", "status": "True", "lastUpdateTime": stamp,
                    "lastTransitionTime": stamp, "reason": RS_UPDATED,
                    "message": f"{what} is progressing."}
            if current is not None and current.get("status") == "True":
                cond["lastTransitionTime"] = current.get("lastTransitionTime", stamp)
            # Progress always refreshes lastUpdateTime (the deadline counts from it).
            self.conditions = [c for c in self.conditions if c.get("type") != "Progressing"]
            self.conditions.append(cond)
        elif current is not None and deadline is not None:
            reason = current.get("reason")
            since = parse_time(current.get("lastUpdateTime"))
            timed_out = reason == TIMED_OUT or (
                reason != NEW_RS_AVAILABLE and since is not None
                and (self.now - since).total_seconds() > deadline
            )
            if timed_out:
                self.set_progressing("False", TIMED_OUT, f"{what} has timed out progressing.")
        if not complete and deadline is not None:
            now_cond = get_condition(self.conditions, "Progressing")
            since = parse_time(now_cond.get("lastUpdateTime")) if now_cond else None
            if now_cond is not None and now_cond.get("reason") != TIMED_OUT and since is not None:
                left = deadline - (self.now - since).total_seconds()
                self.plan.requeue_after = max(1.0, left)


def plan(
    deployment: Mapping[str, Any], replica_sets: Sequence[Mapping[str, Any]], now: datetime
) -> Plan:
    """One sync of a Deployment (see module docstring). `replica_sets` may be every RS of
    the namespace; only those the Deployment controls are used. Inputs are not changed."""
    s = _Sync(deployment, [copy.deepcopy(dict(r)) for r in replica_sets], now)
    spec = deployment.get("spec") or {}
    if is_deleting(deployment) or spec.get("paused"):
        # syncStatusOnly (paused deployments are not rolled; scaling them is a known gap).
        s.plan.status = s.status()
        return s.plan
    if is_rolling(deployment):
        s.ensure_new(create=True)
        if not s.reconcile_new() and not s.reconcile_old() and _complete_after(s):
            s.cleanup_history()
    else:
        s.ensure_new(create=False)
        scaled = False
        for rs in s.old:
            if replicas_of(rs) > 0:
                scaled = s.scale(rs, 0) or scaled
        old_running = sum(_status_int(r, "replicas") for r in s.old)
        if not scaled and old_running == 0:
            if s.new is None:
                s.ensure_new(create=True)
            elif replicas_of(s.new) != replicas_of(deployment):
                s.scale(s.new, replicas_of(deployment))
            elif _complete_after(s):
                s.cleanup_history()
    s.plan.status = s.status()
    return s.plan


def _complete_after(s: _Sync) -> bool:
    desired = replicas_of(s.d)
    return (
        s.new is not None
        and _status_int(s.new, "replicas") == desired
        and _status_int(s.new, "availableReplicas") == desired
        and sum(_status_int(r, "replicas") for r in s.old) == 0
    )


# -- reconciler -----------------------------------------------------------------------


class DeploymentController(Controller):
    """Applies `plan` for each Deployment key; ReplicaSet changes wake their owner."""

    name = "deployment"

    def __init__(self, deps: Deps) -> None:
        super().__init__(deps)
        self.deployments = deps.informers.informer(DEPLOYMENTS)
        self.replicasets = deps.informers.informer(REPLICASETS)
        self.replicasets.cache.add_index("controller", by_controller_uid)
        self.deployments.on_change(self.enqueue)
        self.replicasets.on_change(lambda rs: self.enqueue_controller(rs, "Deployment"))

    async def sync(self, key: str) -> None:
        d = self.deployments.cache.get(key)
        if d is None:
            return
        uid = str(meta(d).get("uid", ""))
        rss = self.replicasets.cache.by_index("controller", uid)
        p = plan(d, rss, self.clock.now())
        for rs in p.creates:
            try:
                await self.client.create(REPLICASETS, rs)
            except StatusError as err:
                if err.reason != "AlreadyExists":
                    raise
                await self._on_collision(d, rs)
                return
        for rs in p.updates:
            await self.client.update(REPLICASETS, rs)
        for rs in p.deletes:
            await self.client.delete(
                REPLICASETS, name_of(rs), namespace_of(rs),
                preconditions={"uid": str(meta(rs).get("uid", ""))},
            )
        for etype, reason, message in p.events:
            await self.recorder.event(d, "Warning" if etype == "Warning" else "Normal",
                                      reason, message)
        latest: JSON = d
        if p.revision is not None:
            updated = copy.deepcopy(d)
            updated["metadata"].setdefault("annotations", {})[REVISION] = p.revision
            latest = await self.client.update(DEPLOYMENTS, updated)
        if p.status != (d.get("status") or {}):
            with_status = copy.deepcopy(latest)
            with_status["status"] = p.status
            await self.client.update_status(DEPLOYMENTS, with_status)
        if p.requeue_after is not None:
            self.queue.add_after(key, p.requeue_after)

    async def _on_collision(self, d: JSON, rs: JSON) -> None:
        """An RS with our name exists: if it is ours with the same template, our cache is
        just behind; otherwise bump collisionCount so the next hash differs."""
        ns, name = namespace_of(rs), name_of(rs)
        existing = await self.client.get(REPLICASETS, name, ns)
        same = is_controlled_by(existing, d) and equal_ignore_hash(
            (existing.get("spec") or {}).get("template") or {},
            (d.get("spec") or {}).get("template") or {},
        )
        if not same:
            updated = copy.deepcopy(d)
            status = updated.setdefault("status", {})
            status["collisionCount"] = int(status.get("collisionCount") or 0) + 1
            await self.client.update_status(DEPLOYMENTS, updated)
        self.queue.add_after(object_key(d), 0.1)
