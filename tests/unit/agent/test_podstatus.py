"""podstatus.build: the status the kubelet would write, from observed container states."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from podnet.agent.lifecycle import RuntimeState, Waiting
from podnet.agent.podstatus import build, get_phase, qos_class
from podnet.agent.probes import ContainerProbes, Result

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
S0 = "2026-01-01T12:00:00Z"


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def ts(seconds: float) -> str:
    return at(seconds).strftime("%Y-%m-%dT%H:%M:%SZ")


def make_pod(
    containers: list[dict[str, Any]] | None = None,
    init: list[dict[str, Any]] | None = None,
    policy: str | None = None,
) -> dict[str, Any]:
    spec: dict[str, Any] = {"containers": containers or [{"name": "app", "image": "busybox"}]}
    if init:
        spec["initContainers"] = init
    if policy:
        spec["restartPolicy"] = policy
    return {"metadata": {"name": "web", "namespace": "default", "uid": "u1"}, "spec": spec}


def running(since: float = 0, restarts: int = 0, **kw: Any) -> RuntimeState:
    return RuntimeState("running", pid=1, started_at=at(since), restart_count=restarts, **kw)


def exited(
    code: int, start: float = 0, end: float = 1, restarts: int = 0, **kw: Any
) -> RuntimeState:
    return RuntimeState(
        "exited",
        started_at=at(start),
        finished_at=at(end),
        exit_code=code,
        restart_count=restarts,
        **kw,
    )


def conds(status: dict[str, Any]) -> dict[str, str]:
    return {c["type"]: c["status"] for c in status["conditions"]}


def cond(status: dict[str, Any], type_: str) -> dict[str, Any]:
    return next(c for c in status["conditions"] if c["type"] == type_)


SCHEDULED = {
    "type": "PodScheduled",
    "status": "True",
    "lastProbeTime": None,
    "lastTransitionTime": S0,
}


def test_running_pod_full_status() -> None:
    prev = {"phase": "Pending", "conditions": [SCHEDULED], "qosClass": "BestEffort"}
    status = build(make_pod(), {"app": running(2)}, {}, "10.244.0.5", "10.250.0.2", at(3), prev)
    assert status == {
        "phase": "Running",
        "conditions": [
            {"type": t, "status": "True", "lastProbeTime": None, "lastTransitionTime": ts(3)}
            for t in ("PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady")
        ]
        + [SCHEDULED],
        "hostIP": "10.250.0.2",
        "hostIPs": [{"ip": "10.250.0.2"}],
        "podIP": "10.244.0.5",
        "podIPs": [{"ip": "10.244.0.5"}],
        "startTime": ts(3),
        "containerStatuses": [
            {
                "name": "app",
                "state": {"running": {"startedAt": ts(2)}},
                "lastState": {},
                "ready": True,
                "restartCount": 0,
                "image": "busybox",
                "imageID": "",
                "containerID": "podnet://u1/app/0",
                "started": True,
            }
        ],
        "qosClass": "BestEffort",
    }


def test_new_pod_is_pending_with_container_creating() -> None:
    status = build(make_pod(), {}, {}, None, "10.250.0.2", T0, {})
    assert status["phase"] == "Pending"
    assert status["containerStatuses"][0]["state"] == {"waiting": {"reason": "ContainerCreating"}}
    assert "containerID" not in status["containerStatuses"][0]
    assert "podIP" not in status
    assert conds(status) == {
        "PodReadyToStartContainers": "False",
        "Initialized": "True",
        "Ready": "False",
        "ContainersReady": "False",
    }
    assert cond(status, "Ready")["reason"] == "ContainersNotReady"
    assert cond(status, "Ready")["message"] == "containers with unready status: [app]"


def test_transition_time_moves_only_with_status() -> None:
    pod = make_pod()
    first = build(pod, {}, {}, "10.244.0.5", "h", T0, {})
    second = build(pod, {"app": running(5)}, {}, "10.244.0.5", "h", at(5), first)
    assert cond(second, "PodReadyToStartContainers")["lastTransitionTime"] == S0
    assert cond(second, "Ready")["lastTransitionTime"] == ts(5)
    assert second["startTime"] == S0  # first time seen
    third = build(pod, {"app": running(5)}, {}, "10.244.0.5", "h", at(9), second)
    assert third["conditions"] == second["conditions"]


def test_crash_loop_back_off_status() -> None:
    state = exited(1, 10, 12, restarts=2, last_termination=exited(1, 0, 1, restarts=1))
    msg = "back-off 20s restarting failed container=app pod=web_default(u1)"
    status = build(
        make_pod(),
        {"app": state},
        {},
        "ip",
        "h",
        at(15),
        {},
        waiting={"app": Waiting("CrashLoopBackOff", msg)},
    )
    cs = status["containerStatuses"][0]
    assert cs["state"] == {"waiting": {"reason": "CrashLoopBackOff", "message": msg}}
    assert cs["lastState"] == {
        "terminated": {
            "exitCode": 1,
            "reason": "Error",
            "startedAt": ts(10),
            "finishedAt": ts(12),
            "containerID": "podnet://u1/app/2",
        }
    }
    assert cs["restartCount"] == 2 and cs["ready"] is False and cs["started"] is False
    assert status["phase"] == "Running"  # Always: restarting


def test_restarted_container_shows_last_state() -> None:
    state = running(20, restarts=1, last_termination=exited(137, 0, 19, reason="OOMKilled"))
    cs = build(make_pod(), {"app": state}, {}, "ip", "h", at(21), {})["containerStatuses"][0]
    assert cs["containerID"] == "podnet://u1/app/1"
    assert cs["lastState"]["terminated"]["reason"] == "OOMKilled"
    assert cs["lastState"]["terminated"]["exitCode"] == 137


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        (exited(0), {"exitCode": 0, "reason": "Completed"}),
        (exited(2), {"exitCode": 2, "reason": "Error"}),
        (exited(137, reason="OOMKilled"), {"exitCode": 137, "reason": "OOMKilled"}),
        (
            exited(128, reason="ContainerCannotRun", message="exec: not found"),
            {"exitCode": 128, "reason": "ContainerCannotRun", "message": "exec: not found"},
        ),
    ],
)
def test_terminated_reasons(state: RuntimeState, expected: dict[str, Any]) -> None:
    cs = build(make_pod(policy="Never"), {"app": state}, {}, "ip", "h", at(2), {})
    term = cs["containerStatuses"][0]["state"]["terminated"]
    assert {k: term[k] for k in expected} == expected
    assert term["containerID"] == "podnet://u1/app/0"


@pytest.mark.parametrize(
    ("state", "waiting"),
    [
        (RuntimeState("waiting"), {"reason": "ContainerCreating"}),
        (
            RuntimeState("waiting", reason="CreateContainerConfigError", start_error="no cm"),
            {"reason": "CreateContainerConfigError", "message": "no cm"},
        ),
        (
            RuntimeState("waiting", start_error="launcher failed"),
            {"reason": "RunContainerError", "message": "launcher failed"},
        ),
        (
            RuntimeState("waiting", reason="Unrunnable", message="podnet cannot run nginx:9"),
            {"reason": "Unrunnable", "message": "podnet cannot run nginx:9"},
        ),
    ],
)
def test_waiting_reasons(state: RuntimeState, waiting: dict[str, str]) -> None:
    status = build(make_pod(), {"app": state}, {}, "ip", "h", T0, {})
    assert status["containerStatuses"][0]["state"] == {"waiting": waiting}
    assert status["phase"] == "Pending"


def test_readiness_and_startup_probes() -> None:
    c = {
        "name": "app",
        "image": "x",
        "readinessProbe": {"httpGet": {"port": 80}},
        "startupProbe": {"tcpSocket": {"port": 80}},
    }
    pod = make_pod([c])
    rt = {"app": running()}

    def st(p: ContainerProbes) -> tuple[bool, bool]:
        cs = build(pod, rt, {"app": p}, "ip", "h", at(1), {})["containerStatuses"][0]
        return cs["started"], cs["ready"]

    assert st(ContainerProbes()) == (False, False)
    assert st(ContainerProbes(startup=Result.SUCCESS)) == (True, False)
    assert st(ContainerProbes(startup=Result.SUCCESS, readiness=Result.SUCCESS)) == (True, True)
    assert st(ContainerProbes(readiness=Result.SUCCESS)) == (False, False)  # not started yet


def test_init_containers_status_and_conditions() -> None:
    pod = make_pod(init=[{"name": "i1", "image": "busybox"}, {"name": "i2", "image": "busybox"}])
    status = build(pod, {"i1": running()}, {}, "ip", "h", at(1), {})
    assert status["phase"] == "Pending"
    assert [s["name"] for s in status["initContainerStatuses"]] == ["i1", "i2"]
    assert status["initContainerStatuses"][1]["state"] == {"waiting": {"reason": "PodInitializing"}}
    assert status["containerStatuses"][0]["state"] == {"waiting": {"reason": "PodInitializing"}}
    init = cond(status, "Initialized")
    assert init["status"] == "False"
    assert init["reason"] == "ContainersNotInitialized"
    assert init["message"] == "containers with incomplete status: [i1 i2]"
    done = {"i1": exited(0), "i2": exited(0, 1, 2)}
    assert conds(build(pod, done, {}, "ip", "h", at(2), {}))["Initialized"] == "True"


def test_failed_init_container_with_never_fails_the_pod() -> None:
    pod = make_pod(init=[{"name": "i1"}], policy="Never")
    status = build(pod, {"i1": exited(1)}, {}, "ip", "h", at(2), {})
    assert status["phase"] == "Failed"
    assert cond(status, "Ready")["reason"] == "PodFailed"


@pytest.mark.parametrize(
    ("policy", "codes", "phase"),
    [
        ("Never", [0, 0], "Succeeded"),
        ("Never", [0, 1], "Failed"),
        ("OnFailure", [0, 0], "Succeeded"),
        ("OnFailure", [0, 1], "Running"),
        ("Always", [0, 0], "Running"),
    ],
)
def test_phase_when_all_containers_exited(policy: str, codes: list[int], phase: str) -> None:
    pod = make_pod([{"name": "a"}, {"name": "b"}], policy=policy)
    rt = {"a": exited(codes[0]), "b": exited(codes[1])}
    status = build(pod, rt, {}, "ip", "h", at(2), {})
    assert status["phase"] == phase
    if phase == "Succeeded":
        assert cond(status, "Ready")["reason"] == "PodCompleted"


def test_one_running_one_done_is_running() -> None:
    pod = make_pod([{"name": "a"}, {"name": "b"}], policy="Never")
    status = build(pod, {"a": exited(0), "b": running()}, {}, "ip", "h", at(2), {})
    assert status["phase"] == "Running"
    assert cond(status, "Ready")["message"] == "containers with unready status: [a]"


def test_terminal_phase_is_kept() -> None:
    prev = {"phase": "Succeeded", "conditions": []}
    status = build(make_pod(policy="Never"), {}, {}, None, "h", at(9), prev)
    assert status["phase"] == "Succeeded"


def test_deleted_pod_with_everything_stopped_is_terminal() -> None:
    pod = make_pod()
    pod["metadata"]["deletionTimestamp"] = S0
    status = build(pod, {"app": exited(143)}, {}, "ip", "h", at(2), {})
    assert status["phase"] == "Failed"


def test_sidecar_phase_and_readiness() -> None:
    pod = make_pod(init=[{"name": "proxy", "restartPolicy": "Always"}], policy="Never")
    status = build(pod, {"proxy": running(), "app": running(1)}, {}, "ip", "h", at(2), {})
    assert status["phase"] == "Running"
    assert conds(status)["Ready"] == "True"
    done = {"proxy": exited(137, 0, 5), "app": exited(0, 1, 4)}
    assert build(pod, done, {}, "ip", "h", at(5), {})["phase"] == "Succeeded"
    unready = build(pod, {"proxy": exited(1), "app": running()}, {}, "ip", "h", at(2), {})
    assert cond(unready, "ContainersReady")["message"] == "containers with unready status: [proxy]"


def test_readiness_gates() -> None:
    pod = make_pod()
    pod["spec"]["readinessGates"] = [{"conditionType": "example.com/lb"}]
    status = build(pod, {"app": running()}, {}, "ip", "h", at(1), {})
    assert conds(status)["ContainersReady"] == "True"
    ready = cond(status, "Ready")
    assert ready["reason"] == "ReadinessGatesNotReady"
    assert (
        ready["message"]
        == 'corresponding condition of pod readiness gate "example.com/lb" does not exist.'
    )
    gate = {"type": "example.com/lb", "status": "True"}
    status = build(pod, {"app": running()}, {}, "ip", "h", at(2), {"conditions": [gate]})
    assert conds(status)["Ready"] == "True"
    assert gate in status["conditions"]


def test_get_phase_unknown_container_is_pending() -> None:
    assert get_phase(make_pod(), [], []) == "Pending"


@pytest.mark.parametrize(
    ("resources", "qos"),
    [
        ({}, "BestEffort"),
        ({"requests": {"cpu": "100m"}}, "Burstable"),
        ({"limits": {"cpu": "1", "memory": "1Gi"}}, "Guaranteed"),
        (
            {"requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"cpu": "1", "memory": "1Gi"}},
            "Guaranteed",
        ),
        ({"requests": {"cpu": "1"}, "limits": {"cpu": "2", "memory": "1Gi"}}, "Burstable"),
    ],
)
def test_qos_class(resources: dict[str, Any], qos: str) -> None:
    assert qos_class(make_pod([{"name": "a", "resources": resources}])) == qos


def test_init_container_in_crash_loop_keeps_pod_pending() -> None:
    pod = make_pod(init=[{"name": "i1"}], policy="OnFailure")
    held = {"i1": Waiting("CrashLoopBackOff", "back-off 10s ...")}
    status = build(pod, {"i1": exited(1, 0, 1, restarts=1)}, {}, "ip", "h", at(2), {}, held)
    assert status["phase"] == "Pending"
    assert status["initContainerStatuses"][0]["state"]["waiting"]["reason"] == "CrashLoopBackOff"
    assert conds(status)["Initialized"] == "False"


def test_held_start_error_and_recreating_container_show_last_state() -> None:
    held = {"app": Waiting("CreateContainerConfigError", 'secret "s" not found')}
    state = RuntimeState("waiting", restart_count=1, last_termination=exited(1))
    status = build(make_pod(), {"app": state}, {}, "ip", "h", at(2), {}, held)
    cs = status["containerStatuses"][0]
    assert cs["state"] == {
        "waiting": {"reason": "CreateContainerConfigError", "message": 'secret "s" not found'}
    }
    assert cs["lastState"]["terminated"]["exitCode"] == 1
    assert status["phase"] == "Running"  # Always, with a previous run: restarting
    done = exited(0, 5, 6, restarts=1, last_termination=exited(1))
    cs = build(make_pod(policy="OnFailure"), {"app": done}, {}, "ip", "h", at(7), {})
    assert cs["containerStatuses"][0]["lastState"]["terminated"]["exitCode"] == 1
    assert cs["phase"] == "Succeeded"


@pytest.mark.parametrize(
    ("sidecar_state", "phase"),
    [
        (None, "Pending"),
        (RuntimeState("waiting"), "Pending"),
        (running(), "Pending"),  # running but its startup probe has not passed
    ],
)
def test_sidecar_not_started_keeps_pod_pending(
    sidecar_state: RuntimeState | None, phase: str
) -> None:
    sidecar = {
        "name": "proxy",
        "restartPolicy": "Always",
        "startupProbe": {"exec": {"command": ["x"]}},
    }
    pod = make_pod(init=[sidecar])
    rt = {"proxy": sidecar_state} if sidecar_state else {}
    status = build(pod, rt, {}, "ip", "h", at(1), {})
    assert status["phase"] == phase
    assert cond(status, "Initialized")["message"] == "containers with incomplete status: [proxy]"


def test_get_phase_counts_sidecar_without_status_as_unknown() -> None:
    pod = make_pod(init=[{"name": "proxy", "restartPolicy": "Always"}])
    app = [{"name": "app", "state": {"running": {}}}]
    assert get_phase(pod, [], app) == "Pending"


def test_init_restart_after_failure_with_never_is_failed() -> None:
    pod = make_pod(init=[{"name": "i1"}], policy="Never")
    init = [{"name": "i1", "state": {"waiting": {}}, "lastState": {"terminated": {"exitCode": 2}}}]
    assert get_phase(pod, init, []) == "Failed"
    init = [{"name": "i1", "state": {}}]
    assert get_phase(pod, init, [{"name": "app", "state": {}}]) == "Pending"


def test_pod_reason_kept_while_phase_unchanged() -> None:
    prev = {"phase": "Running", "reason": "SomeReason", "message": "m", "conditions": []}
    status = build(make_pod(), {"app": running()}, {}, "ip", "h", at(1), prev)
    assert (status["reason"], status["message"]) == ("SomeReason", "m")
    pending = build(make_pod(), {}, {}, "ip", "h", at(1), prev)
    assert "reason" not in pending


def test_readiness_gate_false() -> None:
    pod = make_pod()
    pod["spec"]["readinessGates"] = [{"conditionType": "g"}]
    prev = {"conditions": [{"type": "g", "status": "False"}]}
    status = build(pod, {"app": running()}, {}, "ip", "h", at(1), prev)
    assert cond(status, "Ready")["message"] == (
        'the status of pod readiness gate "g" is not "True", but False'
    )
