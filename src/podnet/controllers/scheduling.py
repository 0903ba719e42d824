"""A small scheduler: picks a node for a pod with the default scheduler's basic filters, in
its order, and explains a failure with its FailedScheduling message. Pure.

Filters (first failure per node decides its reason, as in kube-scheduler): NodeUnschedulable,
NodeName, TaintToleration (NoSchedule/NoExecute; a node that is not Ready counts as tainted
`node.kubernetes.io/not-ready`, the taint the node lifecycle controller would add), NodeAffinity
(nodeSelector and required node affinity), NodeResourcesFit (pod count only). Among the nodes
that fit, the one with the fewest pods wins (ties: by name).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NamedTuple

DEFAULT_SCHEDULER = "default-scheduler"
NOT_READY_TAINT = {"key": "node.kubernetes.io/not-ready", "effect": "NoSchedule"}
UNSCHEDULABLE_TAINT_KEY = "node.kubernetes.io/unschedulable"

R_UNSCHEDULABLE = "node(s) were unschedulable"
R_NODE_NAME = "node(s) didn't match the requested node name"
R_AFFINITY = "node(s) didn't match Pod's node affinity/selector"
R_TOO_MANY_PODS = "Too many pods"
# Failures preemption cannot fix; anything else could be, if lower-priority pods existed.
_UNRESOLVABLE_PREFIXES = (R_UNSCHEDULABLE, R_NODE_NAME, R_AFFINITY, "node(s) had untolerated")


class Decision(NamedTuple):
    """`node` is where to bind the pod (None: nowhere); `message` says why not (the event
    text), or "" when there is nothing to do."""

    node: str | None
    message: str


def pick(
    pod: Mapping[str, Any],
    nodes: Sequence[Mapping[str, Any]],
    pods: Iterable[Mapping[str, Any]] = (),
) -> Decision:
    """Choose a node for an unbound pod. `pods` are the pods in the cluster (for the per-node
    pod count); pods already bound, being deleted, finished or meant for another scheduler are
    not ours and get Decision(None, "")."""
    spec = pod.get("spec") or {}
    if spec.get("nodeName") or (pod.get("metadata") or {}).get("deletionTimestamp"):
        return Decision(None, "")
    if (spec.get("schedulerName") or DEFAULT_SCHEDULER) != DEFAULT_SCHEDULER:
        return Decision(None, "")
    if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
        return Decision(None, "")
    if not nodes:
        return Decision(None, "no nodes available to schedule pods")

    load = pods_per_node(pods)
    reasons: dict[str, str] = {}
    fits: list[str] = []
    for node in nodes:
        name = str((node.get("metadata") or {}).get("name", ""))
        reason = why_not(pod, node, load.get(name, 0))
        if reason is None:
            fits.append(name)
        else:
            reasons[name] = reason
    if fits:
        return Decision(min(fits, key=lambda n: (load.get(n, 0), n)), "")
    return Decision(None, fit_error(len(nodes), reasons.values()))


def pods_per_node(pods: Iterable[Mapping[str, Any]]) -> Counter[str]:
    """Pods bound to each node that still hold a place (not Succeeded or Failed)."""
    count: Counter[str] = Counter()
    for p in pods:
        node = (p.get("spec") or {}).get("nodeName")
        if node and (p.get("status") or {}).get("phase") not in ("Succeeded", "Failed"):
            count[str(node)] += 1
    return count


def why_not(pod: Mapping[str, Any], node: Mapping[str, Any], pod_count: int) -> str | None:
    """The first filter the node fails for the pod, as the scheduler words it; None if it fits."""
    spec = pod.get("spec") or {}
    nspec = node.get("spec") or {}
    meta = node.get("metadata") or {}
    tolerations = [t for t in spec.get("tolerations") or [] if isinstance(t, Mapping)]
    if nspec.get("unschedulable") and not any(
        tolerates(t, {"key": UNSCHEDULABLE_TAINT_KEY, "effect": "NoSchedule"}) for t in tolerations
    ):
        return R_UNSCHEDULABLE
    wanted = spec.get("nodeName")
    if wanted and wanted != meta.get("name"):
        return R_NODE_NAME
    for taint in node_taints(node):
        if taint.get("effect") not in ("NoSchedule", "NoExecute"):
            continue
        if not any(tolerates(t, taint) for t in tolerations):
            key, value = taint.get("key", ""), taint.get("value", "")
            return f"node(s) had untolerated taint {{{key}: {value}}}"
    if not matches_node_selector(pod, node):
        return R_AFFINITY
    if pod_count >= allocatable_pods(node):
        return R_TOO_MANY_PODS
    return None


def fit_error(num_nodes: int, reasons: Iterable[str]) -> str:
    """kube-scheduler's FitError text with the preemption post-filter's summary."""
    histogram = Counter(reasons)
    parts = sorted(f"{n} {r}" for r, n in histogram.items())
    preemption: Counter[str] = Counter()
    for r, n in histogram.items():
        if r.startswith(_UNRESOLVABLE_PREFIXES):
            preemption["Preemption is not helpful for scheduling"] += n
        else:
            preemption["No preemption victims found for incoming pod"] += n
    pre = sorted(f"{n} {r}" for r, n in preemption.items())
    return (
        f"0/{num_nodes} nodes are available: {', '.join(parts)}. "
        f"preemption: 0/{num_nodes} nodes are available: {', '.join(pre)}."
    )


# --- pieces -------------------------------------------------------------------------------


def node_ready(node: Mapping[str, Any]) -> bool:
    for c in (node.get("status") or {}).get("conditions") or []:
        if isinstance(c, Mapping) and c.get("type") == "Ready":
            return c.get("status") == "True"
    return False


def node_taints(node: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    taints = [t for t in (node.get("spec") or {}).get("taints") or [] if isinstance(t, Mapping)]
    if not node_ready(node) and not any(t.get("key") == NOT_READY_TAINT["key"] for t in taints):
        taints.append(NOT_READY_TAINT)
    return taints


def allocatable_pods(node: Mapping[str, Any]) -> int:
    status = node.get("status") or {}
    value = (status.get("allocatable") or {}).get("pods") or (status.get("capacity") or {}).get(
        "pods"
    )
    try:
        return int(str(value))
    except ValueError:
        return 110


def tolerates(toleration: Mapping[str, Any], taint: Mapping[str, Any]) -> bool:
    """corev1 Toleration.ToleratesTaint."""
    effect = toleration.get("effect")
    if effect and effect != taint.get("effect"):
        return False
    key = toleration.get("key")
    if key and key != taint.get("key"):
        return False
    op = toleration.get("operator") or "Equal"
    if op == "Exists":
        return True
    if op == "Equal":
        return bool(key) and (toleration.get("value") or "") == (taint.get("value") or "")
    return False


def matches_node_selector(pod: Mapping[str, Any], node: Mapping[str, Any]) -> bool:
    """spec.nodeSelector (all labels equal) and requiredDuringSchedulingIgnoredDuringExecution
    (any term; within a term, every expression and field)."""
    spec = pod.get("spec") or {}
    labels = (node.get("metadata") or {}).get("labels") or {}
    for k, v in (spec.get("nodeSelector") or {}).items():
        if labels.get(k) != v:
            return False
    required = ((spec.get("affinity") or {}).get("nodeAffinity") or {}).get(
        "requiredDuringSchedulingIgnoredDuringExecution"
    )
    if not isinstance(required, Mapping):
        return True
    terms = [t for t in required.get("nodeSelectorTerms") or [] if isinstance(t, Mapping)]
    fields = {"metadata.name": str((node.get("metadata") or {}).get("name", ""))}
    return any(term_matches(t, labels, fields) for t in terms)


def term_matches(
    term: Mapping[str, Any], labels: Mapping[str, str], fields: Mapping[str, str]
) -> bool:
    exprs = [e for e in term.get("matchExpressions") or [] if isinstance(e, Mapping)]
    field_exprs = [e for e in term.get("matchFields") or [] if isinstance(e, Mapping)]
    if not exprs and not field_exprs:
        return False  # an empty term matches no objects
    return all(requirement_matches(e, labels) for e in exprs) and all(
        requirement_matches(e, fields) for e in field_exprs
    )


def requirement_matches(expr: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    key = str(expr.get("key", ""))
    op = expr.get("operator")
    values = [str(v) for v in expr.get("values") or []]
    present = key in labels
    value = labels.get(key)
    if op == "In":
        return present and value in values
    if op == "NotIn":
        return not present or value not in values
    if op == "Exists":
        return present
    if op == "DoesNotExist":
        return not present
    if op in ("Gt", "Lt") and present and len(values) == 1:
        try:
            have, want = int(str(value)), int(values[0])
        except ValueError:
            return False
        return have > want if op == "Gt" else have < want
    return False
