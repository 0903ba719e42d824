"""The pod status the kubelet would write (Kubernetes 1.32), from the observed runtime state.

Pure. Follows the kubelet's `generateAPIPodStatus`: container statuses first (with the default
waiting reasons ContainerCreating / PodInitializing), then the phase computed from them
(`getPhase`), then the conditions PodReadyToStartContainers, Initialized, Ready and
ContainersReady (their lastTransitionTime only moves when their status does), with conditions
the kubelet does not own (PodScheduled, readiness gates, DisruptionTarget) kept from before.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from podnet.util.clock import rfc3339

from .lifecycle import ContainerSpec, RuntimeState, Waiting, containers, is_started
from .probes import ContainerProbes, ProbeKind, Result

JSON = dict[str, Any]

KUBELET_CONDITIONS = ("PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady")
TERMINAL = ("Succeeded", "Failed")


def container_id(pod_uid: str, name: str, restart_count: int) -> str:
    return f"podnet://{pod_uid}/{name}/{restart_count}"


def build(
    pod: Mapping[str, Any],
    runtime: Mapping[str, RuntimeState],
    probe_results: Mapping[str, ContainerProbes],
    pod_ip: str | None,
    host_ip: str | None,
    now: datetime,
    prev_status: Mapping[str, Any] | None,
    waiting: Mapping[str, Waiting] | None = None,
) -> JSON:
    """The pod's `status`. `waiting` is `lifecycle.Plan.waiting` (CrashLoopBackOff and retried
    start errors), which overrides what the runtime shows for those containers."""
    prev = prev_status or {}
    waiting = waiting or {}
    meta = pod.get("metadata") or {}
    uid = str(meta.get("uid", ""))
    inits, apps = containers(pod)
    default_reason = "PodInitializing" if inits else "ContainerCreating"

    def statuses(cs: Sequence[ContainerSpec]) -> list[JSON]:
        return [
            container_status(
                c,
                runtime.get(c.name),
                probe_results.get(c.name),
                uid,
                default_reason,
                waiting.get(c.name),
            )
            for c in cs
        ]

    init_statuses = statuses(inits)
    app_statuses = statuses(apps)

    deleting = bool(meta.get("deletionTimestamp"))
    all_stopped = not any(rs.state == "running" for rs in runtime.values())
    phase = get_phase(pod, init_statuses, app_statuses, pod_is_terminal=deleting and all_stopped)
    prev_phase = prev.get("phase")
    if prev_phase in TERMINAL:
        phase = str(prev_phase)  # a terminal phase never changes

    prev_conds = {
        str(c.get("type")): c for c in prev.get("conditions") or [] if isinstance(c, Mapping)
    }
    gates = readiness_gates(pod, prev_conds)
    owned = [
        ready_to_start_condition(pod_ip is not None and not (phase in TERMINAL and all_stopped)),
        initialized_condition(inits, init_statuses, app_statuses),
        ready_condition("Ready", inits, init_statuses, app_statuses, phase, gates),
        ready_condition("ContainersReady", inits, init_statuses, app_statuses, phase, []),
    ]
    conditions = [_stamp(c, prev_conds.get(c["type"]), now) for c in owned]
    conditions += [dict(c) for t, c in prev_conds.items() if t not in KUBELET_CONDITIONS]

    status: JSON = {"phase": phase, "conditions": conditions}
    if host_ip:
        status["hostIP"] = host_ip
        status["hostIPs"] = [{"ip": host_ip}]
    if pod_ip:
        status["podIP"] = pod_ip
        status["podIPs"] = [{"ip": pod_ip}]
    status["startTime"] = prev.get("startTime") or rfc3339(now)
    if init_statuses:
        status["initContainerStatuses"] = init_statuses
    status["containerStatuses"] = app_statuses
    status["qosClass"] = prev.get("qosClass") or qos_class(pod)
    for key in ("message", "reason", "nominatedNodeName"):
        if key in prev and phase == prev_phase:
            status[key] = prev[key]
    return status


# --- container statuses -------------------------------------------------------------------


def container_status(
    c: ContainerSpec,
    rs: RuntimeState | None,
    probes: ContainerProbes | None,
    pod_uid: str,
    default_reason: str,
    held: Waiting | None = None,
) -> JSON:
    restart_count = rs.restart_count if rs is not None else 0
    state: JSON
    last: JSON = {}
    cid: str | None = None
    if rs is None or rs.state == "unknown":
        state = {"waiting": {"reason": default_reason}}
    elif rs.state == "running":
        cid = container_id(pod_uid, c.name, restart_count)
        state = {"running": {"startedAt": _t(rs.started_at)}}
        if rs.last_termination is not None:
            last = {"terminated": terminated(rs.last_termination, pod_uid, c.name)}
    elif rs.state == "exited":
        cid = container_id(pod_uid, c.name, restart_count)
        term = terminated(rs, pod_uid, c.name)
        if held is not None:
            # In back-off: the exited run becomes the last state.
            state = {"waiting": {"reason": held.reason, "message": held.message}}
            last = {"terminated": term}
        else:
            state = {"terminated": term}
            if rs.last_termination is not None:
                last = {"terminated": terminated(rs.last_termination, pod_uid, c.name)}
    else:  # waiting
        if held is not None:
            w = {"reason": held.reason, "message": held.message}
        elif rs.start_error is not None:
            w = {"reason": rs.reason or "RunContainerError", "message": rs.start_error}
        else:
            w = {"reason": rs.reason or default_reason}
            if rs.message:
                w["message"] = rs.message
        state = {"waiting": w}
        if rs.last_termination is not None:
            last = {"terminated": terminated(rs.last_termination, pod_uid, c.name)}

    started = is_started(c, rs, probes)
    ready = started and _readiness_ok(c, probes)
    out: JSON = {
        "name": c.name,
        "state": state,
        "lastState": last,
        "ready": ready,
        "restartCount": restart_count,
        "image": str(c.raw.get("image", "")),
        "imageID": "",
    }
    if cid is not None:
        out["containerID"] = cid
    out["started"] = started
    return out


def _readiness_ok(c: ContainerSpec, probes: ContainerProbes | None) -> bool:
    if not c.has_probe(ProbeKind.READINESS):
        return True
    return (probes or ContainerProbes()).readiness == Result.SUCCESS


def terminated(rs: RuntimeState, pod_uid: str, name: str) -> JSON:
    code = rs.exit_code if rs.exit_code is not None else 0
    reason = rs.reason or ("Completed" if code == 0 else "Error")
    out: JSON = {"exitCode": code, "reason": reason}
    if rs.message:
        out["message"] = rs.message
    out["startedAt"] = _t(rs.started_at)
    out["finishedAt"] = _t(rs.finished_at)
    out["containerID"] = container_id(pod_uid, name, rs.restart_count)
    return out


def _t(t: datetime | None) -> str | None:
    return rfc3339(t) if t is not None else None


# --- phase --------------------------------------------------------------------------------


def _has_last_termination(s: Mapping[str, Any]) -> bool:
    return "terminated" in (s.get("lastState") or {})


def get_phase(
    pod: Mapping[str, Any],
    init_statuses: Sequence[Mapping[str, Any]],
    app_statuses: Sequence[Mapping[str, Any]],
    pod_is_terminal: bool = False,
) -> str:
    """The kubelet's getPhase (1.32, sidecar containers enabled)."""
    spec = pod.get("spec") or {}
    policy = spec.get("restartPolicy") or "Always"
    inits, _ = containers(pod)
    by_name = {s["name"]: s for s in [*init_statuses, *app_statuses]}

    pending_regular_init = pending_sidecar = failed_init = 0
    unknown = running = waiting = stopped = succeeded = 0
    for c in inits:
        s = by_name.get(c.name)
        state = (s or {}).get("state") or {}
        if c.sidecar:
            if s is None:
                unknown += 1
            elif "running" in state:
                if not s.get("started"):
                    pending_sidecar += 1
                running += 1
            elif "waiting" in state and not _has_last_termination(s):
                pending_sidecar += 1
                waiting += 1
            # A terminated sidecar does not count towards the phase.
            continue
        if s is None or "running" in state:
            pending_regular_init += 1
        elif "terminated" in state:
            if state["terminated"].get("exitCode") != 0:
                failed_init += 1
        elif "waiting" in state:
            last = (s.get("lastState") or {}).get("terminated")
            if last is not None:
                if last.get("exitCode") != 0:
                    failed_init += 1
            else:
                pending_regular_init += 1
        else:
            pending_regular_init += 1

    for s in app_statuses:
        state = s.get("state") or {}
        if "running" in state:
            running += 1
        elif "terminated" in state:
            stopped += 1
            if state["terminated"].get("exitCode") == 0:
                succeeded += 1
        elif "waiting" in state:
            if _has_last_termination(s):
                stopped += 1
            else:
                waiting += 1
        else:
            unknown += 1

    if failed_init > 0 and policy == "Never":
        return "Failed"
    if pending_regular_init > 0 or pending_sidecar > 0 or waiting > 0:
        return "Pending"
    if running > 0 and unknown == 0:
        return "Running"
    if running == 0 and stopped > 0 and unknown == 0:
        if pod_is_terminal:
            return "Succeeded" if stopped == succeeded else "Failed"
        if policy == "Always":
            return "Running"  # everything is restarting
        if stopped == succeeded:
            return "Succeeded"
        if policy == "Never":
            return "Failed"
        return "Running"  # OnFailure, restarting the failed ones
    return "Pending"


# --- conditions ---------------------------------------------------------------------------


def _cond(type_: str, ok: bool, reason: str | None = None, message: str | None = None) -> JSON:
    c: JSON = {"type": type_, "status": "True" if ok else "False"}
    if reason:
        c["reason"] = reason
    if message:
        c["message"] = message
    return c


def _go_list(names: Iterable[str]) -> str:
    """Go's %s of a []string: [a b c]."""
    return "[" + " ".join(names) + "]"


def ready_to_start_condition(sandbox_ready: bool) -> JSON:
    return _cond("PodReadyToStartContainers", sandbox_ready)


def initialized_condition(
    inits: Sequence[ContainerSpec],
    init_statuses: Sequence[Mapping[str, Any]],
    app_statuses: Sequence[Mapping[str, Any]],
) -> JSON:
    # Once any app container has run, the pod stays initialized (kubelet 1.28+).
    if not inits or any(
        "running" in (s.get("state") or {})
        or "terminated" in (s.get("state") or {})
        or _has_last_termination(s)
        for s in app_statuses
    ):
        return _cond("Initialized", True)
    by_name = {s["name"]: s for s in init_statuses}
    incomplete: list[str] = []
    for c in inits:
        s = by_name.get(c.name) or {}
        state = s.get("state") or {}
        if c.sidecar:
            if not s.get("started"):
                incomplete.append(c.name)
        elif state.get("terminated", {}).get("exitCode") != 0 or "terminated" not in state:
            incomplete.append(c.name)
    if not incomplete:
        return _cond("Initialized", True)
    return _cond(
        "Initialized",
        False,
        "ContainersNotInitialized",
        f"containers with incomplete status: {_go_list(incomplete)}",
    )


def readiness_gates(pod: Mapping[str, Any], prev_conds: Mapping[str, Any]) -> list[str]:
    """Messages for readiness gates whose condition is missing or not True."""
    out: list[str] = []
    for gate in (pod.get("spec") or {}).get("readinessGates") or []:
        t = str((gate or {}).get("conditionType", ""))
        c = prev_conds.get(t)
        if c is None:
            out.append(f'corresponding condition of pod readiness gate "{t}" does not exist.')
        elif c.get("status") != "True":
            out.append(
                f'the status of pod readiness gate "{t}" is not "True", but {c.get("status")}'
            )
    return out


def ready_condition(
    type_: str,
    inits: Sequence[ContainerSpec],
    init_statuses: Sequence[Mapping[str, Any]],
    app_statuses: Sequence[Mapping[str, Any]],
    phase: str,
    gate_messages: Sequence[str],
) -> JSON:
    """Ready / ContainersReady: every app container and sidecar ready (and, for Ready, every
    readiness gate True)."""
    if phase in TERMINAL:
        return _cond(type_, False, "PodCompleted" if phase == "Succeeded" else "PodFailed")
    sidecars = {c.name for c in inits if c.sidecar}
    unready = [s["name"] for s in init_statuses if s["name"] in sidecars and not s.get("ready")]
    unready += [s["name"] for s in app_statuses if not s.get("ready")]
    if unready:
        return _cond(
            type_,
            False,
            "ContainersNotReady",
            f"containers with unready status: {_go_list(unready)}",
        )
    if gate_messages:
        return _cond(type_, False, "ReadinessGatesNotReady", ", ".join(gate_messages))
    return _cond(type_, True)


def _stamp(cond: JSON, prev: Mapping[str, Any] | None, now: datetime) -> JSON:
    """Add probe and transition times; the transition time moves only with the status."""
    out: JSON = {"type": cond["type"], "status": cond["status"], "lastProbeTime": None}
    if prev is not None and prev.get("status") == cond["status"] and prev.get("lastTransitionTime"):
        out["lastTransitionTime"] = prev["lastTransitionTime"]
    else:
        out["lastTransitionTime"] = rfc3339(now)
    for key in ("reason", "message"):
        if key in cond:
            out[key] = cond[key]
    return out


# --- QoS ----------------------------------------------------------------------------------


def qos_class(pod: Mapping[str, Any]) -> str:
    """Guaranteed: every container has cpu and memory limits equal to requests; BestEffort: no
    container asks for anything; otherwise Burstable."""
    inits, apps = containers(pod)
    any_set = False
    guaranteed = True
    for c in [*inits, *apps]:
        res = c.raw.get("resources") or {}
        req = res.get("requests") or {}
        lim = res.get("limits") or {}
        if req or lim:
            any_set = True
        for r in ("cpu", "memory"):
            want = req.get(r, lim.get(r))  # a limit alone defaults the request to it
            if lim.get(r) is None or str(want) != str(lim.get(r)):
                guaranteed = False
    if not any_set:
        return "BestEffort"
    return "Guaranteed" if guaranteed else "Burstable"
