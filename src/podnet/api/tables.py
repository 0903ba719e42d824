"""Server-built `meta.k8s.io/v1` Tables: the columns `kubectl get` prints.

kubectl 1.32 has no client-side column printers: if the server ignores
`Accept: ...;as=Table` it prints only NAME and AGE. So the API server has to build the
same Table a real 1.32 cluster returns, column for column and cell for cell. The cell
rules below follow the upstream printers (`pkg/printers/internalversion/printers.go`),
the default convertor (`registry/rest/table.go`) and the CRD convertor
(`apiextensions-apiserver/pkg/registry/customresource/tableconvertor`).

A real server always builds the wide cells (`GenerateOptions{Wide: true}`); kubectl
hides `priority: 1` columns unless `-o wide`. We do the same.

Pure: the clock is passed in, nothing is read or written.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from podnet.api import errors
from podnet.api.resources import ResourceType

Obj = Mapping[str, Any]
Column = dict[str, Any]
Printer = Callable[[Obj, datetime], list[Any]]

TABLE_API_VERSION = "meta.k8s.io/v1"
INCLUDE_OBJECT_VALUES = ("None", "Metadata", "Object")

_NAME_DOC = (
    "Name must be unique within a namespace. Is required when creating resources, although "
    "some resources may allow a client to request the generation of an appropriate name "
    "automatically. Name is primarily intended for creation idempotence and configuration "
    "definition. Cannot be updated. More info: "
    "https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names"
)
_CREATED_DOC = (
    "CreationTimestamp is a timestamp representing the server time when this object was "
    "created. It is not guaranteed to be set in happens-before order across separate "
    "operations. Clients may not set this value. It is represented in RFC3339 form and is in "
    "UTC.\n\nPopulated by the system. Read-only. Null for lists. More info: "
    "https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata"
)


def _col(
    name: str, type_: str = "string", description: str = "", *, fmt: str = "", priority: int = 0
) -> Column:
    return {
        "name": name,
        "type": type_,
        "format": fmt,
        "description": description,
        "priority": priority,
    }


_NAME = _col("Name", "string", _NAME_DOC, fmt="name")
_AGE = _col("Age", "string", _CREATED_DOC)
_CREATED_AT = _col("Created At", "date", _CREATED_DOC)


# ---------------------------------------------------------------------------------------
# Time


def human_duration(d: timedelta) -> str:
    """Kubernetes' `duration.HumanDuration`: coarse ages like `2m30s`, `3h5m`, `2d3h`.

    Up to 2 seconds in the future counts as "now" (clock skew between machines); more
    than that is `<invalid>`, as in kubectl.
    """
    micros = (d.days * 86400 + d.seconds) * 1_000_000 + d.microseconds
    # Go truncates toward zero (int(d.Seconds())), Python's // floors.
    seconds = micros // 1_000_000 if micros >= 0 else -((-micros) // 1_000_000)
    if seconds < -1:
        return "<invalid>"
    if seconds < 0:
        return "0s"
    if seconds < 60 * 2:
        return f"{seconds}s"
    minutes = seconds // 60
    if minutes < 10:
        s = seconds % 60
        return f"{minutes}m" if s == 0 else f"{minutes}m{s}s"
    if minutes < 60 * 3:
        return f"{minutes}m"
    hours = minutes // 60
    if hours < 8:
        m = minutes % 60
        return f"{hours}h" if m == 0 else f"{hours}h{m}m"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        h = hours % 24
        return f"{hours // 24}d" if h == 0 else f"{hours // 24}d{h}h"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        dy = (hours // 24) % 365
        years = hours // 24 // 365
        return f"{years}y" if dy == 0 else f"{years}y{dy}d"
    return f"{hours // 24 // 365}y"


def parse_time(value: Any) -> datetime | None:
    """An RFC 3339 timestamp (`metav1.Time` or `MicroTime`) as an aware datetime."""
    if not isinstance(value, str) or not value:
        return None
    try:
        ts = datetime.fromisoformat(value)
    except ValueError:
        return None
    return ts if ts.tzinfo else ts.replace(tzinfo=UTC)


def _aware(now: datetime) -> datetime:
    return now if now.tzinfo else now.replace(tzinfo=UTC)


def age(value: Any, now: datetime) -> str:
    """`translateTimestampSince`: `<unknown>` for a missing timestamp."""
    ts = parse_time(value)
    if ts is None:
        return "<unknown>"
    return human_duration(_aware(now) - ts)


def _rfc3339(value: Any) -> str:
    ts = parse_time(value)
    if ts is None:
        # Go formats the zero time; a stored object always has a timestamp.
        return "0001-01-01T00:00:00Z"
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# ---------------------------------------------------------------------------------------
# Small accessors (raw objects may lack any field)


def _get(obj: Any, *path: str | int) -> Any:
    cur = obj
    for p in path:
        if isinstance(p, int):
            if not isinstance(cur, list) or p >= len(cur):
                return None
            cur = cur[p]
        else:
            if not isinstance(cur, Mapping):
                return None
            cur = cur.get(p)
    return cur


def _str(obj: Any, *path: str | int) -> str:
    v = _get(obj, *path)
    return v if isinstance(v, str) else ""


def _list(obj: Any, *path: str | int) -> list[Any]:
    v = _get(obj, *path)
    return v if isinstance(v, list) else []


def _map(obj: Any, *path: str | int) -> Mapping[str, Any]:
    v = _get(obj, *path)
    return v if isinstance(v, Mapping) else {}


def _int(obj: Any, *path: str | int) -> int:
    v = _get(obj, *path)
    return int(v) if isinstance(v, int | float) and not isinstance(v, bool) else 0


def _name(obj: Obj) -> str:
    return _str(obj, "metadata", "name")


def _created(obj: Obj, now: datetime) -> str:
    return age(_get(obj, "metadata", "creationTimestamp"), now)


def format_labels(labels: Mapping[str, Any]) -> str:
    """`labels.FormatLabels`: sorted `k=v` pairs, `<none>` when empty."""
    if not labels:
        return "<none>"
    return ",".join(f"{k}={labels[k]}" for k in sorted(labels))


def label_selector_string(selector: Any) -> str:
    """`metav1.LabelSelectorAsSelector(sel).String()`; empty for nil or match-everything.

    Requirements are sorted by key and set values sorted, as the Go selector prints them.
    """
    if not isinstance(selector, Mapping):
        return ""
    reqs: list[tuple[str, str]] = []
    for k, v in _map(selector, "matchLabels").items():
        reqs.append((k, f"{k}={v}"))
    for expr in _list(selector, "matchExpressions"):
        key = _str(expr, "key")
        op = _str(expr, "operator")
        values = ",".join(sorted(str(v) for v in _list(expr, "values")))
        if op == "In":
            reqs.append((key, f"{key} in ({values})"))
        elif op == "NotIn":
            reqs.append((key, f"{key} notin ({values})"))
        elif op == "Exists":
            reqs.append((key, key))
        elif op == "DoesNotExist":
            reqs.append((key, f"!{key}"))
        else:
            return "<error>"
    reqs.sort(key=lambda r: r[0])
    return ",".join(r[1] for r in reqs)


def _format_label_selector(selector: Any) -> str:
    """`metav1.FormatLabelSelector`: like the selector string, `<none>` when empty."""
    return label_selector_string(selector) or "<none>"


def _containers_images(pod_spec: Any) -> tuple[str, str]:
    containers = _list(pod_spec, "containers")
    return (
        ",".join(_str(c, "name") for c in containers),
        ",".join(_str(c, "image") for c in containers),
    )


def _with_more(items: list[str], count: int, limit: int, empty: str) -> str:
    ret = ",".join(items[:limit])
    if count > limit:
        return f"{ret} + {count - limit} more..."
    return ret or empty


def _lb_ingress(status: Any) -> str:
    """`loadBalancerStatusStringer` (wide: never truncated)."""
    out: list[str] = []
    for ing in _list(status, "ingress"):
        if _str(ing, "ip"):
            out.append(_str(ing, "ip"))
        elif _str(ing, "hostname"):
            out.append(_str(ing, "hostname"))
    return ",".join(out)


# ---------------------------------------------------------------------------------------
# core/v1

_POD_COLUMNS = [
    _NAME,
    _col("Ready", "string", "The aggregate readiness state of this pod for accepting traffic."),
    _col("Status", "string", "The aggregate status of the containers in this pod."),
    _col(
        "Restarts",
        "string",
        "The number of times the containers in this pod have been restarted and when the "
        "last container in this pod has restarted.",
    ),
    _AGE,
    _col("IP", "string", "podIP address allocated to the pod. Routable at least within the "
         "cluster. Empty if not yet allocated.", priority=1),
    _col("Node", "string", "NodeName indicates in which node this pod is scheduled.",
         priority=1),
    _col("Nominated Node", "string", "nominatedNodeName is set only when this pod preempts "
         "other pods on the node.", priority=1),
    _col("Readiness Gates", "string", "If specified, all readiness gates will be evaluated "
         "for pod readiness.", priority=1),
]


def _condition_true(conditions: list[Any], ctype: str) -> bool:
    return any(
        _str(c, "type") == ctype and _str(c, "status") == "True" for c in conditions
    )


def _terminated_at(status: Any) -> datetime | None:
    return parse_time(_get(status, "lastState", "terminated", "finishedAt"))


def _later(a: datetime | None, b: datetime | None) -> datetime | None:
    if a is None:
        return b
    if b is None:
        return a
    return max(a, b)


def pod_status_reason(pod: Obj) -> tuple[str, int, int, int, datetime | None]:
    """(STATUS, ready, total, restarts, last restart) exactly as kubectl's `printPod`.

    The STATUS column is not `status.phase`: it is the most telling container state
    (`CrashLoopBackOff`, `Init:0/1`, `Completed`, `Terminating`, ...), in the order the
    upstream printer checks them.
    """
    spec = _map(pod, "spec")
    status = _map(pod, "status")
    phase = _str(status, "phase")
    reason = _str(status, "reason") or phase
    conditions = _list(status, "conditions")
    for c in conditions:
        if _str(c, "type") == "PodScheduled" and _str(c, "reason") == "SchedulingGated":
            reason = "SchedulingGated"

    init_specs = {_str(c, "name"): c for c in _list(spec, "initContainers")}

    def restartable(name: str) -> bool:
        # A sidecar: an init container with restartPolicy Always.
        return _str(init_specs.get(name), "restartPolicy") == "Always"

    total = len(_list(spec, "containers")) + sum(1 for n in init_specs if restartable(n))
    ready = 0
    restarts = 0
    sidecar_restarts = 0
    last_restart: datetime | None = None
    last_sidecar_restart: datetime | None = None

    initializing = False
    n_init = len(_list(spec, "initContainers"))
    for i, cs in enumerate(_list(status, "initContainerStatuses")):
        name = _str(cs, "name")
        restarts += _int(cs, "restartCount")
        last_restart = _later(last_restart, _terminated_at(cs))
        if restartable(name):
            sidecar_restarts += _int(cs, "restartCount")
            last_sidecar_restart = _later(last_sidecar_restart, _terminated_at(cs))
        terminated = _get(cs, "state", "terminated")
        waiting_reason = _str(cs, "state", "waiting", "reason")
        if isinstance(terminated, Mapping) and _int(terminated, "exitCode") == 0:
            continue
        if restartable(name) and _get(cs, "started") is True:
            if _get(cs, "ready") is True:
                ready += 1
            continue
        if isinstance(terminated, Mapping):
            if _str(terminated, "reason"):
                reason = "Init:" + _str(terminated, "reason")
            elif _int(terminated, "signal"):
                reason = f"Init:Signal:{_int(terminated, 'signal')}"
            else:
                reason = f"Init:ExitCode:{_int(terminated, 'exitCode')}"
        elif waiting_reason and waiting_reason != "PodInitializing":
            reason = "Init:" + waiting_reason
        else:
            reason = f"Init:{i}/{n_init}"
        initializing = True
        break

    if not initializing or _condition_true(conditions, "Initialized"):
        restarts = sidecar_restarts
        last_restart = last_sidecar_restart
        has_running = False
        for cs in reversed(_list(status, "containerStatuses")):
            restarts += _int(cs, "restartCount")
            last_restart = _later(last_restart, _terminated_at(cs))
            state = _map(cs, "state")
            terminated = state.get("terminated")
            if _str(state, "waiting", "reason"):
                reason = _str(state, "waiting", "reason")
            elif isinstance(terminated, Mapping) and _str(terminated, "reason"):
                reason = _str(terminated, "reason")
            elif isinstance(terminated, Mapping):
                if _int(terminated, "signal"):
                    reason = f"Signal:{_int(terminated, 'signal')}"
                else:
                    reason = f"ExitCode:{_int(terminated, 'exitCode')}"
            elif _get(cs, "ready") is True and isinstance(state.get("running"), Mapping):
                has_running = True
                ready += 1
        if reason == "Completed" and has_running:
            reason = "Running" if _condition_true(conditions, "Ready") else "NotReady"

    deleting = _get(pod, "metadata", "deletionTimestamp") is not None
    if deleting and _str(status, "reason") == "NodeLost":
        reason = "Unknown"
    elif deleting and phase not in ("Succeeded", "Failed"):
        reason = "Terminating"
    return reason, ready, total, restarts, last_restart


def _print_pod(pod: Obj, now: datetime) -> list[Any]:
    reason, ready, total, restarts, last_restart = pod_status_reason(pod)
    restarts_cell = str(restarts)
    if restarts and last_restart is not None:
        restarts_cell = f"{restarts} ({human_duration(_aware(now) - last_restart)} ago)"
    status = _map(pod, "status")
    ips = _list(status, "podIPs")
    pod_ip = _str(ips, 0, "ip") or _str(status, "podIP") or "<none>"
    gates = _list(pod, "spec", "readinessGates")
    gates_cell = "<none>"
    if gates:
        conditions = _list(status, "conditions")
        true_count = 0
        for gate in gates:
            ctype = _str(gate, "conditionType")
            for c in conditions:
                if _str(c, "type") == ctype:
                    true_count += _str(c, "status") == "True"
                    break
        gates_cell = f"{true_count}/{len(gates)}"
    return [
        _name(pod),
        f"{ready}/{total}",
        reason,
        restarts_cell,
        _created(pod, now),
        pod_ip,
        _str(pod, "spec", "nodeName") or "<none>",
        _str(status, "nominatedNodeName") or "<none>",
        gates_cell,
    ]


def _pod_conditions(pod: Obj) -> list[dict[str, str]] | None:
    """Row conditions the upstream printer sets for finished pods."""
    phase = _str(pod, "status", "phase")
    if phase == "Succeeded":
        return [{"type": "Completed", "status": "True", "reason": "Succeeded",
                 "message": "The pod has completed successfully."}]
    if phase == "Failed":
        return [{"type": "Completed", "status": "True", "reason": "Failed",
                 "message": "The pod failed."}]
    return None


_SERVICE_COLUMNS = [
    _NAME,
    _col("Type", "string", "type determines how the Service is exposed. Defaults to ClusterIP."),
    _col("Cluster-IP", "string", "clusterIP is the IP address of the service and is usually "
         "assigned randomly."),
    _col("External-IP", "string", "externalIPs is a list of IP addresses for which nodes in "
         "the cluster will also accept traffic for this service."),
    _col("Port(s)", "string", "The list of ports that are exposed by this service."),
    _AGE,
    _col("Selector", "string", "Route service traffic to pods with label keys and values "
         "matching this selector.", priority=1),
]


def service_external_ip(svc: Obj) -> str:
    """`getServiceExternalIP`: `<none>`, `<pending>`, the LB address or the externalName."""
    svc_type = _str(svc, "spec", "type") or "ClusterIP"
    external = [str(ip) for ip in _list(svc, "spec", "externalIPs")]
    if svc_type in ("ClusterIP", "NodePort"):
        return ",".join(external) if external else "<none>"
    if svc_type == "LoadBalancer":
        lb = _lb_ingress(_get(svc, "status", "loadBalancer"))
        if external:
            return ",".join([*(lb.split(",") if lb else []), *external])
        return lb or "<pending>"
    if svc_type == "ExternalName":
        return _str(svc, "spec", "externalName")
    return "<unknown>"


def service_ports(ports: Sequence[Any]) -> str:
    """`makePortString`: `80/TCP`, or `80:30007/TCP` with a node port."""
    pieces = []
    for p in ports:
        proto = _str(p, "protocol") or "TCP"
        node_port = _int(p, "nodePort")
        if node_port > 0:
            pieces.append(f"{_int(p, 'port')}:{node_port}/{proto}")
        else:
            pieces.append(f"{_int(p, 'port')}/{proto}")
    return ",".join(pieces)


def _print_service(svc: Obj, now: datetime) -> list[Any]:
    spec = _map(svc, "spec")
    cluster_ips = _list(spec, "clusterIPs")
    cluster_ip = (cluster_ips[0] if cluster_ips else _str(spec, "clusterIP")) or "<none>"
    return [
        _name(svc),
        _str(spec, "type") or "ClusterIP",
        cluster_ip,
        service_external_ip(svc),
        service_ports(_list(spec, "ports")) or "<none>",
        _created(svc, now),
        format_labels(_map(spec, "selector")),
    ]


_ENDPOINTS_COLUMNS = [
    _NAME,
    _col("Endpoints", "string", "Endpoints is the list of endpoints in this subset."),
    _AGE,
]


def _format_endpoints(ep: Obj) -> str:
    subsets = _list(ep, "subsets")
    if not subsets:
        return "<none>"
    out: list[str] = []
    count = 0
    for ss in subsets:
        addrs = [_str(a, "ip") for a in _list(ss, "addresses")]
        ports = _list(ss, "ports")
        if not ports:
            count += len(addrs)
            out.extend(addrs)
            continue
        for p in ports:
            count += len(addrs)
            port = _int(p, "port")
            out.extend(f"[{a}]:{port}" if ":" in a else f"{a}:{port}" for a in addrs)
    return _with_more(out, count, 3, "")


def _print_endpoints(ep: Obj, now: datetime) -> list[Any]:
    return [_name(ep), _format_endpoints(ep), _created(ep, now)]


_NAMESPACE_COLUMNS = [
    _NAME,
    _col("Status", "string", "The status of the namespace"),
    _AGE,
]


def _print_namespace(ns: Obj, now: datetime) -> list[Any]:
    return [_name(ns), _str(ns, "status", "phase"), _created(ns, now)]


_NODE_COLUMNS = [
    _NAME,
    _col("Status", "string", "The status of the node"),
    _col("Roles", "string", "The roles of the node"),
    _AGE,
    _col("Version", "string", "Kubelet Version reported by the node."),
    _col("Internal-IP", "string", "List of addresses reachable to the node.", priority=1),
    _col("External-IP", "string", "List of addresses reachable to the node.", priority=1),
    _col("OS-Image", "string", "OS Image reported by the node from /etc/os-release (e.g. "
         "Debian GNU/Linux 7 (wheezy)).", priority=1),
    _col("Kernel-Version", "string", "Kernel Version reported by the node from 'uname -r' "
         "(e.g. 3.16.0-0.bpo.4-amd64).", priority=1),
    _col("Container-Runtime", "string", "ContainerRuntime Version reported by the node "
         "through runtime remote API (e.g. containerd://1.4.2).", priority=1),
]


def _node_roles(node: Obj) -> str:
    roles: set[str] = set()
    for k, v in _map(node, "metadata", "labels").items():
        if k.startswith("node-role.kubernetes.io/"):
            roles.add(k.removeprefix("node-role.kubernetes.io/"))
        elif k == "kubernetes.io/role":
            roles.add(str(v))
    return ",".join(sorted(r for r in roles if r)) or "<none>"


def _node_address(node: Obj, kind: str) -> str:
    for a in _list(node, "status", "addresses"):
        if _str(a, "type") == kind:
            return _str(a, "address")
    return "<none>"


def _print_node(node: Obj, now: datetime) -> list[Any]:
    status: list[str] = []
    for c in _list(node, "status", "conditions"):
        if _str(c, "type") == "Ready":
            status = ["Ready" if _str(c, "status") == "True" else "NotReady"]
    if not status:
        status = ["Unknown"]
    if _get(node, "spec", "unschedulable") is True:
        status.append("SchedulingDisabled")
    info = _map(node, "status", "nodeInfo")
    return [
        _name(node),
        ",".join(status),
        _node_roles(node),
        _created(node, now),
        _str(info, "kubeletVersion"),
        _node_address(node, "InternalIP"),
        _node_address(node, "ExternalIP"),
        _str(info, "osImage") or "<unknown>",
        _str(info, "kernelVersion") or "<unknown>",
        _str(info, "containerRuntimeVersion") or "<unknown>",
    ]


_SA_COLUMNS = [
    _NAME,
    _col("Secrets", "integer", "Secrets is a list of the secrets in the same namespace that "
         "pods running using this ServiceAccount are allowed to use."),
    _AGE,
]


def _print_sa(sa: Obj, now: datetime) -> list[Any]:
    return [_name(sa), len(_list(sa, "secrets")), _created(sa, now)]


_SECRET_COLUMNS = [
    _NAME,
    _col("Type", "string", "Used to facilitate programmatic handling of secret data."),
    _col("Data", "integer", "Data contains the secret data."),
    _AGE,
]


def _print_secret(secret: Obj, now: datetime) -> list[Any]:
    keys = set(_map(secret, "data")) | set(_map(secret, "stringData"))
    return [_name(secret), _str(secret, "type") or "Opaque", len(keys), _created(secret, now)]


_CONFIGMAP_COLUMNS = [
    _NAME,
    _col("Data", "integer", "Data contains the configuration data."),
    _AGE,
]


def _print_configmap(cm: Obj, now: datetime) -> list[Any]:
    return [_name(cm), len(_map(cm, "data")) + len(_map(cm, "binaryData")), _created(cm, now)]


_EVENT_COLUMNS = [
    _col("Last Seen", "string", "The time at which the most recent occurrence of this event "
         "was recorded."),
    _col("Type", "string", "Type of this event (Normal, Warning), new types could be added "
         "in the future"),
    _col("Reason", "string", "This should be a short, machine understandable string that "
         "gives the reason for the transition into the object's current status."),
    _col("Object", "string", "The object that this event is about."),
    _col("Subobject", "string", "If referring to a piece of an object instead of an entire "
         "object, this string should contain a valid JSON/Go field access statement.",
         priority=1),
    _col("Source", "string", "The component reporting this event.", priority=1),
    _col("Message", "string", "A human-readable description of the status of this "
         "operation."),
    _col("First Seen", "string", "The time at which the event was first recorded.",
         priority=1),
    _col("Count", "string", "The number of times this event has occurred.", priority=1),
    _col("Name", "string", _NAME_DOC, fmt="name", priority=1),
]


def _print_event(ev: Obj, now: datetime) -> list[Any]:
    first = _get(ev, "firstTimestamp")
    first_cell = age(first if first else _get(ev, "eventTime"), now)
    last = _get(ev, "lastTimestamp")
    last_cell = age(last, now) if last else first_cell
    count = _int(ev, "count")
    series = _get(ev, "series")
    if isinstance(series, Mapping):
        last_cell = age(_get(series, "lastObservedTime"), now)
        count = _int(series, "count")
    elif count == 0:
        count = 1  # singleton events from events.k8s.io/v1 carry no count
    involved = _map(ev, "involvedObject")
    kind = _str(involved, "kind").lower()
    target = f"{kind}/{_str(involved, 'name')}" if _str(involved, "name") else kind
    component = _str(ev, "source", "component") or _str(ev, "reportingComponent")
    instance = _str(ev, "source", "host") or _str(ev, "reportingInstance")
    source = f"{component}, {instance}" if instance else component
    return [
        last_cell,
        _str(ev, "type"),
        _str(ev, "reason"),
        target,
        _str(involved, "fieldPath"),
        source,
        _str(ev, "message").strip(),
        first_cell,
        count,
        _name(ev),
    ]


# ---------------------------------------------------------------------------------------
# apps/v1

_DEPLOYMENT_COLUMNS = [
    _NAME,
    _col("Ready", "string", "Number of the pod with ready state"),
    _col("Up-to-date", "integer", "Total number of non-terminated pods targeted by this "
         "deployment that have the desired template spec."),
    _col("Available", "integer", "Total number of available pods (ready for at least "
         "minReadySeconds) targeted by this deployment."),
    _AGE,
    _col("Containers", "string", "Names of each container in the template.", priority=1),
    _col("Images", "string", "Images referenced by each container in the template.",
         priority=1),
    _col("Selector", "string", "Label selector for pods. Existing ReplicaSets whose pods are "
         "selected by this will be the ones affected by this deployment.", priority=1),
]


def _replicas(obj: Obj) -> int:
    v = _get(obj, "spec", "replicas")
    return 1 if v is None else _int(obj, "spec", "replicas")  # defaulted to 1


def _print_deployment(d: Obj, now: datetime) -> list[Any]:
    status = _map(d, "status")
    containers, images = _containers_images(_get(d, "spec", "template", "spec"))
    return [
        _name(d),
        f"{_int(status, 'readyReplicas')}/{_replicas(d)}",
        _int(status, "updatedReplicas"),
        _int(status, "availableReplicas"),
        _created(d, now),
        containers,
        images,
        label_selector_string(_get(d, "spec", "selector")),
    ]


_REPLICASET_COLUMNS = [
    _NAME,
    _col("Desired", "integer", "Replicas is the number of desired replicas."),
    _col("Current", "integer", "Replicas is the most recently observed number of replicas."),
    _col("Ready", "integer", "readyReplicas is the number of pods targeted by this ReplicaSet "
         "with a Ready Condition."),
    _AGE,
    _col("Containers", "string", "Names of each container in the template.", priority=1),
    _col("Images", "string", "Images referenced by each container in the template.",
         priority=1),
    _col("Selector", "string", "Selector is a label query over pods that should match the "
         "replica count.", priority=1),
]


def _print_replicaset(rs: Obj, now: datetime) -> list[Any]:
    status = _map(rs, "status")
    containers, images = _containers_images(_get(rs, "spec", "template", "spec"))
    return [
        _name(rs),
        _replicas(rs),
        _int(status, "replicas"),
        _int(status, "readyReplicas"),
        _created(rs, now),
        containers,
        images,
        label_selector_string(_get(rs, "spec", "selector")),
    ]


# ---------------------------------------------------------------------------------------
# discovery.k8s.io/v1, networking.k8s.io/v1

_ENDPOINTSLICE_COLUMNS = [
    _NAME,
    _col("AddressType", "string", "addressType specifies the type of address carried by "
         "this EndpointSlice."),
    _col("Ports", "string", "ports specifies the list of network ports exposed by each "
         "endpoint in this slice."),
    _col("Endpoints", "string", "endpoints is a list of unique endpoints in this slice."),
    _AGE,
]


def _print_endpointslice(es: Obj, now: datetime) -> list[Any]:
    ports: list[str] = []
    for p in _list(es, "ports"):
        port = _get(p, "port")
        if isinstance(port, int):
            ports.append(str(port))
        elif _get(p, "name") is not None:
            ports.append(_str(p, "name"))
        else:
            ports.append("*")
    addrs = [str(a) for ep in _list(es, "endpoints") for a in _list(ep, "addresses")]
    return [
        _name(es),
        _str(es, "addressType"),
        _with_more(ports, len(ports), 3, "<unset>"),
        _with_more(addrs, len(addrs), 3, "<unset>"),
        _created(es, now),
    ]


_INGRESS_COLUMNS = [
    _NAME,
    _col("Class", "string", "The name of the IngressClass resource."),
    _col("Hosts", "string", "Hosts that incoming requests are matched against before the "
         "ingress rule"),
    _col("Address", "string", "Address is a list containing ingress points for the "
         "load-balancer"),
    _col("Ports", "string", "Ports of TLS configurations that open"),
    _AGE,
]


def _print_ingress(ing: Obj, now: datetime) -> list[Any]:
    rules = _list(ing, "spec", "rules")
    hosts: list[str] = []
    more = False
    for rule in rules:
        if len(hosts) == 3:
            more = True
        if not more and _str(rule, "host"):
            hosts.append(_str(rule, "host"))
    hosts_cell = ",".join(hosts) if hosts else "*"
    if hosts and more:
        hosts_cell += f" + {len(rules) - 3} more..."
    return [
        _name(ing),
        _str(ing, "spec", "ingressClassName") or "<none>",
        hosts_cell,
        _lb_ingress(_get(ing, "status", "loadBalancer")),
        "80, 443" if _list(ing, "spec", "tls") else "80",
        _created(ing, now),
    ]


_INGRESSCLASS_COLUMNS = [
    _NAME,
    _col("Controller", "string", "Controller that is responsible for handling this class"),
    _col("Parameters", "string", "A reference to a resource with additional parameters"),
    _AGE,
]


def _print_ingressclass(ic: Obj, now: datetime) -> list[Any]:
    params = _get(ic, "spec", "parameters")
    params_cell = "<none>"
    if isinstance(params, Mapping):
        params_cell = _str(params, "kind")
        if params.get("apiGroup") is not None:
            params_cell += "." + _str(params, "apiGroup")
        params_cell += "/" + _str(params, "name")
    return [_name(ic), _str(ic, "spec", "controller"), params_cell, _created(ic, now)]


_NETPOL_COLUMNS = [
    _NAME,
    _col("Pod-Selector", "string", "podSelector selects the pods to which this "
         "NetworkPolicy object applies."),
    _AGE,
]


def _print_netpol(np: Obj, now: datetime) -> list[Any]:
    return [_name(np), _format_label_selector(_get(np, "spec", "podSelector")),
            _created(np, now)]


# ---------------------------------------------------------------------------------------
# rbac.authorization.k8s.io/v1, and the default convertor


def _print_created_at(obj: Obj, now: datetime) -> list[Any]:
    return [_name(obj), _rfc3339(_get(obj, "metadata", "creationTimestamp"))]


_BINDING_COLUMNS = [
    _NAME,
    _col("Role", "string", "RoleRef can reference a Role in the current namespace or a "
         "ClusterRole in the global namespace."),
    _AGE,
    _col("Users", "string", "Users in the roleBinding", priority=1),
    _col("Groups", "string", "Groups in the roleBinding", priority=1),
    _col("ServiceAccounts", "string", "ServiceAccounts in the roleBinding", priority=1),
]


def _print_binding(rb: Obj, now: datetime) -> list[Any]:
    users: list[str] = []
    groups: list[str] = []
    sas: list[str] = []
    for s in _list(rb, "subjects"):
        kind = _str(s, "kind")
        if kind == "User":
            users.append(_str(s, "name"))
        elif kind == "Group":
            groups.append(_str(s, "name"))
        elif kind == "ServiceAccount":
            sas.append(f"{_str(s, 'namespace')}:{_str(s, 'name')}")
    return [
        _name(rb),
        f"{_str(rb, 'roleRef', 'kind')}/{_str(rb, 'roleRef', 'name')}",
        _created(rb, now),
        ", ".join(users),
        ", ".join(groups),
        ", ".join(sas),
    ]


def _print_name_age(obj: Obj, now: datetime) -> list[Any]:
    return [_name(obj), _created(obj, now)]


_PRINTERS: dict[tuple[str, str], tuple[list[Column], Printer]] = {
    ("", "Pod"): (_POD_COLUMNS, _print_pod),
    ("", "Service"): (_SERVICE_COLUMNS, _print_service),
    ("", "Endpoints"): (_ENDPOINTS_COLUMNS, _print_endpoints),
    ("", "Namespace"): (_NAMESPACE_COLUMNS, _print_namespace),
    ("", "Node"): (_NODE_COLUMNS, _print_node),
    ("", "ServiceAccount"): (_SA_COLUMNS, _print_sa),
    ("", "Secret"): (_SECRET_COLUMNS, _print_secret),
    ("", "ConfigMap"): (_CONFIGMAP_COLUMNS, _print_configmap),
    ("", "Event"): (_EVENT_COLUMNS, _print_event),
    ("apps", "Deployment"): (_DEPLOYMENT_COLUMNS, _print_deployment),
    ("apps", "ReplicaSet"): (_REPLICASET_COLUMNS, _print_replicaset),
    ("discovery.k8s.io", "EndpointSlice"): (_ENDPOINTSLICE_COLUMNS, _print_endpointslice),
    ("networking.k8s.io", "Ingress"): (_INGRESS_COLUMNS, _print_ingress),
    ("networking.k8s.io", "IngressClass"): (_INGRESSCLASS_COLUMNS, _print_ingressclass),
    ("networking.k8s.io", "NetworkPolicy"): (_NETPOL_COLUMNS, _print_netpol),
    ("rbac.authorization.k8s.io", "Role"): ([_NAME, _CREATED_AT], _print_created_at),
    ("rbac.authorization.k8s.io", "ClusterRole"): ([_NAME, _CREATED_AT], _print_created_at),
    ("rbac.authorization.k8s.io", "RoleBinding"): (_BINDING_COLUMNS, _print_binding),
    ("rbac.authorization.k8s.io", "ClusterRoleBinding"): (_BINDING_COLUMNS, _print_binding),
    # apiextensions uses the generic apiserver's default convertor for CRDs.
    ("apiextensions.k8s.io", "CustomResourceDefinition"): (
        [_NAME, _CREATED_AT], _print_created_at),
}


# ---------------------------------------------------------------------------------------
# CRD-style printer columns (custom resources and the CRD-backed kinds podnet builds in)


def _pc(
    name: str, json_path: str, type_: str = "string", *, priority: int = 0, description: str = ""
) -> dict[str, Any]:
    col: dict[str, Any] = {"name": name, "type": type_, "jsonPath": json_path}
    if priority:
        col["priority"] = priority
    if description:
        col["description"] = description
    return col


_AGE_PC = _pc("Age", ".metadata.creationTimestamp", "date")
_PROGRAMMED = '.status.conditions[?(@.type=="Programmed")].status'

# KongPlugin and KongClusterPlugin print the same columns (as their CRDs declare).
_KONG_PLUGIN_COLUMNS = [
    _pc("Plugin-Type", ".plugin", description="Name of the plugin"),
    _AGE_PC,
    _pc("Disabled", ".disabled", "boolean", priority=1,
        description="Indicates if the plugin is disabled"),
    _pc("Config", ".config", priority=1, description="Configuration of the plugin"),
    _pc("Programmed", _PROGRAMMED),
]

# The additionalPrinterColumns the upstream CRDs declare (Gateway API v1.2 standard
# channel, Istio 1.24, Kong Ingress Controller 3.x); kinds absent here get NAME AGE.
CRD_PRINTER_COLUMNS: dict[tuple[str, str], list[dict[str, Any]]] = {
    ("gateway.networking.k8s.io", "GatewayClass"): [
        _pc("Controller", ".spec.controllerName"),
        _pc("Accepted", '.status.conditions[?(@.type=="Accepted")].status'),
        _AGE_PC,
        _pc("Description", ".spec.description", priority=1),
    ],
    ("gateway.networking.k8s.io", "Gateway"): [
        _pc("Class", ".spec.gatewayClassName"),
        _pc("Address", ".status.addresses[*].value"),
        _pc("Programmed", _PROGRAMMED),
        _AGE_PC,
    ],
    ("gateway.networking.k8s.io", "HTTPRoute"): [_pc("Hostnames", ".spec.hostnames"), _AGE_PC],
    ("gateway.networking.k8s.io", "GRPCRoute"): [_pc("Hostnames", ".spec.hostnames"), _AGE_PC],
    ("gateway.networking.k8s.io", "ReferenceGrant"): [_AGE_PC],
    ("networking.istio.io", "VirtualService"): [
        _pc("Gateways", ".spec.gateways", description="The names of gateways and sidecars "
            "that should apply these routes"),
        _pc("Hosts", ".spec.hosts", description="The destination hosts to which traffic is "
            "being sent"),
        _AGE_PC,
    ],
    ("networking.istio.io", "DestinationRule"): [
        _pc("Host", ".spec.host", description="The name of a service from the service "
            "registry"),
        _AGE_PC,
    ],
    ("configuration.konghq.com", "KongPlugin"): _KONG_PLUGIN_COLUMNS,
    ("configuration.konghq.com", "KongClusterPlugin"): _KONG_PLUGIN_COLUMNS,
    ("configuration.konghq.com", "KongConsumer"): [
        _pc("Username", ".username", description="Username of a Kong Consumer"),
        _AGE_PC,
        _pc("Programmed", _PROGRAMMED),
    ],
}

_DEFAULT_CR_COLUMNS = [_AGE_PC]

_SEGMENT = re.compile(
    r"""\.(?P<field>(?:\\.|[^.\[\\])+)"""
    r"""|\[(?P<index>-?\d+)\]"""
    r"""|\[(?P<star>\*)\]"""
    r"""|\[['"](?P<key>[^'"]*)['"]\]"""
    r"""|\[\?\(@\.(?P<fkey>[\w.-]+)\s*==\s*(?P<q>['"])(?P<fval>.*?)(?P=q)\)\]"""
)


def json_path(obj: Any, path: str) -> list[Any]:
    """Evaluate the simple JSONPath CRD printer columns use; every match, in order.

    Supports `.field` (with `\\.` escapes), `[n]`, `[*]`, `['key']` and
    `[?(@.field=="value")]`, which covers the columns real CRDs declare.
    """
    path = path.strip()
    if path.startswith("{") and path.endswith("}"):
        path = path[1:-1]
    values: list[Any] = [obj]
    pos = 0
    while pos < len(path):
        m = _SEGMENT.match(path, pos)
        if m is None:
            raise ValueError(f"unsupported JSONPath {path!r} at {pos}")
        pos = m.end()
        nxt: list[Any] = []
        for v in values:
            if m.group("field") is not None or m.group("key") is not None:
                key = m.group("key")
                if key is None:
                    key = m.group("field").replace("\\.", ".")
                if isinstance(v, Mapping) and key in v:
                    nxt.append(v[key])
            elif m.group("index") is not None:
                i = int(m.group("index"))
                if isinstance(v, list) and -len(v) <= i < len(v):
                    nxt.append(v[i])
            elif m.group("star") is not None:
                if isinstance(v, list):
                    nxt.extend(v)
                elif isinstance(v, Mapping):
                    nxt.extend(v.values())
            elif isinstance(v, list):
                fkey, fval = m.group("fkey"), m.group("fval")
                for item in v:
                    got = json_path(item, "." + fkey)
                    if got and _text(got[0]) == fval:
                        nxt.append(item)
        values = nxt
    return values


def _text(value: Any) -> str:
    """Go's JSONPath text printing: maps and lists as compact JSON, scalars bare."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Mapping | list):
        return json.dumps(value, separators=(",", ":"), sort_keys=True)
    if value is None:
        return "<nil>"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _custom_cell(col: Mapping[str, Any], obj: Obj, now: datetime) -> Any:
    """One cell like the CRD table convertor: first match only; nil shows as `<none>`."""
    try:
        results = json_path(obj, str(col.get("jsonPath", "")))
    except ValueError:
        return None
    if not results:
        return None
    value = results[0]
    ctype = col.get("type", "string")
    if value is None:
        return None
    if ctype == "string":
        return _text(value)
    if ctype == "integer":
        if isinstance(value, int | float) and not isinstance(value, bool):
            return int(value)
        return None
    if ctype == "number":
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        return None
    if ctype == "boolean":
        return value if isinstance(value, bool) else None
    if ctype == "date":
        if isinstance(value, str):
            ts = parse_time(value)
            return "<invalid>" if ts is None else human_duration(_aware(now) - ts)
        return None
    return None


def _custom_columns(columns: Sequence[Mapping[str, Any]]) -> list[Column]:
    defs = [_NAME]
    for c in columns:
        desc = c.get("description") or (
            f"Custom resource definition column (in JSONPath format): {c.get('jsonPath', '')}"
        )
        defs.append(
            _col(
                str(c.get("name", "")),
                str(c.get("type", "string")),
                str(desc),
                fmt=str(c.get("format", "")),
                priority=int(c.get("priority", 0) or 0),
            )
        )
    return defs


# ---------------------------------------------------------------------------------------
# Public API


def _layout(
    rt: ResourceType, custom_columns: Sequence[Mapping[str, Any]] | None
) -> tuple[list[Column], Printer]:
    if custom_columns is None:
        builtin = _PRINTERS.get((rt.group, rt.kind))
        if builtin is not None:
            return builtin
        custom_columns = CRD_PRINTER_COLUMNS.get((rt.group, rt.kind), _DEFAULT_CR_COLUMNS)
    cols = list(custom_columns)

    def printer(obj: Obj, now: datetime) -> list[Any]:
        return [_name(obj), *(_custom_cell(c, obj, now) for c in cols)]

    return _custom_columns(cols), printer


def column_definitions(
    rt: ResourceType, custom_columns: Sequence[Mapping[str, Any]] | None = None
) -> list[Column]:
    """The Table's `columnDefinitions` for this kind (fresh dicts, safe to mutate)."""
    return [dict(c) for c in _layout(rt, custom_columns)[0]]


def _row_object(obj: Obj, include_object: str) -> dict[str, Any] | None:
    if include_object == "None":
        return None
    if include_object == "Object":
        return dict(obj)
    # PartialObjectMetadata with the full metadata: kubectl needs it for the NAMESPACE
    # column of `-A` and for `--show-labels`.
    return {
        "kind": "PartialObjectMetadata",
        "apiVersion": TABLE_API_VERSION,
        "metadata": dict(_map(obj, "metadata")),
    }


def table_row(
    rt: ResourceType,
    obj: Obj,
    now: datetime,
    *,
    include_object: str = "Metadata",
    custom_columns: Sequence[Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    """One `TableRow`: cells (always the wide set) plus the object as asked."""
    _, printer = _layout(rt, custom_columns)
    row: dict[str, Any] = {"cells": printer(obj, now)}
    if (rt.group, rt.kind) == ("", "Pod") and custom_columns is None:
        conditions = _pod_conditions(obj)
        if conditions:
            row["conditions"] = conditions
    embedded = _row_object(obj, include_object)
    if embedded is not None:
        row["object"] = embedded
    return row


def build_table(
    rt: ResourceType,
    objects: Sequence[Obj],
    now: datetime,
    *,
    include_object: str = "Metadata",
    custom_columns: list[dict[str, Any]] | None = None,
    include_columns: bool = True,
) -> dict[str, Any]:
    """A `meta.k8s.io/v1` Table for `objects`, as a real 1.32 apiserver builds it.

    `include_object` is the `includeObject` query parameter (`None`, `Metadata` — the
    default kubectl relies on — or `Object`). `custom_columns` are a CRD version's
    `additionalPrinterColumns`; without them built-in kinds use their upstream printer
    and CRD-backed built-ins their upstream CRD's columns. The caller sets
    `metadata.resourceVersion` (and `continue`). An unknown `include_object` raises
    BadRequest, as the apiserver answers it. `include_columns=False` leaves out
    `columnDefinitions`, as the apiserver does for every watch event after the first.
    """
    if include_object not in INCLUDE_OBJECT_VALUES:
        raise errors.bad_request(
            f'Unsupported value: "{include_object}": supported values: '
            + ", ".join(f'"{v}"' for v in INCLUDE_OBJECT_VALUES)
        )
    columns, _ = _layout(rt, custom_columns)
    table: dict[str, Any] = {
        "kind": "Table",
        "apiVersion": TABLE_API_VERSION,
        "metadata": {},
    }
    if include_columns:
        # Left out, not null, after the first watch event: that is what was measured
        # to work with kubectl 1.32.
        table["columnDefinitions"] = [dict(c) for c in columns]
    table["rows"] = [
        table_row(rt, obj, now, include_object=include_object, custom_columns=custom_columns)
        for obj in objects
    ]
    return table


def table_event(
    event_type: str,
    rt: ResourceType,
    obj: Obj,
    now: datetime,
    *,
    first: bool,
    include_object: str = "Metadata",
    custom_columns: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """A watch event whose object is a one-row Table (`kubectl get -w`).

    Only the first event of a stream carries `columnDefinitions`; kubectl keeps the ones
    it saw first. The row's object metadata carries the resourceVersion kubectl resumes
    from, so nothing else needs setting.
    """
    table = build_table(
        rt,
        [obj],
        now,
        include_object=include_object,
        custom_columns=custom_columns,
        include_columns=first,
    )
    rv = _str(obj, "metadata", "resourceVersion")
    if rv:
        table["metadata"]["resourceVersion"] = rv
    return {"type": event_type, "object": table}
