"""What to do next with a pod's containers, decided the way the kubelet decides it
(`computePodActions`): pure — the agent passes the observed runtime state, the probe results,
the per-container back-off memory and the time, and gets back actions and the updated memory.

Rules followed (Kubernetes 1.32):
- init containers run one at a time, in order; each must exit 0 before the next starts; a
  failed init container is restarted with back-off unless restartPolicy is Never, in which case
  the pod fails; init containers with restartPolicy Always (sidecars) keep running, and the
  next init container starts once the sidecar has started (its startup probe succeeded);
- app containers start together once initialization is done; exited containers restart per
  restartPolicy (Always; OnFailure: only non-zero exits; Never), sidecars always;
- CrashLoopBackOff is the kubelet's `flowcontrol.Backoff`: a container that exits is restarted
  at once the first time, then after 10s, 20s, 40s, … capped at 300s; the delay resets when the
  container ran for more than 10 minutes (twice the cap) before exiting;
- a failed startup or liveness probe kills the container (grace from the probe or the pod),
  which is then restarted per policy, with back-off;
- deletion: preStop hook then kill for every running container with the pod's grace period
  (sidecars after the app containers); once nothing runs, the pod is ready to delete;
- a pod whose phase is Succeeded or Failed is never restarted; what still runs is stopped.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from .probes import ContainerProbes, ProbeKind, ProbeSpec, Result, resolve_port

INITIAL_BACKOFF = timedelta(seconds=10)
MAX_BACKOFF = timedelta(seconds=300)
DEFAULT_GRACE_SECONDS = 30
# The kubelet's minimum grace after a preStop hook used up part of the period.
MIN_GRACE_SECONDS = 2

StateName = Literal["running", "exited", "waiting", "unknown"]


@dataclass(frozen=True, slots=True)
class RuntimeState:
    """What the agent observed about one container.

    `exited` with `reason` set overrides the terminated reason (OOMKilled, ContainerCannotRun).
    `waiting` with `start_error` means creating/starting failed (reason e.g.
    CreateContainerConfigError, RunContainerError or the image's Unrunnable reason; the time of
    the failure in `finished_at`); `waiting` without it means the container is being created.
    `stopping` is set by the agent while a preStop hook or kill for it is in flight, so the
    plan does not ask for it again.
    """

    state: StateName
    pid: int | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    exit_code: int | None = None
    restart_count: int = 0
    reason: str | None = None
    message: str | None = None
    last_termination: RuntimeState | None = None
    start_error: str | None = None
    stopping: bool = False


@dataclass(frozen=True, slots=True)
class BackOff:
    """The kubelet's per-container back-off entry."""

    delay: timedelta
    last_update: datetime

    def expired(self, event_time: datetime) -> bool:
        return event_time - self.last_update > 2 * MAX_BACKOFF

    def in_backoff_since(self, event_time: datetime, now: datetime) -> bool:
        return not self.expired(event_time) and now - event_time < self.delay


def next_backoff(entry: BackOff | None, event_time: datetime, now: datetime) -> BackOff:
    if entry is None or entry.expired(event_time):
        return BackOff(INITIAL_BACKOFF, now)
    return BackOff(min(entry.delay * 2, MAX_BACKOFF), now)


# --- actions ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ExecHook:
    container: str
    command: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class HttpHook:
    container: str
    port: int | str
    path: str = "/"
    host: str | None = None  # None: the pod IP
    scheme: str = "HTTP"
    headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class SleepHook:
    container: str
    seconds: int


Hook = ExecHook | HttpHook | SleepHook


@dataclass(frozen=True, slots=True)
class Start:
    container: str
    is_init: bool
    post_start: Hook | None = None  # to run right after the process starts


class KillReason:
    DELETED = "PodDeleted"
    LIVENESS = "LivenessProbeFailed"
    STARTUP = "StartupProbeFailed"
    POD_TERMINAL = "PodTerminal"
    SIDECAR = "SidecarNoLongerNeeded"


@dataclass(frozen=True, slots=True)
class Kill:
    """SIGTERM, then SIGKILL after `grace` seconds (minus what a preceding hook used, at least
    MIN_GRACE_SECONDS when grace > 0). `message` is the kubelet's Killing event text."""

    container: str
    grace: int
    reason: str
    message: str


Action = Start | Kill | ExecHook | HttpHook | SleepHook


@dataclass(frozen=True, slots=True)
class Waiting:
    reason: str
    message: str


@dataclass(slots=True)
class Plan:
    actions: list[Action] = field(default_factory=list)
    next_wakeup: datetime | None = None
    backoff: dict[str, BackOff] = field(default_factory=dict)
    # Containers held back (CrashLoopBackOff or a start error being retried): their waiting
    # state for the status.
    waiting: dict[str, Waiting] = field(default_factory=dict)
    ready_to_delete: bool = False

    def wake_at(self, t: datetime) -> None:
        if self.next_wakeup is None or t < self.next_wakeup:
            self.next_wakeup = t


# --- pod spec views -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ContainerSpec:
    name: str
    is_init: bool
    sidecar: bool  # init container with restartPolicy Always
    raw: Mapping[str, Any]

    def has_probe(self, kind: ProbeKind) -> bool:
        return isinstance(self.raw.get(kind.field), Mapping)


def containers(pod: Mapping[str, Any]) -> tuple[list[ContainerSpec], list[ContainerSpec]]:
    """(init containers, app containers) of the pod, in spec order."""
    spec = pod.get("spec") or {}
    inits = [
        ContainerSpec(str(c.get("name", "")), True, c.get("restartPolicy") == "Always", c)
        for c in spec.get("initContainers") or []
        if isinstance(c, Mapping)
    ]
    apps = [
        ContainerSpec(str(c.get("name", "")), False, False, c)
        for c in spec.get("containers") or []
        if isinstance(c, Mapping)
    ]
    return inits, apps


def restart_policy(pod: Mapping[str, Any]) -> str:
    return str((pod.get("spec") or {}).get("restartPolicy") or "Always")


def should_restart(policy: str, exit_code: int | None) -> bool:
    if policy == "Always":
        return True
    if policy == "OnFailure":
        return exit_code != 0
    return False


def is_started(c: ContainerSpec, rs: RuntimeState | None, probes: ContainerProbes | None) -> bool:
    """The containerStatus `started` field: running, and the startup probe (if any) passed."""
    if rs is None or rs.state != "running":
        return False
    if not c.has_probe(ProbeKind.STARTUP):
        return True
    return (probes or ContainerProbes()).startup == Result.SUCCESS


def pod_grace_seconds(pod: Mapping[str, Any]) -> int:
    meta = pod.get("metadata") or {}
    g = meta.get("deletionGracePeriodSeconds")
    if isinstance(g, int):
        return max(g, 0)
    g = (pod.get("spec") or {}).get("terminationGracePeriodSeconds")
    return max(g, 0) if isinstance(g, int) else DEFAULT_GRACE_SECONDS


def pod_ref(pod: Mapping[str, Any]) -> str:
    """How the kubelet names a pod in messages: name_namespace(uid)."""
    meta = pod.get("metadata") or {}
    return f"{meta.get('name', '')}_{meta.get('namespace', '')}({meta.get('uid', '')})"


def go_duration(d: timedelta) -> str:
    """Go's time.Duration.String() for whole seconds: 10s, 1m20s, 5m0s, 1h0m0s."""
    total = int(d.total_seconds())
    h, rest = divmod(total, 3600)
    m, s = divmod(rest, 60)
    if h:
        return f"{h}h{m}m{s}s"
    if m:
        return f"{m}m{s}s"
    return f"{s}s"


def hook_of(c: ContainerSpec, which: Literal["preStop", "postStart"]) -> Hook | None:
    lifecycle = c.raw.get("lifecycle")
    if not isinstance(lifecycle, Mapping):
        return None
    h = lifecycle.get(which)
    if not isinstance(h, Mapping):
        return None
    if isinstance(e := h.get("exec"), Mapping):
        return ExecHook(c.name, tuple(str(a) for a in e.get("command") or []))
    if isinstance(g := h.get("httpGet"), Mapping):
        return HttpHook(
            c.name,
            port=resolve_port(g.get("port"), c.raw),
            path=str(g.get("path") or "/"),
            host=str(g["host"]) if g.get("host") else None,
            scheme=str(g.get("scheme") or "HTTP").upper(),
            headers=tuple(
                (str(x.get("name", "")), str(x.get("value", "")))
                for x in g.get("httpHeaders") or []
                if isinstance(x, Mapping)
            ),
        )
    if isinstance(s := h.get("sleep"), Mapping) and isinstance(s.get("seconds"), int):
        return SleepHook(c.name, int(s["seconds"]))
    return None


# --- the plan -----------------------------------------------------------------------------


class _Planner:
    def __init__(
        self,
        pod: Mapping[str, Any],
        runtime: Mapping[str, RuntimeState],
        probe_results: Mapping[str, ContainerProbes],
        now: datetime,
        backoff: Mapping[str, BackOff],
    ) -> None:
        self.pod = pod
        self.runtime = runtime
        self.probes = probe_results
        self.now = now
        self.policy = restart_policy(pod)
        self.grace = pod_grace_seconds(pod)
        self.out = Plan(backoff=dict(backoff))

    def start(self, c: ContainerSpec) -> None:
        self.out.actions.append(Start(c.name, c.is_init, hook_of(c, "postStart")))

    def kill(self, c: ContainerSpec, grace: int, reason: str, message: str) -> None:
        rs = self.runtime.get(c.name)
        if rs is None or rs.state != "running" or rs.stopping:
            return
        self.out.actions.append(Kill(c.name, grace, reason, message))

    def restart(self, c: ContainerSpec, rs: RuntimeState) -> None:
        """Start an exited (or failed-to-start) container again, unless it is in back-off."""
        failed_at = rs.finished_at or rs.started_at or self.now
        entry = self.out.backoff.get(c.name)
        if entry is not None and entry.in_backoff_since(failed_at, self.now):
            if rs.start_error is not None:
                self.out.waiting[c.name] = Waiting(rs.reason or "RunContainerError", rs.start_error)
            else:
                self.out.waiting[c.name] = Waiting(
                    "CrashLoopBackOff",
                    f"back-off {go_duration(entry.delay)} restarting failed "
                    f"container={c.name} pod={pod_ref(self.pod)}",
                )
            self.out.wake_at(failed_at + entry.delay)
            return
        self.out.backoff[c.name] = next_backoff(entry, failed_at, self.now)
        self.start(c)

    def check_probes(self, c: ContainerSpec, rs: RuntimeState, restarts: bool) -> None:
        """Kill a running container whose startup or liveness probe failed."""
        probes = self.probes.get(c.name) or ContainerProbes()
        kind: ProbeKind | None = None
        if c.has_probe(ProbeKind.STARTUP) and probes.startup == Result.FAILURE:
            kind = ProbeKind.STARTUP
        elif (
            is_started(c, rs, probes)
            and c.has_probe(ProbeKind.LIVENESS)
            and probes.liveness == Result.FAILURE
        ):
            kind = ProbeKind.LIVENESS
        if kind is None:
            return
        spec = ProbeSpec.from_container(c.raw, kind)
        grace = self.grace
        if spec is not None and spec.termination_grace_period is not None:
            grace = spec.termination_grace_period
        message = f"Container {c.name} failed {kind.value} probe"
        if restarts:
            message += ", will be restarted"
        reason = KillReason.STARTUP if kind == ProbeKind.STARTUP else KillReason.LIVENESS
        self.kill(c, grace, reason, message)

    def stop_all(self, cs: Sequence[ContainerSpec], reason: str) -> None:
        for c in cs:
            self.kill(c, self.grace, reason, f"Stopping container {c.name}")


def plan(
    pod: Mapping[str, Any],
    runtime: Mapping[str, RuntimeState],
    probe_results: Mapping[str, ContainerProbes],
    now: datetime,
    backoff: Mapping[str, BackOff] | None = None,
) -> Plan:
    """The next actions for the pod. Pass back `Plan.backoff` on the next call (the agent keeps
    it per pod); `Plan.waiting` goes to `podstatus.build`."""
    p = _Planner(pod, runtime, probe_results, now, backoff or {})
    inits, apps = containers(pod)
    meta = pod.get("metadata") or {}
    if meta.get("deletionTimestamp"):
        _plan_deletion(p, inits, apps)
        return p.out
    phase = (pod.get("status") or {}).get("phase")
    if phase in ("Succeeded", "Failed"):
        p.stop_all([*apps, *inits], KillReason.POD_TERMINAL)
        return p.out

    apps_done = bool(apps) and all(_finished_for_good(p, c) for c in apps)
    app_ever_ran = any(c.name in runtime for c in apps)

    initialized = True
    for c in inits:
        rs = runtime.get(c.name)
        if c.sidecar:
            if apps_done:
                continue  # stopped below; never restarted once the app containers are done
            if rs is None:
                p.start(c)
            elif rs.state == "running":
                p.check_probes(c, rs, restarts=True)
            elif rs.state == "exited" or rs.start_error is not None:
                p.restart(c, rs)
            # Once the app containers have run, a sidecar restarting does not hold them.
            if app_ever_ran or is_started(c, rs, probe_results.get(c.name)):
                continue
            initialized = False
            break
        if app_ever_ran:
            continue  # initialization finished earlier; init containers never run again
        if rs is not None and rs.state == "exited" and rs.exit_code == 0:
            continue
        initialized = False
        if rs is None:
            p.start(c)
        elif rs.state == "exited":
            if p.policy == "Never":
                # The pod has failed (podstatus says so); stop what still runs.
                p.stop_all(inits, KillReason.POD_TERMINAL)
                return p.out
            p.restart(c, rs)
        elif rs.start_error is not None:
            p.restart(c, rs)
        break

    if not initialized:
        return p.out

    for c in apps:
        rs = runtime.get(c.name)
        if rs is None:
            p.start(c)
        elif rs.state == "running":
            p.check_probes(c, rs, restarts=should_restart(p.policy, 137))
        elif rs.state == "exited":
            if should_restart(p.policy, rs.exit_code):
                p.restart(c, rs)
        elif rs.start_error is not None:
            p.restart(c, rs)

    if apps_done:
        # Sidecars stop once the app containers have finished for good, last one first.
        sidecars = [c for c in reversed(inits) if c.sidecar]
        p.stop_all(sidecars, KillReason.SIDECAR)
    return p.out


def _finished_for_good(p: _Planner, c: ContainerSpec) -> bool:
    rs = p.runtime.get(c.name)
    return rs is not None and rs.state == "exited" and not should_restart(p.policy, rs.exit_code)


def _plan_deletion(p: _Planner, inits: list[ContainerSpec], apps: list[ContainerSpec]) -> None:
    def running(cs: Sequence[ContainerSpec]) -> list[ContainerSpec]:
        return [
            c for c in cs if (rs := p.runtime.get(c.name)) is not None and rs.state == "running"
        ]

    main = running([*apps, *(c for c in inits if not c.sidecar)])
    sidecars = running([c for c in reversed(inits) if c.sidecar])
    if not main and not sidecars:
        p.out.ready_to_delete = True
        return
    # Sidecars get what is left of the grace period once the app containers are gone.
    targets, grace = main, p.grace
    if not main:
        targets = sidecars
        deadline = _deletion_deadline(p.pod)
        if deadline is not None:
            left = int((deadline - p.now).total_seconds())
            grace = max(left, min(MIN_GRACE_SECONDS, p.grace))
    for c in targets:
        rs = p.runtime[c.name]
        if rs.stopping:
            continue
        hook = hook_of(c, "preStop")
        if hook is not None:
            p.out.actions.append(hook)
        p.out.actions.append(
            Kill(c.name, grace, KillReason.DELETED, f"Stopping container {c.name}")
        )


def _deletion_deadline(pod: Mapping[str, Any]) -> datetime | None:
    ts = (pod.get("metadata") or {}).get("deletionTimestamp")
    if not isinstance(ts, str):
        return None
    return datetime.fromisoformat(ts.replace("Z", "+00:00"))
