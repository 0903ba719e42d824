"""The Node object the agent registers and keeps fresh, shaped as the kubelet writes it
(Kubernetes 1.32). Pure: the caller reads the machine facts and the time and passes them in.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from podnet.util.clock import rfc3339
from podnet.util.jsonutil import deepcopy

JSON = dict[str, Any]

KUBELET_VERSION = "v1.32.0-podnet"
RUNTIME_VERSION = "podnet://0.1"
# The kubelet's default hard eviction threshold memory.available<100Mi comes off allocatable.
EVICTION_HARD_MEMORY = 100 * 1024 * 1024
DEFAULT_PODS = 110

# (type, healthy status, reason, message) in the order the kubelet lists them.
CONDITIONS: tuple[tuple[str, str, str, str], ...] = (
    ("MemoryPressure", "False", "KubeletHasSufficientMemory",
     "kubelet has sufficient memory available"),
    ("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
    ("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
    ("Ready", "True", "KubeletReady", "kubelet is posting ready status"),
)  # fmt: skip
_OWNED = {c[0] for c in CONDITIONS}


def _ki(n: int) -> str:
    return f"{max(n, 0) // 1024}Ki"


def resources(capacity: Mapping[str, Any]) -> tuple[JSON, JSON]:
    """(capacity, allocatable) quantities from {"cpu": cores, "memory": bytes, "pods": n,
    optional "ephemeral-storage": bytes}."""
    memory = int(capacity.get("memory", 0))
    pods = int(capacity.get("pods", DEFAULT_PODS))
    cap: JSON = {"cpu": str(capacity.get("cpu", 1))}
    alloc: JSON = {"cpu": cap["cpu"]}
    if "ephemeral-storage" in capacity:
        storage = int(capacity["ephemeral-storage"])
        cap["ephemeral-storage"] = _ki(storage)
        alloc["ephemeral-storage"] = str(storage)  # the kubelet writes allocatable in bytes
    for huge in ("hugepages-1Gi", "hugepages-2Mi"):
        cap[huge] = alloc[huge] = "0"
    cap["memory"] = _ki(memory)
    alloc["memory"] = _ki(memory - EVICTION_HARD_MEMORY)
    cap["pods"] = alloc["pods"] = str(pods)
    return cap, alloc


def build_node(
    *,
    name: str,
    node_index: int,
    pod_cidr: str,
    internal_ip: str,
    hostname: str,
    capacity: Mapping[str, Any],
    agent_port: int,
    now: datetime,
    prev: Mapping[str, Any] | None = None,
    machine_id: str = "",
    system_uuid: str | None = None,
    boot_id: str = "",
    kernel_version: str = "",
    os_image: str = "podnet",
    architecture: str = "amd64",
) -> JSON:
    """The whole Node object. What others wrote on a previous version (extra labels and
    annotations, taints, unschedulable, foreign conditions) is kept; condition transition
    times move only when a status changes."""
    prev = prev or {}
    node: JSON = {"apiVersion": "v1", "kind": "Node"}

    meta: JSON = deepcopy(dict(prev.get("metadata") or {}))
    meta["name"] = name
    meta["labels"] = {
        **(meta.get("labels") or {}),
        "beta.kubernetes.io/arch": architecture,
        "beta.kubernetes.io/os": "linux",
        "kubernetes.io/arch": architecture,
        "kubernetes.io/hostname": name,
        "kubernetes.io/os": "linux",
    }
    meta["annotations"] = {
        **(meta.get("annotations") or {}),
        "node.alpha.kubernetes.io/ttl": "0",
        "podnet.io/node-index": str(node_index),
        "volumes.kubernetes.io/controller-managed-attach-detach": "true",
    }
    node["metadata"] = meta

    spec: JSON = deepcopy(dict(prev.get("spec") or {}))
    spec["podCIDR"] = pod_cidr
    spec["podCIDRs"] = [pod_cidr]
    node["spec"] = spec

    cap, alloc = resources(capacity)
    prev_status = prev.get("status") or {}
    node["status"] = {
        "capacity": cap,
        "allocatable": alloc,
        "conditions": _conditions(prev_status.get("conditions") or [], now),
        "addresses": [
            {"type": "InternalIP", "address": internal_ip},
            {"type": "Hostname", "address": hostname},
        ],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": agent_port}},
        "nodeInfo": {
            "machineID": machine_id,
            "systemUUID": system_uuid if system_uuid is not None else machine_id,
            "bootID": boot_id,
            "kernelVersion": kernel_version,
            "osImage": os_image,
            "containerRuntimeVersion": RUNTIME_VERSION,
            "kubeletVersion": KUBELET_VERSION,
            "kubeProxyVersion": "",
            "operatingSystem": "linux",
            "architecture": architecture,
        },
    }
    return node


def heartbeat(node: Mapping[str, Any], now: datetime) -> JSON:
    """The node with fresh heartbeat times. A kubelet condition someone else changed (the node
    lifecycle controller sets Ready to Unknown when heartbeats stop) is put back, with a new
    transition time, as the kubelet's next status update would."""
    out: JSON = deepcopy(dict(node))
    status = out.setdefault("status", {})
    status["conditions"] = _conditions(status.get("conditions") or [], now)
    return out


def _conditions(prev: list[Any], now: datetime) -> list[JSON]:
    by_type = {str(c.get("type")): c for c in prev if isinstance(c, Mapping)}
    stamp = rfc3339(now)
    out: list[JSON] = []
    for type_, status, reason, message in CONDITIONS:
        old = by_type.get(type_)
        same = old is not None and old.get("status") == status and old.get("lastTransitionTime")
        out.append(
            {
                "type": type_,
                "status": status,
                "lastHeartbeatTime": stamp,
                "lastTransitionTime": old["lastTransitionTime"] if same and old else stamp,
                "reason": reason,
                "message": message,
            }
        )
    out += [deepcopy(dict(c)) for t, c in by_type.items() if t not in _OWNED]
    return out
