"""Container probes: the spec (with the kubelet's defaults), a pure tracker that turns probe
runs into a result with thresholds, and `run_probe`, which performs one probe through the
callables it is given (so it never opens a socket or a process on its own).

Result semantics follow the kubelet's prober workers: a result only changes once the same
outcome has been seen `successThreshold` / `failureThreshold` times in a row; liveness starts
as success, readiness as failure, startup as unknown; a startup probe stops once it has
succeeded; the agent resets a tracker whenever the container starts again.
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

USER_AGENT = "kube-probe/1.32"
_MAX_STATUS_LINE = 8192


class ProbeKind(enum.StrEnum):
    LIVENESS = "liveness"
    READINESS = "readiness"
    STARTUP = "startup"

    @property
    def field(self) -> str:
        return f"{self.value}Probe"


class Result(enum.StrEnum):
    UNKNOWN = "unknown"
    SUCCESS = "success"
    FAILURE = "failure"


# The kubelet's initial value for each kind of probe worker.
_INITIAL = {
    ProbeKind.LIVENESS: Result.SUCCESS,
    ProbeKind.READINESS: Result.FAILURE,
    ProbeKind.STARTUP: Result.UNKNOWN,
}


@dataclass(frozen=True, slots=True)
class HttpGet:
    port: int | str  # a str is a container port name that did not resolve
    path: str = "/"
    host: str | None = None  # None: the pod IP
    scheme: str = "HTTP"
    headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class TcpSocket:
    port: int | str
    host: str | None = None


@dataclass(frozen=True, slots=True)
class Exec:
    command: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Grpc:
    port: int
    service: str | None = None


Handler = HttpGet | TcpSocket | Exec | Grpc


@dataclass(frozen=True, slots=True)
class ProbeSpec:
    kind: ProbeKind
    handler: Handler | None  # None: the probe names no handler (invalid; always fails)
    initial_delay: timedelta = timedelta(0)
    period: timedelta = timedelta(seconds=10)
    timeout: timedelta = timedelta(seconds=1)
    success_threshold: int = 1
    failure_threshold: int = 3
    termination_grace_period: int | None = None  # probe-level override, seconds

    @classmethod
    def from_container(cls, container: Mapping[str, Any], kind: ProbeKind) -> ProbeSpec | None:
        """The container's probe of this kind, with the API defaults filled in; None if the
        container has none."""
        probe = container.get(kind.field)
        if not isinstance(probe, Mapping):
            return None
        # Liveness and startup probes must have successThreshold 1 (validation enforces it).
        success = 1 if kind != ProbeKind.READINESS else _int(probe, "successThreshold", 1)
        grace = probe.get("terminationGracePeriodSeconds")
        return cls(
            kind=kind,
            handler=_handler(probe, container),
            initial_delay=timedelta(seconds=_int(probe, "initialDelaySeconds", 0)),
            period=timedelta(seconds=_int(probe, "periodSeconds", 10)),
            timeout=timedelta(seconds=_int(probe, "timeoutSeconds", 1)),
            success_threshold=max(success, 1),
            failure_threshold=max(_int(probe, "failureThreshold", 3), 1),
            termination_grace_period=grace if isinstance(grace, int) else None,
        )


def _int(m: Mapping[str, Any], key: str, default: int) -> int:
    v = m.get(key)
    return v if isinstance(v, int) and not isinstance(v, bool) and v > 0 else default


def resolve_port(port: Any, container: Mapping[str, Any]) -> int | str:
    """A probe/hook port: a number, or a name looked up in the container's ports."""
    if isinstance(port, int):
        return port
    text = str(port)
    if text.isdigit():
        return int(text)
    for p in container.get("ports") or []:
        if (
            isinstance(p, Mapping)
            and p.get("name") == text
            and isinstance(p.get("containerPort"), int)
        ):
            return int(p["containerPort"])
    return text


def _handler(probe: Mapping[str, Any], container: Mapping[str, Any]) -> Handler | None:
    if isinstance(h := probe.get("httpGet"), Mapping):
        headers = tuple(
            (str(x.get("name", "")), str(x.get("value", "")))
            for x in h.get("httpHeaders") or []
            if isinstance(x, Mapping)
        )
        return HttpGet(
            port=resolve_port(h.get("port"), container),
            path=str(h.get("path") or "/"),
            host=str(h["host"]) if h.get("host") else None,
            scheme=str(h.get("scheme") or "HTTP").upper(),
            headers=headers,
        )
    if isinstance(t := probe.get("tcpSocket"), Mapping):
        return TcpSocket(
            port=resolve_port(t.get("port"), container),
            host=str(t["host"]) if t.get("host") else None,
        )
    if isinstance(e := probe.get("exec"), Mapping):
        return Exec(command=tuple(str(a) for a in e.get("command") or []))
    if isinstance(g := probe.get("grpc"), Mapping):
        port = g.get("port")
        return Grpc(port=port if isinstance(port, int) else 0, service=g.get("service"))
    return None


def active_kinds(container: Mapping[str, Any], started: bool) -> list[ProbeKind]:
    """The probe kinds the agent should be running for a running container: only the startup
    probe until it has succeeded, then liveness and readiness (the kubelet's gating)."""
    kinds = [k for k in ProbeKind if isinstance(container.get(k.field), Mapping)]
    if not started:
        return [k for k in kinds if k == ProbeKind.STARTUP]
    return [k for k in kinds if k != ProbeKind.STARTUP]


@dataclass(frozen=True, slots=True)
class ProbeTracker:
    """The state of one probe for one run of one container. Pure: `record` returns a new
    tracker. Create a fresh one each time the container (re)starts."""

    spec: ProbeSpec
    container_started_at: datetime
    result: Result = Result.UNKNOWN
    run: int = 0  # how many times in a row the last outcome was seen
    last_outcome: bool | None = None
    last_run: datetime | None = None
    message: str = ""

    @classmethod
    def start(cls, spec: ProbeSpec, container_started_at: datetime) -> ProbeTracker:
        return cls(spec=spec, container_started_at=container_started_at, result=_INITIAL[spec.kind])

    def next_due(self) -> datetime | None:
        """When the probe should run next; None once a startup probe has succeeded."""
        if self.spec.kind == ProbeKind.STARTUP and self.result == Result.SUCCESS:
            return None
        if self.last_run is None:
            return self.container_started_at + self.spec.initial_delay
        return self.last_run + self.spec.period

    def due(self, now: datetime) -> bool:
        t = self.next_due()
        return t is not None and now >= t

    def record(self, ok: bool, message: str, now: datetime) -> ProbeTracker:
        run = self.run + 1 if self.last_outcome is ok else 1
        threshold = self.spec.success_threshold if ok else self.spec.failure_threshold
        result = self.result
        if run >= threshold:
            result = Result.SUCCESS if ok else Result.FAILURE
        return replace(
            self,
            result=result,
            run=run,
            last_outcome=ok,
            last_run=now,
            message="" if ok else message,
        )


@dataclass(frozen=True, slots=True)
class ContainerProbes:
    """What lifecycle and podstatus need to know about one container's probes. A kind with no
    probe in the spec is ignored by both, whatever its value here."""

    startup: Result = Result.UNKNOWN
    readiness: Result = Result.FAILURE
    liveness: Result = Result.SUCCESS
    startup_message: str = ""
    liveness_message: str = ""

    @classmethod
    def of(cls, trackers: Mapping[ProbeKind, ProbeTracker]) -> ContainerProbes:
        def get(kind: ProbeKind) -> Result:
            t = trackers.get(kind)
            return t.result if t else _INITIAL[kind]

        return cls(
            startup=get(ProbeKind.STARTUP),
            readiness=get(ProbeKind.READINESS),
            liveness=get(ProbeKind.LIVENESS),
            startup_message=t.message if (t := trackers.get(ProbeKind.STARTUP)) else "",
            liveness_message=t.message if (t := trackers.get(ProbeKind.LIVENESS)) else "",
        )


# --- performing a probe -------------------------------------------------------------------

Connect = Callable[[str, int], Awaitable[tuple[asyncio.StreamReader, asyncio.StreamWriter]]]
ExecFn = Callable[[Sequence[str], float], Awaitable[int]]


async def run_probe(
    spec: ProbeSpec, pod_ip: str, connect: Connect, exec_fn: ExecFn
) -> tuple[bool, str]:
    """Run the probe once. Returns (ok, message); the message is what the kubelet would put in
    the Unhealthy event ("" on success)."""
    h = spec.handler
    timeout = spec.timeout.total_seconds()
    if h is None:
        return False, "probe has no handler (exec, httpGet, tcpSocket or grpc)"
    if isinstance(h, Exec):
        return await _exec(h, timeout, exec_fn)
    if isinstance(h, Grpc):
        return False, f"grpc probe (port {h.port}) is not supported by podnet"
    host = h.host or pod_ip
    if isinstance(h.port, str):
        return False, f"unable to resolve port {h.port!r}: no container port with that name"
    if isinstance(h, TcpSocket):
        return await _tcp(host, h.port, timeout, connect)
    return await _http(h, host, h.port, timeout, connect)


def _hostport(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


async def _exec(h: Exec, timeout: float, exec_fn: ExecFn) -> tuple[bool, str]:
    cmd = " ".join(h.command)
    try:
        code = await exec_fn(list(h.command), timeout)
    except TimeoutError:
        return False, f"command {cmd!r} timed out"
    except OSError as e:
        return False, f"command {cmd!r} failed: {e}"
    if code == 0:
        return True, ""
    return False, f"command {cmd!r} exited with {code}"


async def _tcp(host: str, port: int, timeout: float, connect: Connect) -> tuple[bool, str]:
    addr = _hostport(host, port)
    try:
        _, writer = await asyncio.wait_for(connect(host, port), timeout)
    except TimeoutError:
        return False, f"dial tcp {addr}: i/o timeout"
    except OSError as e:
        return False, f"dial tcp {addr}: connect: {_os_reason(e)}"
    writer.close()
    return True, ""


def _os_reason(e: OSError) -> str:
    if isinstance(e, ConnectionRefusedError):
        return "connection refused"
    return (e.strerror or str(e)).lower()


async def _http(
    h: HttpGet, host: str, port: int, timeout: float, connect: Connect
) -> tuple[bool, str]:
    scheme = h.scheme.lower()
    path = h.path if h.path.startswith("/") else "/" + h.path
    url = f"{scheme}://{_hostport(host, port)}{path}"
    if scheme != "http":
        return False, f'Get "{url}": {h.scheme} probes are not supported by podnet'
    try:
        code = await asyncio.wait_for(_http_status(h, host, port, path, connect), timeout)
    except TimeoutError:
        return False, (
            f'Get "{url}": context deadline exceeded (Client.Timeout exceeded while awaiting'
            " headers)"
        )
    except OSError as e:
        return False, f'Get "{url}": dial tcp {_hostport(host, port)}: connect: {_os_reason(e)}'
    except ValueError as e:
        return False, f'Get "{url}": {e}'
    if 200 <= code < 400:
        return True, ""
    return False, f"HTTP probe failed with statuscode: {code}"


def http_request(h: HttpGet, host: str, port: int, path: str) -> bytes:
    """The request bytes the probe sends (the kubelet's defaults, user headers win)."""
    headers: dict[str, str] = {
        "Host": _hostport(host, port),
        "User-Agent": USER_AGENT,
        "Accept": "*/*",
    }
    lower = {k.lower(): k for k in headers}
    for name, value in h.headers:
        existing = lower.get(name.lower())
        if existing is not None:
            del headers[existing]
        headers[name] = value
        lower[name.lower()] = name
    headers["Connection"] = "close"
    lines = [f"GET {path} HTTP/1.1", *(f"{k}: {v}" for k, v in headers.items()), "", ""]
    return "\r\n".join(lines).encode("latin-1")


async def _http_status(h: HttpGet, host: str, port: int, path: str, connect: Connect) -> int:
    reader, writer = await connect(host, port)
    try:
        writer.write(http_request(h, host, port, path))
        await writer.drain()
        line = await reader.readline()
        return parse_status_line(line[:_MAX_STATUS_LINE])
    finally:
        writer.close()


def parse_status_line(line: bytes) -> int:
    """The status code of an HTTP/1.x status line; ValueError if it is not one."""
    parts = line.decode("latin-1").strip().split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
        raise ValueError("malformed HTTP response " + repr(line.decode("latin-1").strip()))
    return int(parts[1])


__all__ = [
    "USER_AGENT",
    "ContainerProbes",
    "Exec",
    "Grpc",
    "Handler",
    "HttpGet",
    "ProbeKind",
    "ProbeSpec",
    "ProbeTracker",
    "Result",
    "TcpSocket",
    "active_kinds",
    "http_request",
    "parse_status_line",
    "resolve_port",
    "run_probe",
]
