"""The built-in programs, started as real subprocesses on 127.0.0.1 ephemeral ports."""

from __future__ import annotations

import contextlib
import json
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from podnet.agent.builtin import (
    NGINX_BOOT,
    FlagValue,
    hostname,
    nginx_config,
    parse_duration,
    parse_flags,
)
from podnet.agent.builtin.agnhost import porter_plan, resolv_conf

SRC = str(Path(__file__).resolve().parents[3] / "src")
HOST = hostname()


class Proc:
    """A builtin program we started; we only ever signal this PID."""

    def __init__(self, *python_args: str, env: dict[str, str] | None = None) -> None:
        full_env = {**os.environ, "PODNET_BUILTIN_BIND": "127.0.0.1",
                    "PYTHONPATH": SRC, **(env or {})}
        self.p = subprocess.Popen([sys.executable, *python_args], env=full_env,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        assert self.p.stderr is not None
        threading.Thread(target=self._pump, args=(self.p.stderr,), daemon=True).start()

    def _pump(self, stream: object) -> None:
        for line in stream:  # type: ignore[attr-defined]
            self.lines.put(line)

    def wait_for(self, pattern: str, timeout: float = 10.0) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while True:
            for line in self.seen:
                m = re.search(pattern, line)
                if m:
                    return m
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no {pattern!r} in {self.seen}")
            with contextlib.suppress(queue.Empty):
                self.seen.append(self.lines.get(timeout=left))

    def port(self, pattern: str) -> int:
        return int(self.wait_for(pattern).group(1))

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> int:
        if self.p.poll() is None:
            self.p.send_signal(sig)
        return self.p.wait(timeout)

    def kill(self) -> None:
        if self.p.poll() is None:
            self.p.kill()
            self.p.wait(5)


@pytest.fixture
def procs() -> Iterator[list[Proc]]:
    started: list[Proc] = []
    yield started
    for p in started:
        p.kill()


def start(procs: list[Proc], module: str, *argv: str,
          env: dict[str, str] | None = None) -> Proc:
    p = Proc("-m", module, *argv, env=env)
    procs.append(p)
    return p


def get(url: str) -> tuple[int, str, dict[str, str]]:
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, r.read().decode(), dict(r.headers)
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(), dict(e.headers)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


AGNHOST = "podnet.agent.builtin.agnhost"


# --- serve-hostname -----------------------------------------------------------------------


def test_serve_hostname_answers_over_http(procs: list[Proc]) -> None:
    p = start(procs, AGNHOST, "serve-hostname", "--port=0")
    port = p.port(r"Serving on port (\d+)")
    assert get(f"http://127.0.0.1:{port}/")[:2] == (200, HOST)
    assert get(f"http://127.0.0.1:{port}/anything")[1] == HOST
    assert p.stop() == 0


def test_serve_hostname_answers_over_tcp_and_udp(procs: list[Proc]) -> None:
    p = start(procs, AGNHOST, "serve-hostname", "--http=false", "--tcp", "--udp", "--port",
              str(free_port()))
    port = p.port(r"Serving on port (\d+)")
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        assert s.recv(1024).decode() == HOST
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
        u.settimeout(5)
        u.sendto(b"x", ("127.0.0.1", port))
        assert u.recv(1024).decode() == HOST
    assert p.stop() == 0


def test_serve_hostname_refuses_http_with_tcp(procs: list[Proc]) -> None:
    p = start(procs, AGNHOST, "serve-hostname", "--tcp")
    assert p.p.wait(10) == 1
    p.wait_for("Can't server TCP/UDP mode and HTTP mode at the same time")


# --- netexec --------------------------------------------------------------------------------


@pytest.fixture
def netexec(procs: list[Proc]) -> tuple[Proc, int, int]:
    p = start(procs, AGNHOST, "netexec", "--http-port=0", "--udp-port=0")
    http = p.port(r"Started HTTP server on port (\d+)")
    udp = p.port(r"Started UDP server on port \s*(\d+)")
    return p, http, udp


def test_netexec_endpoints(netexec: tuple[Proc, int, int]) -> None:
    _, port, _ = netexec
    base = f"http://127.0.0.1:{port}"
    assert get(f"{base}/")[1].startswith("NOW: ")
    assert get(f"{base}/hostname")[1] == HOST
    assert get(f"{base}/hostName")[1] == HOST
    assert get(f"{base}/echo?msg=hello%20there")[1] == "hello there"
    assert get(f"{base}/echo?msg=gone&code=404")[:2] == (404, "gone")
    assert re.fullmatch(r"127\.0\.0\.1:\d+", get(f"{base}/clientip")[1])
    assert get(f"{base}/serverport")[1] == str(port)
    assert get(f"{base}/healthz")[0] == 200
    assert get(f"{base}/readyz")[0] == 200
    req = urllib.request.Request(f"{base}/header?key=X-Test", headers={"X-Test": "abc"})
    with urllib.request.urlopen(req, timeout=5) as r:
        assert r.read() == b"abc"


def test_netexec_redirect(netexec: tuple[Proc, int, int]) -> None:
    _, port, _ = netexec
    conn = socket.create_connection(("127.0.0.1", port), timeout=5)
    conn.sendall(b"GET /redirect?location=/echo%3Fmsg%3Dx&code=307 HTTP/1.1\r\nHost: a\r\n"
                 b"Connection: close\r\n\r\n")
    head = conn.makefile("rb").read().decode()
    conn.close()
    assert head.startswith("HTTP/1.1 307 ")
    assert "Location: /echo?msg=x\r\n" in head


def test_netexec_shell(netexec: tuple[Proc, int, int]) -> None:
    _, port, _ = netexec
    status, body, _ = get(f"http://127.0.0.1:{port}/shell?cmd=echo%20hi")
    assert (status, json.loads(body)) == (200, {"output": "hi\n"})
    status, body, _ = get(f"http://127.0.0.1:{port}/shell?cmd=echo%20no;%20exit%203")
    assert (status, json.loads(body)) == (417, {"output": "no\n", "error": "exit status 3"})


def test_netexec_dial_http_udp_and_failure(netexec: tuple[Proc, int, int],
                                           procs: list[Proc]) -> None:
    _, port, udp = netexec
    target = start(procs, AGNHOST, "serve-hostname", "--port=0")
    tport = target.port(r"Serving on port (\d+)")
    base = f"http://127.0.0.1:{port}/dial"
    status, body, _ = get(f"{base}?request=hostname&protocol=http&host=127.0.0.1&port={tport}"
                          "&tries=3")
    assert (status, json.loads(body)) == (200, {"responses": [HOST, HOST, HOST]})
    status, body, _ = get(f"{base}?request=hostname&protocol=udp&host=127.0.0.1&port={udp}")
    assert (status, json.loads(body)) == (200, {"responses": [HOST]})
    status, body, _ = get(f"{base}?request=echo%20Hi&protocol=udp&host=127.0.0.1&port={udp}")
    assert json.loads(body) == {"responses": ["hi"]}  # upstream lower-cases UDP commands
    closed = free_port()
    status, body, _ = get(f"{base}?request=hostname&host=127.0.0.1&port={closed}")
    assert status == 417
    assert json.loads(body) == {"errors": [
        f'Get "http://127.0.0.1:{closed}/hostname": dial tcp 127.0.0.1:{closed}: connect: '
        "connection refused"]}
    assert get(f"{base}?host=127.0.0.1&port=1")[0] == 400  # no request


def test_netexec_exit_with_code(netexec: tuple[Proc, int, int]) -> None:
    p, port, _ = netexec
    with pytest.raises((urllib.error.URLError, ConnectionError, OSError)):
        get(f"http://127.0.0.1:{port}/exit?code=7")
    assert p.p.wait(10) == 7


def test_netexec_sigterm_exits_zero(netexec: tuple[Proc, int, int]) -> None:
    p, _, _ = netexec
    assert p.stop() == 0


# --- connect ----------------------------------------------------------------------------------


def connect(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", AGNHOST, "connect", *args],
                          capture_output=True, text=True, timeout=20,
                          env={**os.environ, "PYTHONPATH": SRC})


def test_connect_open_and_closed_ports() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        ok = connect(f"127.0.0.1:{port}", "--timeout=5s")
    assert (ok.returncode, ok.stderr) == (0, "")
    refused = connect(f"127.0.0.1:{free_port()}", "--timeout", "5s", "--protocol", "tcp")
    assert (refused.returncode, refused.stderr) == (1, "REFUSED\n")


def test_connect_bad_arguments() -> None:
    bad = connect("no-port-here")
    assert bad.returncode == 1
    assert bad.stderr.startswith("UNKNOWN: ")
    assert connect().returncode == 1


# --- porter -----------------------------------------------------------------------------------


def test_porter_serves_env_values(procs: list[Proc]) -> None:
    a, b = free_port(), free_port()
    p = start(procs, AGNHOST, "porter", env={f"SERVE_PORT_{a}": "foo", f"SERVE_PORT_{b}": "bar"})
    p.wait_for(f"on port {a}")
    p.wait_for(f"on port {b}")
    assert get(f"http://127.0.0.1:{a}/")[1] == "foo"
    assert get(f"http://127.0.0.1:{b}/x")[1] == "bar"
    assert p.stop() == 0


def test_porter_plan() -> None:
    assert porter_plan({"SERVE_PORT_80": "a", "SERVE_UDP_PORT_53": "b", "SERVE_TLS_PORT_443": "c",
                        "SERVE_PORT_x": "no", "PATH": "/bin"}) == [
        ("tcp", 80, "a"), ("tls", 443, "c"), ("udp", 53, "b")]


# --- http-echo --------------------------------------------------------------------------------

ECHO = "podnet.agent.builtin.httpecho"


def test_http_echo_text_status_and_health(procs: list[Proc]) -> None:
    p = start(procs, ECHO, "-text=hello world", "-listen=127.0.0.1:0", "-status-code=202")
    port = p.port(r"listening on 127\.0\.0\.1:(\d+)")
    status, body, headers = get(f"http://127.0.0.1:{port}/any/path")
    assert (status, body) == (202, "hello world\n")
    assert headers["X-App-Name"] == "http-echo"
    assert get(f"http://127.0.0.1:{port}/health")[:2] == (200, '{"status":"ok"}\n')
    assert p.stop() == 0


def test_http_echo_default_listen(procs: list[Proc]) -> None:
    p = start(procs, ECHO, "--text", "hi", f"-listen=:{free_port()}")
    port = p.port(r"listening on :(\d+)")
    assert get(f"http://127.0.0.1:{port}/")[1] == "hi\n"
    assert p.stop(signal.SIGINT) == 2  # upstream: an interrupt is not a clean exit


def test_http_echo_requires_text() -> None:
    r = subprocess.run([sys.executable, "-m", ECHO], capture_output=True, text=True,
                       timeout=20, env={**os.environ, "PYTHONPATH": SRC, "ECHO_TEXT": ""})
    assert (r.returncode, r.stderr) == (127, "Missing -text option OR ENV var TEXT is empty!\n")


# --- pause ------------------------------------------------------------------------------------


@pytest.mark.parametrize("argv", [("podnet.agent.builtin.pause",), (AGNHOST, "pause")])
def test_pause_exits_zero_on_sigterm(procs: list[Proc], argv: tuple[str, ...]) -> None:
    p = start(procs, *argv)
    time.sleep(0.3)  # let it reach the wait; a signal before that would still be queued
    assert p.p.poll() is None
    assert p.stop() == 0


def test_nginx_fallback_serves_the_welcome_page(procs: list[Proc]) -> None:
    port = free_port()
    p = Proc("-c", NGINX_BOOT, f"--port={port}")
    procs.append(p)
    p.wait_for("welcome page")
    status, body, headers = get(f"http://127.0.0.1:{port}/")
    assert status == 200
    assert "<title>Welcome to nginx!</title>" in body
    assert headers["Content-Type"].startswith("text/html")
    assert get(f"http://127.0.0.1:{port}/missing")[0] == 404
    assert p.stop() == 0


def test_nginx_config_keeps_state_in_its_directory() -> None:
    conf = nginx_config("/run/pod/c1/", 80)
    assert "daemon off;" in conf
    assert "root /run/pod/c1/html;" in conf
    assert "pid /run/pod/c1/nginx.pid;" in conf
    assert "listen 80;" in conf


# --- pure helpers -----------------------------------------------------------------------------


def test_go_durations() -> None:
    assert parse_duration("5s") == 5
    assert parse_duration("1m30s") == 90
    assert parse_duration("250ms") == pytest.approx(0.25)
    assert parse_duration("0") == 0
    with pytest.raises(ValueError):
        parse_duration("5")


def test_go_flags() -> None:
    spec: dict[str, FlagValue] = {"port": 9376, "http": True, "tcp": False, "timeout": 0.0,
                                  "text": ""}
    values, rest = parse_flags(["--port=80", "-tcp", "--http=false", "--timeout", "2s",
                                "-text=a=b", "host:1"], spec)
    assert values == {"port": 80, "http": False, "tcp": True, "timeout": 2.0, "text": "a=b"}
    assert rest == ["host:1"]


def test_resolv_conf() -> None:
    text = ("nameserver 10.96.0.10\nsearch default.svc.cluster.local svc.cluster.local "
            "cluster.local\noptions ndots:5\n")
    assert resolv_conf(text) == (
        ["default.svc.cluster.local", "svc.cluster.local", "cluster.local"], ["10.96.0.10"])
