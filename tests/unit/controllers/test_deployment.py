"""Deployments: rollout steps as a table, rounding, hashing, status and history."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import pytest

from podnet.controllers.deployment import (
    HASH_LABEL,
    REVISION,
    Plan,
    equal_ignore_hash,
    plan,
    pod_template_hash,
    resolve_fenceposts,
)

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def deployment(
    replicas: int = 3,
    image: str = "v1",
    *,
    strategy: dict[str, Any] | None = None,
    generation: int = 1,
    history: int | None = None,
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "replicas": replicas,
        "selector": {"matchLabels": {"app": "web"}},
        "template": {
            "metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "c", "image": image}]},
        },
        "strategy": strategy or {"type": "RollingUpdate",
                                 "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
    }
    if history is not None:
        spec["revisionHistoryLimit"] = history
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default", "uid": "uid-web",
                     "generation": generation},
        "spec": spec,
    }


class Cluster:
    """The Deployment controller plus a make-believe ReplicaSet controller and kubelet:
    applies each plan, then lets pods of every RS come up (or not)."""

    def __init__(self, d: dict[str, Any]) -> None:
        self.d = d
        self.rss: dict[str, dict[str, Any]] = {}
        self.seq = 0
        self.events: list[str] = []

    def sync(self) -> Plan:
        p = plan(self.d, list(self.rss.values()), NOW)
        for rs in p.creates:
            rs = copy.deepcopy(rs)
            self.seq += 1
            rs["metadata"]["uid"] = f"uid-rs-{self.seq}"
            rs["metadata"]["creationTimestamp"] = f"2024-05-01T10:00:{self.seq:02}Z"
            self.rss[rs["metadata"]["name"]] = rs
        for rs in p.updates:
            self.rss[rs["metadata"]["name"]] = copy.deepcopy(rs)
        for rs in p.deletes:
            del self.rss[rs["metadata"]["name"]]
        self.events += [m for _, _, m in p.events]
        self.d["status"] = p.status
        if p.revision:
            self.d["metadata"].setdefault("annotations", {})[REVISION] = p.revision
        return p

    def pods_come_up(self, available: bool = True) -> None:
        for rs in self.rss.values():
            n = rs["spec"]["replicas"]
            rs["status"] = {"replicas": n, "readyReplicas": n if available else 0,
                            "availableReplicas": n if available else 0}

    def sizes(self) -> tuple[int, ...]:
        """Spec replicas of each RS, oldest first."""
        ordered = sorted(self.rss.values(), key=lambda r: r["metadata"]["creationTimestamp"])
        return tuple(r["spec"]["replicas"] for r in ordered)

    def rollout(self, steps: int = 20) -> list[tuple[int, ...]]:
        seen = [self.sizes()]
        for _ in range(steps):
            self.sync()
            self.pods_come_up()
            if self.sizes() != seen[-1]:
                seen.append(self.sizes())
        return seen


def settled(replicas: int = 3, **kw: Any) -> Cluster:
    c = Cluster(deployment(replicas, **kw))
    c.rollout()
    return c


@pytest.mark.parametrize(
    ("replicas", "strategy", "steps"),
    [
        # 25%/25% of 3: surge 1 (rounded up), unavailable 0 (rounded down)
        (3, None, [(3,), (3, 1), (2, 1), (2, 2), (1, 2), (1, 3), (0, 3)]),
        # maxSurge 0, maxUnavailable 1: shrink first, then grow
        (3, {"maxSurge": 0, "maxUnavailable": 1},
         [(3,), (2, 0), (2, 1), (1, 1), (1, 2), (0, 2), (0, 3)]),
        # 10 replicas, 25%: surge 3, unavailable 2 — the sync that creates the new RS also
        # scales the old one down by maxUnavailable (old pods are all available)
        (10, None, [(10,), (8, 3), (8, 5), (3, 5), (3, 10), (0, 10)]),
        # maxSurge 100%: the new RS comes up whole, then the old one goes
        (2, {"maxSurge": "100%", "maxUnavailable": 0}, [(2,), (2, 2), (0, 2)]),
    ],
)
def test_rolling_update_steps(
    replicas: int, strategy: dict[str, Any] | None, steps: list[tuple[int, ...]]
) -> None:
    c = settled(replicas)
    if strategy is not None:
        c.d["spec"]["strategy"] = {"type": "RollingUpdate", "rollingUpdate": strategy}
    c.d["spec"]["template"]["spec"]["containers"][0]["image"] = "v2"
    assert c.rollout() == steps


def test_rolling_update_waits_for_availability() -> None:
    c = settled(3)
    c.d["spec"]["template"]["spec"]["containers"][0]["image"] = "v2"
    c.sync()
    c.pods_come_up(available=False)
    for _ in range(3):
        c.sync()
    assert c.sizes() == (3, 1)  # maxUnavailable 0: nothing old goes until new is available


def test_recreate_scales_old_to_zero_before_creating_new() -> None:
    c = settled(3, strategy={"type": "Recreate"})
    c.d["spec"]["template"]["spec"]["containers"][0]["image"] = "v2"
    c.sync()
    assert c.sizes() == (0,)
    c.sync()
    assert c.sizes() == (0,)  # old pods still running (status.replicas 3)
    c.pods_come_up()
    c.sync()
    assert c.sizes() == (0, 3)


def test_first_sync_creates_named_rs_with_hash_and_annotations() -> None:
    c = Cluster(deployment(3))
    p = c.sync()
    [rs] = p.creates
    h = pod_template_hash(deployment()["spec"]["template"])
    assert rs["metadata"]["name"] == f"web-{h}"
    assert rs["metadata"]["labels"] == {"app": "web", HASH_LABEL: h}
    assert rs["spec"]["selector"] == {"matchLabels": {"app": "web", HASH_LABEL: h}}
    assert rs["spec"]["template"]["metadata"]["labels"][HASH_LABEL] == h
    assert rs["metadata"]["annotations"] == {
        REVISION: "1",
        "deployment.kubernetes.io/desired-replicas": "3",
        "deployment.kubernetes.io/max-replicas": "4",
    }
    assert rs["metadata"]["ownerReferences"] == [{
        "apiVersion": "apps/v1", "kind": "Deployment", "name": "web", "uid": "uid-web",
        "controller": True, "blockOwnerDeletion": True,
    }]
    assert rs["spec"]["replicas"] == 3
    assert p.revision == "1"
    assert c.events == [f"Scaled up replica set web-{h} from 0 to 3"]


def test_status_when_complete_uses_kubernetes_words() -> None:
    c = settled(3)
    c.sync()
    name = next(iter(c.rss))
    status = c.d["status"]
    assert {k: v for k, v in status.items() if k != "conditions"} == {
        "observedGeneration": 1, "replicas": 3, "updatedReplicas": 3, "readyReplicas": 3,
        "availableReplicas": 3,
    }
    conds = {c["type"]: (c["status"], c["reason"], c["message"]) for c in status["conditions"]}
    assert conds == {
        "Available": ("True", "MinimumReplicasAvailable", "Deployment has minimum availability."),
        "Progressing": ("True", "NewReplicaSetAvailable",
                        f'ReplicaSet "{name}" has successfully progressed.'),
    }


def test_status_while_unavailable() -> None:
    c = Cluster(deployment(3))
    c.sync()
    c.pods_come_up(available=False)
    p = c.sync()
    assert p.status["unavailableReplicas"] == 3
    avail = next(x for x in p.status["conditions"] if x["type"] == "Available")
    assert (avail["status"], avail["reason"]) == ("False", "MinimumReplicasUnavailable")


def test_scale_without_rollout() -> None:
    c = settled(5)
    c.d["spec"]["replicas"] = 2
    c.sync()
    assert c.sizes() == (2,)
    assert c.events[-1].startswith("Scaled down replica set web-") and c.events[-1].endswith(
        "from 5 to 2")


def test_rollback_reuses_old_rs_and_bumps_revision() -> None:
    c = settled(2)
    c.d["spec"]["template"]["spec"]["containers"][0]["image"] = "v2"
    c.rollout()
    c.d["spec"]["template"]["spec"]["containers"][0]["image"] = "v1"
    c.rollout()
    revisions = sorted(int(r["metadata"]["annotations"][REVISION]) for r in c.rss.values())
    assert revisions == [2, 3] and len(c.rss) == 2
    assert c.d["metadata"]["annotations"][REVISION] == "3"


def test_revision_history_limit_deletes_oldest() -> None:
    c = settled(1, history=2)
    for image in ("v2", "v3", "v4", "v5"):
        c.d["spec"]["template"]["spec"]["containers"][0]["image"] = image
        c.rollout()
    revisions = sorted(int(r["metadata"]["annotations"][REVISION]) for r in c.rss.values())
    assert revisions == [3, 4, 5]


@pytest.mark.parametrize(
    ("replicas", "surge", "unavailable", "expected"),
    [
        (10, "25%", "25%", (3, 2)),
        (1, "25%", "25%", (1, 0)),
        (4, "25%", "25%", (1, 1)),
        (3, 0, 0, (0, 1)),
        (5, 2, "0%", (2, 0)),
        (10, "35%", "35%", (4, 3)),
    ],
)
def test_fenceposts(replicas: int, surge: Any, unavailable: Any, expected: tuple[int, int]) -> None:
    d = deployment(replicas, strategy={"type": "RollingUpdate", "rollingUpdate": {
        "maxSurge": surge, "maxUnavailable": unavailable}})
    assert resolve_fenceposts(d) == expected


def test_template_hash_is_short_stable_and_safe() -> None:
    t = deployment()["spec"]["template"]
    h = pod_template_hash(t)
    assert h == pod_template_hash(copy.deepcopy(t))
    assert 1 <= len(h) <= 10 and set(h) <= set("bcdfghjklmnpqrstvwxz2456789")
    assert pod_template_hash(t, 1) != h
    assert pod_template_hash(deployment(image="v2")["spec"]["template"]) != h


def test_equal_ignore_hash() -> None:
    t = deployment()["spec"]["template"]
    with_hash = copy.deepcopy(t)
    with_hash["metadata"]["labels"][HASH_LABEL] = "abc"
    assert equal_ignore_hash(t, with_hash)
    assert not equal_ignore_hash(t, deployment(image="v2")["spec"]["template"])
