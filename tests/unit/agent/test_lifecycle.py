"""lifecycle.plan: what the kubelet would do next, step by step from a fixed start time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from podnet.agent.lifecycle import (
    BackOff,
    ExecHook,
    HttpHook,
    Kill,
    KillReason,
    Plan,
    RuntimeState,
    SleepHook,
    Start,
    Waiting,
    go_duration,
    next_backoff,
    plan,
)
from podnet.agent.probes import ContainerProbes, Result

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def make_pod(
    containers: list[dict[str, Any]] | None = None,
    init: list[dict[str, Any]] | None = None,
    policy: str | None = None,
    **extra_spec: Any,
) -> dict[str, Any]:
    spec: dict[str, Any] = {"containers": containers or [{"name": "app", "image": "busybox"}]}
    if init:
        spec["initContainers"] = init
    if policy:
        spec["restartPolicy"] = policy
    spec.update(extra_spec)
    return {
        "metadata": {"name": "web", "namespace": "default", "uid": "u1"},
        "spec": spec,
        "status": {"phase": "Pending"},
    }


def running(since: float = 0, restarts: int = 0, **kw: Any) -> RuntimeState:
    return RuntimeState("running", pid=100, started_at=at(since), restart_count=restarts, **kw)


def exited(code: int, start: float, end: float, restarts: int = 0) -> RuntimeState:
    return RuntimeState(
        "exited",
        started_at=at(start),
        finished_at=at(end),
        exit_code=code,
        restart_count=restarts,
    )


def starts(p: Plan) -> list[str]:
    return [a.container for a in p.actions if isinstance(a, Start)]


def kills(p: Plan) -> list[tuple[str, int, str]]:
    return [(a.container, a.grace, a.reason) for a in p.actions if isinstance(a, Kill)]


# --- plain containers and restart policy ---------------------------------------------------


def test_new_pod_starts_all_app_containers_together() -> None:
    pod = make_pod([{"name": "a"}, {"name": "b"}])
    p = plan(pod, {}, {}, T0)
    assert p.actions == [Start("a", False), Start("b", False)]
    assert p.next_wakeup is None and not p.ready_to_delete


def test_running_and_creating_containers_are_left_alone() -> None:
    pod = make_pod([{"name": "a"}, {"name": "b"}])
    runtime = {"a": running(), "b": RuntimeState("waiting", reason="ContainerCreating")}
    assert plan(pod, runtime, {}, at(5)).actions == []


@pytest.mark.parametrize(
    ("policy", "code", "restarts"),
    [
        ("Always", 0, True),
        ("Always", 1, True),
        ("OnFailure", 0, False),
        ("OnFailure", 2, True),
        ("Never", 0, False),
        ("Never", 1, False),
    ],
)
def test_restart_policy(policy: str, code: int, restarts: bool) -> None:
    pod = make_pod(policy=policy)
    p = plan(pod, {"app": exited(code, 0, 5)}, {}, at(5))
    assert starts(p) == (["app"] if restarts else [])


def test_unknown_state_is_left_alone() -> None:
    assert plan(make_pod(), {"app": RuntimeState("unknown")}, {}, T0).actions == []


# --- CrashLoopBackOff ---------------------------------------------------------------------


def crash_loop(runs: list[tuple[float, float]]) -> list[tuple[float, str]]:
    """Drive a container that exits 1 after each run (start, end) and report, for each exit,
    (when the plan restarts it, the back-off message it showed before that, if any)."""
    pod = make_pod()
    backoff: dict[str, BackOff] = {}
    out: list[tuple[float, str]] = []
    for n, (start, end) in enumerate(runs):
        state = exited(1, start, end, restarts=n)
        t, message = end, ""
        while True:
            p = plan(pod, {"app": state}, {}, at(t), backoff)
            if starts(p):
                backoff = p.backoff
                out.append((t - end, message))
                break
            message = p.waiting["app"].message
            assert p.next_wakeup is not None
            t = (p.next_wakeup - T0).total_seconds()
    return out


def test_crash_loop_back_off_doubles_to_five_minutes() -> None:
    # Each run lasts 1s and the next starts as soon as allowed.
    runs: list[tuple[float, float]] = []
    t = 0.0
    delays = [0, 10, 20, 40, 80, 160, 300, 300]
    for d in delays:
        runs.append((t, t + 1))
        t += 1 + d
    got = crash_loop(runs)
    assert [d for d, _ in got] == delays
    assert got[1][1] == "back-off 10s restarting failed container=app pod=web_default(u1)"
    assert got[5][1] == "back-off 2m40s restarting failed container=app pod=web_default(u1)"
    assert got[6][1] == "back-off 5m0s restarting failed container=app pod=web_default(u1)"


def test_back_off_resets_after_ten_minutes_of_running() -> None:
    # Crash fast three times (0s, 10s, 20s delays), then run for 11 minutes: back to 10s.
    got = crash_loop([(0, 1), (1, 2), (12, 13), (33, 33 + 660), (703, 704)])
    assert [d for d, _ in got] == [0, 10, 20, 0, 10]


def test_crash_loop_waiting_state_and_wakeup() -> None:
    pod = make_pod()
    backoff = {"app": BackOff(timedelta(seconds=20), at(10))}
    p = plan(pod, {"app": exited(1, 10, 12, restarts=2)}, {}, at(15), backoff)
    assert p.actions == []
    assert p.waiting == {
        "app": Waiting(
            "CrashLoopBackOff", "back-off 20s restarting failed container=app pod=web_default(u1)"
        )
    }
    assert p.next_wakeup == at(32)
    assert p.backoff == backoff  # unchanged while waiting


@pytest.mark.parametrize(
    ("entry", "event", "delay"),
    [
        (None, 5, 10),
        (BackOff(timedelta(seconds=10), at(0)), 5, 20),
        (BackOff(timedelta(seconds=160), at(0)), 5, 300),
        (BackOff(timedelta(seconds=300), at(0)), 5, 300),
        (BackOff(timedelta(seconds=300), at(0)), 601, 10),  # ran > 2 * cap: reset
    ],
)
def test_next_backoff(entry: BackOff | None, event: float, delay: int) -> None:
    assert next_backoff(entry, at(event), at(event)) == BackOff(timedelta(seconds=delay), at(event))


@pytest.mark.parametrize(
    ("seconds", "text"), [(10, "10s"), (80, "1m20s"), (300, "5m0s"), (3600, "1h0m0s")]
)
def test_go_duration(seconds: int, text: str) -> None:
    assert go_duration(timedelta(seconds=seconds)) == text


def test_start_error_is_retried_with_back_off_keeping_its_reason() -> None:
    pod = make_pod(policy="Never")
    state = RuntimeState(
        "waiting",
        finished_at=at(1),
        reason="CreateContainerConfigError",
        start_error='configmap "cfg" not found',
    )
    first = plan(pod, {"app": state}, {}, at(1))
    assert starts(first) == ["app"]
    second = plan(pod, {"app": state}, {}, at(3), first.backoff)
    assert second.actions == []
    assert second.waiting["app"] == Waiting(
        "CreateContainerConfigError", 'configmap "cfg" not found'
    )
    assert second.next_wakeup == at(11)


# --- init containers ----------------------------------------------------------------------

INIT = [{"name": "i1"}, {"name": "i2"}]


@pytest.mark.parametrize(
    ("runtime", "expected"),
    [
        ({}, ["i1"]),
        ({"i1": running()}, []),
        ({"i1": exited(0, 0, 1)}, ["i2"]),
        ({"i1": exited(0, 0, 1), "i2": running(1)}, []),
        ({"i1": exited(0, 0, 1), "i2": exited(0, 1, 2)}, ["app"]),
        ({"i1": exited(1, 0, 1)}, ["i1"]),  # restarted (Always), first time at once
    ],
)
def test_init_containers_run_one_at_a_time(
    runtime: dict[str, RuntimeState], expected: list[str]
) -> None:
    p = plan(make_pod(init=INIT), runtime, {}, at(2))
    assert starts(p) == expected
    assert all(a.is_init == (a.container != "app") for a in p.actions if isinstance(a, Start))


def test_failed_init_container_with_never_starts_nothing() -> None:
    p = plan(make_pod(init=INIT, policy="Never"), {"i1": exited(1, 0, 1)}, {}, at(2))
    assert p.actions == []


def test_init_containers_never_rerun_once_app_containers_ran() -> None:
    runtime = {"app": exited(1, 5, 6)}  # init statuses lost (e.g. after an agent restart)
    assert starts(plan(make_pod(init=INIT), runtime, {}, at(6))) == ["app"]


def test_failed_init_container_backs_off() -> None:
    pod = make_pod(init=INIT, policy="OnFailure")
    first = plan(pod, {"i1": exited(1, 0, 1)}, {}, at(1))
    assert starts(first) == ["i1"]
    second = plan(pod, {"i1": exited(1, 1, 2, restarts=1)}, {}, at(3), first.backoff)
    assert second.actions == [] and second.waiting["i1"].reason == "CrashLoopBackOff"


# --- sidecars -----------------------------------------------------------------------------

SIDECAR = {"name": "proxy", "restartPolicy": "Always"}


def test_sidecar_starts_then_next_init_and_apps_follow() -> None:
    pod = make_pod(init=[SIDECAR, {"name": "i1"}])
    assert starts(plan(pod, {}, {}, T0)) == ["proxy"]
    assert starts(plan(pod, {"proxy": running()}, {}, at(1))) == ["i1"]
    done = {"proxy": running(), "i1": exited(0, 1, 2)}
    assert starts(plan(pod, done, {}, at(2))) == ["app"]


def test_sidecar_with_startup_probe_holds_until_started() -> None:
    sidecar = {**SIDECAR, "startupProbe": {"exec": {"command": ["true"]}}}
    pod = make_pod(init=[sidecar])
    assert plan(pod, {"proxy": running()}, {}, at(1)).actions == []
    ok = {"proxy": ContainerProbes(startup=Result.SUCCESS)}
    assert starts(plan(pod, {"proxy": running()}, ok, at(1))) == ["app"]


def test_sidecar_restarts_even_with_never_and_is_stopped_when_apps_finish() -> None:
    pod = make_pod(init=[SIDECAR], policy="Never")
    runtime = {"proxy": exited(1, 0, 5), "app": running(1)}
    assert starts(plan(pod, runtime, {}, at(5))) == ["proxy"]
    finished = {"proxy": running(6), "app": exited(0, 1, 9)}
    p = plan(pod, finished, {}, at(9))
    assert kills(p) == [("proxy", 30, KillReason.SIDECAR)]
    assert starts(p) == []
    # ...and once stopped it stays stopped.
    stopped = {"proxy": exited(137, 6, 10), "app": exited(0, 1, 9)}
    assert plan(pod, stopped, {}, at(10)).actions == []


# --- probes -------------------------------------------------------------------------------

LIVE = {"name": "app", "livenessProbe": {"httpGet": {"port": 80}}}


@pytest.mark.parametrize(
    ("policy", "message"),
    [
        ("Always", "Container app failed liveness probe, will be restarted"),
        ("OnFailure", "Container app failed liveness probe, will be restarted"),
        ("Never", "Container app failed liveness probe"),
    ],
)
def test_liveness_failure_kills(policy: str, message: str) -> None:
    pod = make_pod([LIVE], policy=policy, terminationGracePeriodSeconds=5)
    probes = {"app": ContainerProbes(liveness=Result.FAILURE)}
    p = plan(pod, {"app": running()}, probes, at(40))
    assert p.actions == [Kill("app", 5, KillReason.LIVENESS, message)]


def test_liveness_kill_is_not_repeated_while_stopping() -> None:
    probes = {"app": ContainerProbes(liveness=Result.FAILURE)}
    assert plan(make_pod([LIVE]), {"app": running(stopping=True)}, probes, at(40)).actions == []


def test_probe_grace_period_overrides_the_pods() -> None:
    c = {
        "name": "app",
        "livenessProbe": {"exec": {"command": ["x"]}, "terminationGracePeriodSeconds": 3},
    }
    probes = {"app": ContainerProbes(liveness=Result.FAILURE)}
    assert kills(plan(make_pod([c]), {"app": running()}, probes, at(40))) == [
        ("app", 3, KillReason.LIVENESS)
    ]


def test_startup_probe_gates_liveness_and_its_failure_kills() -> None:
    c = {**LIVE, "startupProbe": {"tcpSocket": {"port": 80}}}
    pod = make_pod([c])
    # Not started yet: a liveness failure does not count.
    not_started = {"app": ContainerProbes(liveness=Result.FAILURE)}
    assert plan(pod, {"app": running()}, not_started, at(5)).actions == []
    failed = {"app": ContainerProbes(startup=Result.FAILURE, startup_message="refused")}
    assert plan(pod, {"app": running()}, failed, at(30)).actions == [
        Kill(
            "app",
            30,
            KillReason.STARTUP,
            "Container app failed startup probe, will be restarted",
        )
    ]


def test_probe_results_for_undeclared_probes_are_ignored() -> None:
    probes = {"app": ContainerProbes(liveness=Result.FAILURE, startup=Result.FAILURE)}
    assert plan(make_pod(), {"app": running()}, probes, at(5)).actions == []


# --- deletion and terminal pods -----------------------------------------------------------


def deleting(pod: dict[str, Any], grace: int = 30, at_s: float = 0) -> dict[str, Any]:
    pod["metadata"]["deletionTimestamp"] = (at(at_s) + timedelta(seconds=grace)).strftime(
        "%Y-%m-%dT%H:%M:%SZ"
    )
    pod["metadata"]["deletionGracePeriodSeconds"] = grace
    return pod


def test_deletion_runs_pre_stop_hooks_then_kills() -> None:
    pod = deleting(
        make_pod(
            [
                {"name": "a", "lifecycle": {"preStop": {"exec": {"command": ["sh", "-c", "x"]}}}},
                {
                    "name": "b",
                    "ports": [{"name": "http", "containerPort": 8080}],
                    "lifecycle": {"preStop": {"httpGet": {"port": "http", "path": "/quit"}}},
                },
                {"name": "c", "lifecycle": {"preStop": {"sleep": {"seconds": 3}}}},
                {"name": "d"},
            ]
        ),
        grace=10,
    )
    runtime = {n: running() for n in "abcd"}
    p = plan(pod, runtime, {}, at(1))
    assert p.actions == [
        ExecHook("a", ("sh", "-c", "x")),
        Kill("a", 10, KillReason.DELETED, "Stopping container a"),
        HttpHook("b", 8080, "/quit"),
        Kill("b", 10, KillReason.DELETED, "Stopping container b"),
        SleepHook("c", 3),
        Kill("c", 10, KillReason.DELETED, "Stopping container c"),
        Kill("d", 10, KillReason.DELETED, "Stopping container d"),
    ]
    assert not p.ready_to_delete


def test_deletion_uses_spec_grace_when_no_deletion_grace() -> None:
    pod = make_pod(terminationGracePeriodSeconds=7)
    pod["metadata"]["deletionTimestamp"] = "2026-01-01T12:00:07Z"
    assert kills(plan(pod, {"app": running()}, {}, T0)) == [("app", 7, KillReason.DELETED)]


def test_deletion_waits_for_stopping_containers_then_is_ready() -> None:
    pod = deleting(make_pod())
    assert plan(pod, {"app": running(stopping=True)}, {}, at(1)).actions == []
    done = plan(pod, {"app": exited(143, 0, 2)}, {}, at(2))
    assert done.actions == [] and done.ready_to_delete
    assert plan(deleting(make_pod()), {}, {}, T0).ready_to_delete  # never started


def test_deletion_stops_sidecars_after_app_containers_with_the_grace_left() -> None:
    pod = deleting(make_pod(init=[SIDECAR]), grace=30)
    both = {"proxy": running(), "app": running()}
    assert kills(plan(pod, both, {}, at(1))) == [("app", 30, KillReason.DELETED)]
    only_sidecar = {"proxy": running(), "app": exited(143, 0, 11)}
    assert kills(plan(pod, only_sidecar, {}, at(11))) == [("proxy", 19, KillReason.DELETED)]
    late = plan(pod, only_sidecar, {}, at(40))
    assert kills(late) == [("proxy", 2, KillReason.DELETED)]


def test_deletion_does_not_restart_crashed_containers() -> None:
    pod = deleting(make_pod())
    p = plan(pod, {"app": exited(1, 0, 1)}, {}, at(1))
    assert p.actions == [] and p.ready_to_delete


@pytest.mark.parametrize("phase", ["Succeeded", "Failed"])
def test_terminal_pod_is_never_restarted(phase: str) -> None:
    pod = make_pod([{"name": "a"}, {"name": "b"}])
    pod["status"]["phase"] = phase
    p = plan(pod, {"a": exited(1, 0, 1), "b": running()}, {}, at(2))
    assert p.actions == [Kill("b", 30, KillReason.POD_TERMINAL, "Stopping container b")]


def test_post_start_hook_rides_on_start() -> None:
    c = {"name": "app", "lifecycle": {"postStart": {"exec": {"command": ["touch", "/ok"]}}}}
    assert plan(make_pod([c]), {}, {}, T0).actions == [
        Start("app", False, ExecHook("app", ("touch", "/ok")))
    ]


def test_app_start_error_is_retried_and_sidecar_start_error_too() -> None:
    err = RuntimeState("waiting", finished_at=at(1), start_error="boom")
    assert starts(plan(make_pod(), {"app": err}, {}, at(1))) == ["app"]
    pod = make_pod(init=[SIDECAR])
    assert starts(plan(pod, {"proxy": err}, {}, at(1))) == ["proxy"]


def test_http_hook_headers_host_and_scheme() -> None:
    hook = {
        "httpGet": {
            "port": 80,
            "host": "10.0.0.1",
            "scheme": "http",
            "httpHeaders": [{"name": "X", "value": "1"}, "junk"],
        }
    }
    pod = deleting(make_pod([{"name": "app", "lifecycle": {"preStop": hook}}]))
    assert plan(pod, {"app": running()}, {}, at(1)).actions[0] == HttpHook(
        "app", 80, "/", "10.0.0.1", "HTTP", (("X", "1"),)
    )


@pytest.mark.parametrize("lifecycle", [{"preStop": "x"}, {"preStop": {"tcpSocket": {}}}, "x"])
def test_malformed_hooks_are_ignored(lifecycle: Any) -> None:
    pod = deleting(make_pod([{"name": "app", "lifecycle": lifecycle}]))
    assert plan(pod, {"app": running()}, {}, at(1)).actions == [
        Kill("app", 30, KillReason.DELETED, "Stopping container app")
    ]


def test_init_container_start_error_is_retried() -> None:
    err = RuntimeState("waiting", finished_at=at(1), start_error="boom")
    assert starts(plan(make_pod(init=INIT), {"i1": err}, {}, at(1))) == ["i1"]
