"""nodestatus: the Node object the agent registers, and its heartbeats."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from podnet.agent.nodestatus import build_node, heartbeat

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
S0 = "2026-01-01T12:00:00Z"
S1 = "2026-01-01T12:00:10Z"
GiB = 1024**3


def node(prev: dict[str, Any] | None = None, now: datetime = T0) -> dict[str, Any]:
    return build_node(
        name="node-0",
        node_index=0,
        pod_cidr="10.244.0.0/24",
        internal_ip="10.250.0.2",
        hostname="box",
        capacity={"cpu": 2, "memory": 4 * GiB, "pods": 110},
        agent_port=10250,
        now=now,
        prev=prev,
        machine_id="m1",
        boot_id="b1",
        kernel_version="6.1.0",
    )


def condition(
    type_: str, status: str, reason: str, message: str, beat: str = S0, since: str = S0
) -> dict[str, Any]:
    return {
        "type": type_,
        "status": status,
        "lastHeartbeatTime": beat,
        "lastTransitionTime": since,
        "reason": reason,
        "message": message,
    }


def healthy(beat: str = S0, since: str = S0) -> list[dict[str, Any]]:
    return [
        condition(
            "MemoryPressure",
            "False",
            "KubeletHasSufficientMemory",
            "kubelet has sufficient memory available",
            beat,
            since,
        ),
        condition(
            "DiskPressure",
            "False",
            "KubeletHasNoDiskPressure",
            "kubelet has no disk pressure",
            beat,
            since,
        ),
        condition(
            "PIDPressure",
            "False",
            "KubeletHasSufficientPID",
            "kubelet has sufficient PID available",
            beat,
            since,
        ),
        condition("Ready", "True", "KubeletReady", "kubelet is posting ready status", beat, since),
    ]


def test_new_node() -> None:
    assert node() == {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": "node-0",
            "labels": {
                "beta.kubernetes.io/arch": "amd64",
                "beta.kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "kubernetes.io/hostname": "node-0",
                "kubernetes.io/os": "linux",
            },
            "annotations": {
                "node.alpha.kubernetes.io/ttl": "0",
                "podnet.io/node-index": "0",
                "volumes.kubernetes.io/controller-managed-attach-detach": "true",
            },
        },
        "spec": {"podCIDR": "10.244.0.0/24", "podCIDRs": ["10.244.0.0/24"]},
        "status": {
            "capacity": {
                "cpu": "2",
                "hugepages-1Gi": "0",
                "hugepages-2Mi": "0",
                "memory": "4194304Ki",
                "pods": "110",
            },
            "allocatable": {
                "cpu": "2",
                "hugepages-1Gi": "0",
                "hugepages-2Mi": "0",
                "memory": "4091904Ki",  # less the kubelet's 100Mi hard eviction threshold
                "pods": "110",
            },
            "conditions": healthy(),
            "addresses": [
                {"type": "InternalIP", "address": "10.250.0.2"},
                {"type": "Hostname", "address": "box"},
            ],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
            "nodeInfo": {
                "machineID": "m1",
                "systemUUID": "m1",
                "bootID": "b1",
                "kernelVersion": "6.1.0",
                "osImage": "podnet",
                "containerRuntimeVersion": "podnet://0.1",
                "kubeletVersion": "v1.32.0-podnet",
                "kubeProxyVersion": "",
                "operatingSystem": "linux",
                "architecture": "amd64",
            },
        },
    }


def test_ephemeral_storage() -> None:
    n = build_node(
        name="n",
        node_index=1,
        pod_cidr="10.244.1.0/24",
        internal_ip="10.250.0.3",
        hostname="h",
        capacity={"cpu": 1, "memory": GiB, "ephemeral-storage": 10 * GiB},
        agent_port=1,
        now=T0,
    )
    assert n["status"]["capacity"]["ephemeral-storage"] == "10485760Ki"
    assert n["status"]["allocatable"]["ephemeral-storage"] == str(10 * GiB)
    assert n["status"]["capacity"]["pods"] == "110"


def test_rebuild_keeps_what_others_wrote_and_transition_times() -> None:
    prev = node()
    prev["metadata"]["labels"]["team"] = "a"
    prev["metadata"]["resourceVersion"] = "42"
    prev["spec"]["taints"] = [{"key": "k", "effect": "NoSchedule"}]
    prev["status"]["conditions"].append({"type": "NetworkUnavailable", "status": "False"})
    again = node(prev, T0 + timedelta(seconds=10))
    assert again["metadata"]["labels"]["team"] == "a"
    assert again["metadata"]["resourceVersion"] == "42"
    assert again["spec"]["taints"] == [{"key": "k", "effect": "NoSchedule"}]
    assert again["status"]["conditions"] == [
        *healthy(beat=S1, since=S0),
        {"type": "NetworkUnavailable", "status": "False"},
    ]
    assert prev["status"]["conditions"][0]["lastHeartbeatTime"] == S0  # input untouched


def test_heartbeat_updates_only_heartbeat_times() -> None:
    n = node()
    beat = heartbeat(n, T0 + timedelta(seconds=10))
    assert beat["status"]["conditions"] == healthy(beat=S1, since=S0)
    assert {k: v for k, v in beat["status"].items() if k != "conditions"} == {
        k: v for k, v in n["status"].items() if k != "conditions"
    }
    assert n["status"]["conditions"] == healthy()


def test_heartbeat_restores_ready_after_node_lifecycle_marked_it_unknown() -> None:
    n = node()
    n["status"]["conditions"][3] = condition(
        "Ready", "Unknown", "NodeStatusUnknown", "Kubelet stopped posting node status."
    )
    beat = heartbeat(n, T0 + timedelta(seconds=10))
    assert beat["status"]["conditions"][3] == condition(
        "Ready", "True", "KubeletReady", "kubelet is posting ready status", S1, S1
    )
