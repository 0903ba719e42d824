"""Small pure helpers every controller needs: time, owner references, pod readiness,
label selectors, conditions. Each follows the Kubernetes function it is named after."""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

from podnet.api.selectors import LabelSelector
from podnet.util.clock import SystemClock as SystemClock  # the manager's default

JSON = dict[str, Any]


class Clock(Protocol):
    """Where controllers get the time; tests pass a fake. Controllers only need `now()`,
    so any `podnet.util.clock.Clock` (e.g. `FakeClock`) fits."""

    def now(self) -> datetime: ...


def rfc3339(t: datetime) -> str:
    """Kubernetes' metav1.Time format: second precision, UTC, trailing Z."""
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def meta(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    m = obj.get("metadata")
    return m if isinstance(m, Mapping) else {}


def name_of(obj: Mapping[str, Any]) -> str:
    return str(meta(obj).get("name", ""))


def namespace_of(obj: Mapping[str, Any]) -> str:
    return str(meta(obj).get("namespace", ""))


def uid_of(obj: Mapping[str, Any]) -> str:
    return str(meta(obj).get("uid", ""))


def labels_of(obj: Mapping[str, Any]) -> Mapping[str, str]:
    labels = meta(obj).get("labels")
    return labels if isinstance(labels, Mapping) else {}


def is_deleting(obj: Mapping[str, Any]) -> bool:
    return bool(meta(obj).get("deletionTimestamp"))


def controller_ref(obj: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The ownerReference with controller: true, if any (metav1.GetControllerOf)."""
    for ref in meta(obj).get("ownerReferences") or []:
        if ref.get("controller"):
            return ref  # type: ignore[no-any-return]
    return None


def is_controlled_by(obj: Mapping[str, Any], owner: Mapping[str, Any]) -> bool:
    ref = controller_ref(obj)
    return ref is not None and ref.get("uid") == uid_of(owner)


def new_controller_ref(owner: Mapping[str, Any], api_version: str, kind: str) -> JSON:
    """metav1.NewControllerRef: controller and blockOwnerDeletion both true."""
    return {
        "apiVersion": api_version,
        "kind": kind,
        "name": name_of(owner),
        "uid": uid_of(owner),
        "controller": True,
        "blockOwnerDeletion": True,
    }


# -- pods -------------------------------------------------------------------------------


def pod_condition(pod: Mapping[str, Any], ctype: str) -> Mapping[str, Any] | None:
    for cond in (pod.get("status") or {}).get("conditions") or []:
        if cond.get("type") == ctype:
            return cond  # type: ignore[no-any-return]
    return None


def is_pod_ready(pod: Mapping[str, Any]) -> bool:
    """podutil.IsPodReady: the Ready condition is True."""
    cond = pod_condition(pod, "Ready")
    return cond is not None and cond.get("status") == "True"


def is_pod_available(pod: Mapping[str, Any], min_ready_seconds: int, now: datetime) -> bool:
    """podutil.IsPodAvailable: ready, and ready for at least minReadySeconds."""
    if not is_pod_ready(pod):
        return False
    if min_ready_seconds <= 0:
        return True
    cond = pod_condition(pod, "Ready") or {}
    since = parse_time(cond.get("lastTransitionTime"))
    return since is not None and (now - since).total_seconds() >= min_ready_seconds


def pod_phase(pod: Mapping[str, Any]) -> str:
    return str((pod.get("status") or {}).get("phase", ""))


def is_pod_terminal(pod: Mapping[str, Any]) -> bool:
    return pod_phase(pod) in ("Succeeded", "Failed")


def is_pod_active(pod: Mapping[str, Any]) -> bool:
    """controller.IsPodActive: not terminal and not being deleted."""
    return not is_pod_terminal(pod) and not is_deleting(pod)


# -- label selectors ----------------------------------------------------------------------


def matches_labels(selector: Mapping[str, str], labels: Mapping[str, str]) -> bool:
    """A Service-style selector (a plain map): every pair must be present."""
    return all(labels.get(k) == v for k, v in selector.items())


def matches_selector(selector: Mapping[str, Any] | None, labels: Mapping[str, str]) -> bool:
    """A metav1.LabelSelector (matchLabels + matchExpressions).

    As in metav1.LabelSelectorAsSelector, an empty selector matches everything and a
    missing (None) one matches nothing (`podnet.api.selectors` holds the one parser).
    """
    return LabelSelector.from_object(selector).matches(labels)


# -- conditions ---------------------------------------------------------------------------


def set_condition(conditions: Sequence[Mapping[str, Any]], new: Mapping[str, Any]) -> list[JSON]:
    """Replace the condition of `new`'s type, keeping lastTransitionTime when the status
    does not change (as every Kubernetes SetXCondition does). The replaced condition
    moves to the end, as in the Deployment controller's SetDeploymentCondition."""
    out = [copy.deepcopy(dict(c)) for c in conditions if c.get("type") != new.get("type")]
    old = next((c for c in conditions if c.get("type") == new.get("type")), None)
    cond = dict(new)
    if old is not None and old.get("status") == new.get("status"):
        if old.get("reason") == new.get("reason"):
            return [copy.deepcopy(dict(c)) for c in conditions]
        if "lastTransitionTime" in old:
            cond["lastTransitionTime"] = old["lastTransitionTime"]
    out.append(cond)
    return out


def get_condition(
    conditions: Sequence[Mapping[str, Any]] | None, ctype: str
) -> Mapping[str, Any] | None:
    for cond in conditions or []:
        if cond.get("type") == ctype:
            return cond
    return None
