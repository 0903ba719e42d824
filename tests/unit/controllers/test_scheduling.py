"""scheduler.pick: filters in kube-scheduler's order and its FailedScheduling messages."""

from __future__ import annotations

from typing import Any

import pytest

from podnet.controllers.scheduling import (
    Decision,
    fit_error,
    pick,
    requirement_matches,
    tolerates,
    why_not,
)

NOT_HELPFUL = "Preemption is not helpful for scheduling."


def make_node(
    name: str,
    labels: dict[str, str] | None = None,
    ready: bool = True,
    pods: int = 110,
    **spec: Any,
) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, **(labels or {})}},
        "spec": spec,
        "status": {
            "allocatable": {"pods": str(pods)},
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
        },
    }


def make_pod(
    name: str = "p", node: str | None = None, phase: str = "Pending", **spec: Any
) -> dict[str, Any]:
    s: dict[str, Any] = {"containers": [{"name": "c"}], **spec}
    if node:
        s["nodeName"] = node
    return {
        "metadata": {"name": name, "namespace": "default"},
        "spec": s,
        "status": {"phase": phase},
    }


def affinity(*exprs: dict[str, Any], fields: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    term: dict[str, Any] = {"matchExpressions": list(exprs)}
    if fields:
        term["matchFields"] = fields
    return {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [term]}
        }
    }


def test_single_ready_node_is_picked() -> None:
    assert pick(make_pod(), [make_node("node-0")]) == Decision("node-0", "")


def test_least_loaded_then_by_name() -> None:
    nodes = [make_node("b"), make_node("a"), make_node("c")]
    bound = [
        make_pod("x", "a"),
        make_pod("y", "a"),
        make_pod("z", "b"),
        make_pod("d", "c", "Succeeded"),
    ]
    assert pick(make_pod(), nodes, bound).node == "c"  # finished pods do not count
    assert pick(make_pod(), nodes).node == "a"


@pytest.mark.parametrize(
    "pod",
    [
        make_pod(node="node-0"),
        make_pod(schedulerName="other"),
        make_pod(phase="Failed"),
        {**make_pod(), "metadata": {"name": "p", "deletionTimestamp": "2026-01-01T00:00:00Z"}},
    ],
)
def test_pods_that_are_not_ours_are_skipped(pod: dict[str, Any]) -> None:
    assert pick(pod, [make_node("node-0")]) == Decision(None, "")


def test_no_nodes() -> None:
    assert pick(make_pod(), []) == Decision(None, "no nodes available to schedule pods")


@pytest.mark.parametrize(
    ("pod", "node", "message"),
    [
        (
            make_pod(nodeSelector={"disk": "ssd"}),
            make_node("n"),
            "0/1 nodes are available: 1 node(s) didn't match Pod's node affinity/selector. "
            f"preemption: 0/1 nodes are available: 1 {NOT_HELPFUL}",
        ),
        (
            make_pod(affinity=affinity({"key": "zone", "operator": "In", "values": ["a"]})),
            make_node("n", {"zone": "b"}),
            "0/1 nodes are available: 1 node(s) didn't match Pod's node affinity/selector. "
            f"preemption: 0/1 nodes are available: 1 {NOT_HELPFUL}",
        ),
        (
            make_pod(),
            make_node("n", taints=[{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}]),
            "0/1 nodes are available: 1 node(s) had untolerated taint {dedicated: gpu}. "
            f"preemption: 0/1 nodes are available: 1 {NOT_HELPFUL}",
        ),
        (
            make_pod(),
            make_node("n", ready=False),
            "0/1 nodes are available: 1 node(s) had untolerated taint "
            "{node.kubernetes.io/not-ready: }. "
            f"preemption: 0/1 nodes are available: 1 {NOT_HELPFUL}",
        ),
        (
            make_pod(),
            make_node("n", unschedulable=True),
            "0/1 nodes are available: 1 node(s) were unschedulable. "
            f"preemption: 0/1 nodes are available: 1 {NOT_HELPFUL}",
        ),
        (
            make_pod(),
            make_node("n", pods=0),
            "0/1 nodes are available: 1 Too many pods. "
            "preemption: 0/1 nodes are available: 1 No preemption victims found for incoming pod.",
        ),
    ],
)
def test_failed_scheduling_messages(
    pod: dict[str, Any], node: dict[str, Any], message: str
) -> None:
    assert pick(pod, [node]) == Decision(None, message)


def test_reasons_are_counted_and_sorted() -> None:
    nodes = [
        make_node("a", taints=[{"key": "x", "effect": "NoExecute"}]),
        make_node("b"),
        make_node("c"),
    ]
    pod = make_pod(nodeSelector={"disk": "ssd"})
    assert pick(pod, nodes).message == (
        "0/3 nodes are available: 1 node(s) had untolerated taint {x: }, "
        "2 node(s) didn't match Pod's node affinity/selector. "
        f"preemption: 0/3 nodes are available: 3 {NOT_HELPFUL}"
    )


def test_mixed_preemption_summary() -> None:
    assert fit_error(2, ["Too many pods", "node(s) were unschedulable"]) == (
        "0/2 nodes are available: 1 Too many pods, 1 node(s) were unschedulable. "
        "preemption: 0/2 nodes are available: 1 No preemption victims found for incoming pod, "
        f"1 {NOT_HELPFUL}"
    )


def test_pod_count_capacity() -> None:
    nodes = [make_node("a", pods=2), make_node("b", pods=1)]
    bound = [make_pod("x", "a"), make_pod("y", "b")]
    assert pick(make_pod(), nodes, bound).node == "a"
    bound.append(make_pod("z", "a"))
    assert pick(make_pod(), nodes, bound).message.startswith(
        "0/2 nodes are available: 2 Too many pods."
    )


def test_tolerated_taints_and_prefer_no_schedule() -> None:
    node = make_node(
        "n",
        taints=[
            {"key": "dedicated", "value": "gpu", "effect": "NoSchedule"},
            {"key": "soft", "effect": "PreferNoSchedule"},
        ],
    )
    pod = make_pod(tolerations=[{"key": "dedicated", "operator": "Equal", "value": "gpu"}])
    assert pick(pod, [node]).node == "n"
    everything = make_pod(tolerations=[{"operator": "Exists"}])
    assert pick(everything, [make_node("m", ready=False, unschedulable=True)]).node == "m"


@pytest.mark.parametrize(
    ("toleration", "taint", "ok"),
    [
        ({"key": "k", "value": "v"}, {"key": "k", "value": "v", "effect": "NoSchedule"}, True),
        ({"key": "k", "value": "w"}, {"key": "k", "value": "v", "effect": "NoSchedule"}, False),
        (
            {"key": "k", "operator": "Exists"},
            {"key": "k", "value": "v", "effect": "NoSchedule"},
            True,
        ),
        (
            {"key": "k", "operator": "Exists", "effect": "NoExecute"},
            {"key": "k", "effect": "NoSchedule"},
            False,
        ),
        ({"operator": "Exists"}, {"key": "any", "effect": "NoExecute"}, True),
        ({"value": "v"}, {"key": "k", "value": "v", "effect": "NoSchedule"}, False),
    ],
)
def test_tolerates(toleration: dict[str, Any], taint: dict[str, Any], ok: bool) -> None:
    assert tolerates(toleration, taint) is ok


LABELS = {"zone": "a", "gen": "5"}


@pytest.mark.parametrize(
    ("expr", "ok"),
    [
        ({"key": "zone", "operator": "In", "values": ["a", "b"]}, True),
        ({"key": "zone", "operator": "In", "values": ["b"]}, False),
        ({"key": "zone", "operator": "NotIn", "values": ["b"]}, True),
        ({"key": "rack", "operator": "NotIn", "values": ["b"]}, True),
        ({"key": "zone", "operator": "Exists"}, True),
        ({"key": "rack", "operator": "Exists"}, False),
        ({"key": "rack", "operator": "DoesNotExist"}, True),
        ({"key": "gen", "operator": "Gt", "values": ["4"]}, True),
        ({"key": "gen", "operator": "Lt", "values": ["4"]}, False),
        ({"key": "zone", "operator": "Gt", "values": ["4"]}, False),
        ({"key": "zone", "operator": "Bogus"}, False),
    ],
)
def test_requirement_matches(expr: dict[str, Any], ok: bool) -> None:
    assert requirement_matches(expr, LABELS) is ok


def test_affinity_terms_are_ored_and_match_fields() -> None:
    by_name = make_pod(
        affinity=affinity(fields=[{"key": "metadata.name", "operator": "In", "values": ["b"]}])
    )
    assert pick(by_name, [make_node("a"), make_node("b")]).node == "b"
    two_terms = make_pod()
    two_terms["spec"]["affinity"] = {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [
                    {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["x"]}]},
                    {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]},
                ]
            }
        }
    }
    assert pick(two_terms, [make_node("n", {"zone": "a"})]).node == "n"
    empty_term = make_pod()
    empty_term["spec"]["affinity"] = {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [{}]}
        }
    }
    assert pick(empty_term, [make_node("n")]).node is None


def test_node_name_filter_reason() -> None:
    # A pod with nodeName is already bound; the NodeName filter's reason still reads right.
    assert why_not(make_pod(node="a"), make_node("b"), 0) == (
        "node(s) didn't match the requested node name"
    )


def test_node_without_ready_condition_or_pod_count() -> None:
    bare: dict[str, Any] = {"metadata": {"name": "n"}, "spec": {}, "status": {}}
    assert "not-ready" in pick(make_pod(), [bare]).message
    status: dict[str, Any] = {"conditions": [{"type": "Ready", "status": "True"}]}
    ready = {**bare, "status": status}
    assert pick(make_pod(), [ready]).node == "n"  # allocatable unknown: 110
    odd = {**ready, "status": {**status, "allocatable": {"pods": "lots"}}}
    assert pick(make_pod(), [odd], [make_pod("x", "n")] * 109).node == "n"


def test_gt_with_non_numbers_and_match_fields_only_terms() -> None:
    assert requirement_matches({"key": "gen", "operator": "Gt", "values": ["x"]}, LABELS) is False
    no_name = affinity(fields=[{"key": "metadata.name", "operator": "NotIn", "values": ["a"]}])
    assert pick(make_pod(affinity=no_name), [make_node("a"), make_node("b")]).node == "b"
