"""ReplicaSets: which pods go first, how many are made, what status says."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from podnet.controllers.replicaset import (
    Expectations,
    deletion_order,
    plan,
    pod_from_template,
)

from .objects import pod

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
OWNER = {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-abc", "uid": "uid-rs",
         "controller": True, "blockOwnerDeletion": True}


def rs(replicas: int = 3, min_ready: int = 0) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "replicas": replicas,
        "selector": {"matchLabels": {"app": "web"}},
        "template": {"metadata": {"labels": {"app": "web"}, "annotations": {"a": "b"}},
                     "spec": {"containers": [{"name": "c", "image": "v1"}]}},
    }
    if min_ready:
        spec["minReadySeconds"] = min_ready
    return {"apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {"name": "web-abc", "namespace": "default", "uid": "uid-rs",
                         "generation": 2}, "spec": spec}


def owned(name: str, **kw: Any) -> dict[str, Any]:
    return pod(name, owner=OWNER, **kw)


RANKING = [
    # (why, pods in any order, expected deletion order)
    ("unscheduled before scheduled",
     [owned("on-node"), owned("nowhere", node="", phase="Pending", ready=False)],
     ["nowhere", "on-node"]),
    ("pending before unknown before running",
     [owned("running"), owned("unknown", phase="Unknown"), owned("pending", phase="Pending")],
     ["pending", "unknown", "running"]),
    ("not ready before ready",
     [owned("ready"), owned("unready", ready=False)], ["unready", "ready"]),
    ("lower pod-deletion-cost first",
     [owned("cheap", annotations={"controller.kubernetes.io/pod-deletion-cost": "-5"}),
      owned("dear", annotations={"controller.kubernetes.io/pod-deletion-cost": "100"}),
      owned("plain")],
     ["cheap", "plain", "dear"]),
    ("doubled-up node first",
     [owned("alone", node="node-2"), owned("pair-1", node="node-1", uid="u1"),
      owned("pair-2", node="node-1", uid="u2", created="2024-05-01T11:00:01Z")],
     ["pair-1", "pair-2", "alone"]),
    # Same power-of-two age bucket: the uid decides, as with LogarithmicScaleDown.
    ("same age bucket: uid breaks the tie",
     [owned("b", uid="u2", created="2024-05-01T11:00:00Z"),
      owned("a", uid="u1", created="2024-05-01T11:00:30Z")],
     ["a", "b"]),
    ("ready for less time first (log buckets)",
     [owned("old", ready_since="2024-05-01T08:00:00Z"),
      owned("new", ready_since="2024-05-01T11:59:00Z")],
     ["new", "old"]),
    ("more restarts first",
     [owned("calm"), owned("crashy", restarts=7)], ["crashy", "calm"]),
    ("newer first",
     [owned("older", created="2024-04-01T00:00:00Z"),
      owned("newer", created="2024-05-01T11:59:30Z")],
     ["newer", "older"]),
]


@pytest.mark.parametrize(("why", "pods", "expected"), RANKING, ids=[r[0] for r in RANKING])
def test_deletion_order(why: str, pods: list[Any], expected: list[str]) -> None:
    assert [p["metadata"]["name"] for p in deletion_order(pods, now=NOW)] == expected
    assert [p["metadata"]["name"] for p in deletion_order(pods[::-1], now=NOW)] == expected


def test_scale_up_creates_from_template() -> None:
    p = plan(rs(3), [owned("web-abc-1")], NOW)
    assert len(p.creates) == 2 and p.deletes == []
    assert p.creates[0] == pod_from_template(rs(3))
    meta = p.creates[0]["metadata"]
    assert meta["generateName"] == "web-abc-"
    assert meta["labels"] == {"app": "web"} and meta["annotations"] == {"a": "b"}
    assert meta["ownerReferences"] == [OWNER]


def test_scale_down_deletes_the_worst_ranked() -> None:
    pods = [owned("a"), owned("b", ready=False), owned("c", phase="Pending", ready=False)]
    p = plan(rs(1), pods, NOW)
    assert [d["metadata"]["name"] for d in p.deletes] == ["c", "b"]


def test_terminating_and_terminal_pods_do_not_count() -> None:
    pods = [owned("a"), owned("gone", deleting=True), owned("done", phase="Succeeded")]
    p = plan(rs(2), pods, NOW)
    assert len(p.creates) == 1 and p.status["replicas"] == 1


def test_burst_limits_one_sync() -> None:
    assert len(plan(rs(800), [], NOW).creates) == 500


def test_no_management_when_expectations_unsatisfied() -> None:
    p = plan(rs(3), [], NOW, manage=False)
    assert p.creates == [] and p.status["replicas"] == 0


def test_adopts_matching_orphans_and_releases_mismatches() -> None:
    pods = [pod("orphan"), pod("other-app", labels={"app": "db"}),
            owned("relabelled", labels={"app": "db"}), owned("mine")]
    p = plan(rs(2), pods, NOW)
    assert [x["metadata"]["name"] for x in p.adopt] == ["orphan"]
    assert [x["metadata"]["name"] for x in p.release] == ["relabelled"]
    assert p.creates == [] and p.status["replicas"] == 2


def test_status_counts_and_min_ready_seconds() -> None:
    pods = [
        owned("long-ready", ready_since="2024-05-01T11:00:00Z"),
        owned("just-ready", ready_since="2024-05-01T11:59:55Z"),
        owned("unready", ready=False),
        owned("unlabelled", labels={"app": "web", "x": "y"}),
    ]
    p = plan(rs(4, min_ready=30), pods, NOW)
    assert p.status == {"replicas": 4, "fullyLabeledReplicas": 4, "readyReplicas": 3,
                        "availableReplicas": 2, "observedGeneration": 2}
    assert p.requeue_after == 30.0


def test_status_omits_zero_counts_but_keeps_replicas() -> None:
    assert plan(rs(0), [], NOW).status == {"replicas": 0, "observedGeneration": 2}


def test_expectations() -> None:
    e = Expectations(ttl=60)
    assert e.satisfied("ns/rs", NOW)
    e.expect("ns/rs", 2, ["ns/p1"], NOW)
    assert not e.satisfied("ns/rs", NOW)
    e.created("ns/rs")
    e.created("ns/rs")
    assert not e.satisfied("ns/rs", NOW)
    e.deleted("ns/rs", "ns/p1")
    assert e.satisfied("ns/rs", NOW)
    e.expect("ns/rs", 1, [], NOW)
    assert e.satisfied("ns/rs", datetime(2024, 5, 1, 12, 2, tzinfo=UTC))  # expired
