"""Probes: spec defaults, the threshold tracker, and one probe run through fake transports."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pytest

from podnet.agent.probes import (
    ContainerProbes,
    Exec,
    Grpc,
    HttpGet,
    ProbeKind,
    ProbeSpec,
    ProbeTracker,
    Result,
    TcpSocket,
    active_kinds,
    http_request,
    parse_status_line,
    run_probe,
)

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


CONTAINER = {"name": "app", "ports": [{"name": "http", "containerPort": 8080}]}

# --- ProbeSpec ----------------------------------------------------------------------------


def test_defaults() -> None:
    c = {**CONTAINER, "livenessProbe": {"httpGet": {"port": "http", "path": "/healthz"}}}
    assert ProbeSpec.from_container(c, ProbeKind.LIVENESS) == ProbeSpec(
        kind=ProbeKind.LIVENESS,
        handler=HttpGet(port=8080, path="/healthz"),
        initial_delay=timedelta(0),
        period=timedelta(seconds=10),
        timeout=timedelta(seconds=1),
        success_threshold=1,
        failure_threshold=3,
    )
    assert ProbeSpec.from_container(c, ProbeKind.READINESS) is None


def test_all_fields() -> None:
    c = {
        **CONTAINER,
        "readinessProbe": {
            "httpGet": {
                "port": 9000,
                "host": "127.0.0.1",
                "scheme": "https",
                "httpHeaders": [{"name": "X-A", "value": "1"}],
            },
            "initialDelaySeconds": 5,
            "periodSeconds": 2,
            "timeoutSeconds": 3,
            "successThreshold": 2,
            "failureThreshold": 4,
            "terminationGracePeriodSeconds": 9,
        },
    }
    spec = ProbeSpec.from_container(c, ProbeKind.READINESS)
    assert spec == ProbeSpec(
        ProbeKind.READINESS,
        HttpGet(9000, "/", "127.0.0.1", "HTTPS", (("X-A", "1"),)),
        timedelta(seconds=5),
        timedelta(seconds=2),
        timedelta(seconds=3),
        2,
        4,
        9,
    )


@pytest.mark.parametrize(
    ("probe", "handler"),
    [
        ({"tcpSocket": {"port": "http"}}, TcpSocket(8080)),
        ({"tcpSocket": {"port": "8081"}}, TcpSocket(8081)),
        ({"tcpSocket": {"port": "nope"}}, TcpSocket("nope")),
        ({"exec": {"command": ["cat", "/tmp/ok"]}}, Exec(("cat", "/tmp/ok"))),
        ({"grpc": {"port": 9090, "service": "s"}}, Grpc(9090, "s")),
        ({}, None),
    ],
)
def test_handlers(probe: dict[str, Any], handler: Any) -> None:
    c = {**CONTAINER, "startupProbe": probe}
    spec = ProbeSpec.from_container(c, ProbeKind.STARTUP)
    assert spec is not None and spec.handler == handler


def test_liveness_success_threshold_is_always_one() -> None:
    c = {"livenessProbe": {"exec": {"command": ["x"]}, "successThreshold": 3}}
    spec = ProbeSpec.from_container(c, ProbeKind.LIVENESS)
    assert spec is not None and spec.success_threshold == 1


def test_active_kinds_gate_on_startup() -> None:
    c = {k.field: {"exec": {"command": ["x"]}} for k in ProbeKind}
    assert active_kinds(c, started=False) == [ProbeKind.STARTUP]
    assert active_kinds(c, started=True) == [ProbeKind.LIVENESS, ProbeKind.READINESS]
    assert active_kinds({}, started=True) == []


# --- ProbeTracker -------------------------------------------------------------------------


def spec(kind: ProbeKind, success: int = 1, failure: int = 3, delay: int = 0) -> ProbeSpec:
    return ProbeSpec(
        kind,
        Exec(("x",)),
        initial_delay=timedelta(seconds=delay),
        success_threshold=success,
        failure_threshold=failure,
    )


def drive(tracker: ProbeTracker, outcomes: str) -> list[Result]:
    """Feed outcomes ('+' ok, '-' fail) one period apart; the result after each."""
    out = []
    for i, o in enumerate(outcomes):
        tracker = tracker.record(o == "+", "" if o == "+" else "boom", at(10 * i))
        out.append(tracker.result)
    return out


S, F, U = Result.SUCCESS, Result.FAILURE, Result.UNKNOWN


@pytest.mark.parametrize(
    ("kind", "success", "failure", "outcomes", "results"),
    [
        (ProbeKind.LIVENESS, 1, 3, "--+---", [S, S, S, S, S, F]),
        (ProbeKind.READINESS, 1, 3, "+--", [S, S, S]),
        (ProbeKind.READINESS, 2, 1, "+-++", [F, F, F, S]),
        (ProbeKind.READINESS, 1, 1, "+-+", [S, F, S]),
        (ProbeKind.STARTUP, 1, 2, "-+", [U, S]),
        (ProbeKind.STARTUP, 1, 2, "--", [U, F]),
    ],
)
def test_thresholds(
    kind: ProbeKind, success: int, failure: int, outcomes: str, results: list[Result]
) -> None:
    assert drive(ProbeTracker.start(spec(kind, success, failure), T0), outcomes) == results


def test_initial_results_follow_the_kubelet() -> None:
    assert ProbeTracker.start(spec(ProbeKind.LIVENESS), T0).result == S
    assert ProbeTracker.start(spec(ProbeKind.READINESS), T0).result == F
    assert ProbeTracker.start(spec(ProbeKind.STARTUP), T0).result == U


def test_due_times() -> None:
    t = ProbeTracker.start(spec(ProbeKind.READINESS, delay=5), at(100))
    assert t.next_due() == at(105)
    assert not t.due(at(104)) and t.due(at(105))
    t = t.record(True, "", at(106))
    assert t.next_due() == at(116)
    started = ProbeTracker.start(spec(ProbeKind.STARTUP), T0).record(True, "", at(1))
    assert started.next_due() is None and not started.due(at(1000))


def test_container_probes_of_trackers() -> None:
    live = ProbeTracker.start(spec(ProbeKind.LIVENESS, failure=1), T0).record(False, "dead", at(1))
    cp = ContainerProbes.of({ProbeKind.LIVENESS: live})
    assert cp == ContainerProbes(
        startup=U, readiness=F, liveness=F, startup_message="", liveness_message="dead"
    )


# --- run_probe ----------------------------------------------------------------------------


class FakeWriter:
    def __init__(self) -> None:
        self.data = b""
        self.closed = False

    def write(self, b: bytes) -> None:
        self.data += b

    async def drain(self) -> None:
        return None

    def close(self) -> None:
        self.closed = True


class FakeNet:
    """connect() answers with a canned response, refuses, or hangs."""

    def __init__(self, response: bytes = b"", mode: str = "ok") -> None:
        self.response, self.mode = response, mode
        self.calls: list[tuple[str, int]] = []
        self.writer = FakeWriter()

    async def connect(self, host: str, port: int) -> tuple[asyncio.StreamReader, Any]:
        self.calls.append((host, port))
        if self.mode == "refuse":
            raise ConnectionRefusedError(111, "Connection refused")
        if self.mode == "hang":
            await asyncio.sleep(10)
        reader = asyncio.StreamReader()
        reader.feed_data(self.response)
        reader.feed_eof()
        return reader, cast(asyncio.StreamWriter, self.writer)


async def no_exec(argv: Sequence[str], timeout: float) -> int:
    raise AssertionError("exec not expected")


def probe(handler: Any, timeout: float = 1) -> ProbeSpec:
    return ProbeSpec(ProbeKind.READINESS, handler, timeout=timedelta(seconds=timeout))


@pytest.mark.parametrize(
    ("response", "ok", "message"),
    [
        (b"HTTP/1.1 200 OK\r\n\r\n", True, ""),
        (b"HTTP/1.1 302 Found\r\nLocation: /x\r\n\r\n", True, ""),
        (
            b"HTTP/1.0 500 Internal Server Error\r\n\r\n",
            False,
            "HTTP probe failed with statuscode: 500",
        ),
        (b"HTTP/1.1 404 Not Found\r\n\r\n", False, "HTTP probe failed with statuscode: 404"),
        (
            b"garbage\r\n",
            False,
            "Get \"http://10.244.0.5:8080/healthz\": malformed HTTP response 'garbage'",
        ),
    ],
)
async def test_http_get(response: bytes, ok: bool, message: str) -> None:
    net = FakeNet(response)
    h = HttpGet(8080, "/healthz", headers=(("X-Probe", "yes"),))
    assert await run_probe(probe(h), "10.244.0.5", net.connect, no_exec) == (ok, message)
    assert net.calls == [("10.244.0.5", 8080)]
    assert net.writer.data == (
        b"GET /healthz HTTP/1.1\r\nHost: 10.244.0.5:8080\r\nUser-Agent: kube-probe/1.32\r\n"
        b"Accept: */*\r\nX-Probe: yes\r\nConnection: close\r\n\r\n"
    )
    assert net.writer.closed


async def test_http_get_refused_and_timeout() -> None:
    h = HttpGet(80, "/")
    refused = await run_probe(probe(h), "10.244.0.5", FakeNet(mode="refuse").connect, no_exec)
    assert refused == (
        False,
        'Get "http://10.244.0.5:80/": dial tcp 10.244.0.5:80: connect: connection refused',
    )
    hung = await run_probe(probe(h, 0.01), "10.244.0.5", FakeNet(mode="hang").connect, no_exec)
    assert hung == (
        False,
        'Get "http://10.244.0.5:80/": context deadline exceeded '
        "(Client.Timeout exceeded while awaiting headers)",
    )


async def test_http_host_override_and_https_unsupported() -> None:
    net = FakeNet(b"HTTP/1.1 200 OK\r\n\r\n")
    assert await run_probe(probe(HttpGet(80, host="127.0.0.1")), "10.1.1.1", net.connect, no_exec)
    assert net.calls == [("127.0.0.1", 80)]
    ok, message = await run_probe(
        probe(HttpGet(443, scheme="HTTPS")), "10.1.1.1", net.connect, no_exec
    )
    assert not ok and "HTTPS probes are not supported" in message


def test_user_host_header_wins() -> None:
    req = http_request(HttpGet(80, headers=(("host", "example.com"),)), "10.0.0.1", 80, "/")
    assert b"Host: 10.0.0.1" not in req and b"host: example.com\r\n" in req


@pytest.mark.parametrize(
    ("mode", "ok", "message"),
    [
        ("ok", True, ""),
        ("refuse", False, "dial tcp 10.244.0.5:6379: connect: connection refused"),
        ("hang", False, "dial tcp 10.244.0.5:6379: i/o timeout"),
    ],
)
async def test_tcp_socket(mode: str, ok: bool, message: str) -> None:
    p = ProbeSpec(ProbeKind.LIVENESS, TcpSocket(6379), timeout=timedelta(seconds=0.01))
    net = FakeNet(mode=mode)
    assert await run_probe(p, "10.244.0.5", net.connect, no_exec) == (ok, message)


@pytest.mark.parametrize(
    ("result", "ok", "message"),
    [
        (0, True, ""),
        (1, False, "command 'cat /tmp/ok' exited with 1"),
        (TimeoutError(), False, "command 'cat /tmp/ok' timed out"),
    ],
)
async def test_exec(result: int | Exception, ok: bool, message: str) -> None:
    seen: list[tuple[list[str], float]] = []

    async def exec_fn(argv: Sequence[str], timeout: float) -> int:
        seen.append((list(argv), timeout))
        if isinstance(result, Exception):
            raise result
        return result

    p = ProbeSpec(ProbeKind.LIVENESS, Exec(("cat", "/tmp/ok")), timeout=timedelta(seconds=2))
    assert await run_probe(p, "ip", FakeNet().connect, exec_fn) == (ok, message)
    assert seen == [(["cat", "/tmp/ok"], 2.0)]


@pytest.mark.parametrize(
    ("handler", "fragment"),
    [
        (Grpc(9090), "grpc probe (port 9090) is not supported"),
        (TcpSocket("metrics"), "unable to resolve port 'metrics'"),
        (None, "probe has no handler"),
    ],
)
async def test_failures_without_traffic(handler: Any, fragment: str) -> None:
    net = FakeNet()
    ok, message = await run_probe(probe(handler), "ip", net.connect, no_exec)
    assert not ok and fragment in message and net.calls == []


def test_parse_status_line() -> None:
    assert parse_status_line(b"HTTP/1.1 204 No Content\r\n") == 204
    with pytest.raises(ValueError):
        parse_status_line(b"")


async def test_other_connect_errors_are_worded_like_go() -> None:
    async def unreachable(host: str, port: int) -> Any:
        raise OSError(113, "No route to host")

    p = ProbeSpec(ProbeKind.LIVENESS, TcpSocket(80))
    assert await run_probe(p, "10.244.0.9", unreachable, no_exec) == (
        False,
        "dial tcp 10.244.0.9:80: connect: no route to host",
    )


async def test_exec_that_cannot_start() -> None:
    async def broken(argv: Sequence[str], timeout: float) -> int:
        raise FileNotFoundError(2, "No such file or directory")

    ok, message = await run_probe(probe(Exec(("nope",))), "ip", FakeNet().connect, broken)
    assert not ok and message.startswith("command 'nope' failed: ")
