"""The real kubectl against podnet's API server (TLS, admin certificate), whose
`node_proxy` relays logs, exec and port-forward to a local agent app built with
`streams.server.add_routes` and fake resolvers. No root needed: everything listens on
127.0.0.1 and the "pod" is a fake process plus a local echo server."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import pty
import shutil
import socket
import struct
import termios
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from podnet.apiserver import nodeproxy, pki
from podnet.apiserver.app import ApiServer, ServerConfig
from podnet.apiserver.request import RequestInfo
from podnet.cli import kubeconfig
from podnet.store.memory import MemoryStore
from tests.unit.agent.test_streams_remotecommand import FakeNode, echo_server

pytestmark = pytest.mark.skipif(shutil.which("kubectl") is None, reason="needs kubectl")

PODS = "/api/v1/namespaces/default/pods"
T0 = "2026-01-02T03:04:05.123456789Z"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Cluster:
    tmp: Path
    server: ApiServer
    node: FakeNode
    api_url: str
    session: aiohttp.ClientSession
    ssl: Any

    def env(self) -> dict[str, str]:
        return {**os.environ, "KUBECONFIG": str(self.tmp / "kubeconfig"),
                "HOME": str(self.tmp)}

    async def kubectl(self, *args: str, stdin: bytes | None = None,
                      timeout: float = 30) -> tuple[int, str, str]:
        proc = await asyncio.create_subprocess_exec(
            "kubectl", f"--cache-dir={self.tmp / 'cache'}", *args,
            stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=self.env())
        try:
            out, err = await asyncio.wait_for(proc.communicate(stdin), timeout)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise
        assert proc.returncode is not None
        return proc.returncode, out.decode(), err.decode()

    async def api(self, method: str, path: str, body: Any = None) -> Any:
        async with self.session.request(method, self.api_url + path, json=body,
                                        ssl=self.ssl) as resp:
            doc = await resp.json()
            assert resp.status < 300, doc
            return doc


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[Cluster]:
    keys = await asyncio.to_thread(pki.ensure_pki, tmp_path)
    port = free_port()
    server = ApiServer(MemoryStore(), ServerConfig(host="127.0.0.1", port=port),
                       ssl_context=pki.server_ssl_context(keys))
    echo = await echo_server()
    node = FakeNode(tmp_path / "app.log", echo.sockets[0].getsockname()[1])
    agent = TestServer(node.app(), host="127.0.0.1")
    await agent.start_server()
    agent_url = str(agent.make_url("")).rstrip("/")

    async def node_proxy(request: web.Request, info: RequestInfo,
                         pod: dict[str, Any]) -> web.StreamResponse:
        assert pod["spec"]["nodeName"] == "node-0"
        return await nodeproxy.proxy_pod_stream(request, info, pod, agent_url, None)

    server.node_proxy = node_proxy  # type: ignore[attr-defined]
    await server.start()
    kubeconfig.write_admin_kubeconfig(tmp_path / "kubeconfig", f"https://127.0.0.1:{port}",
                                      keys, "podnet", "podnet")
    session = aiohttp.ClientSession()
    c = Cluster(tmp_path, server, node, f"https://127.0.0.1:{port}", session,
                pki.client_ssl_context(keys))
    try:
        pod = await c.api("POST", PODS, {
            "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web"},
            "spec": {"nodeName": "node-0", "containers": [
                {"name": "app", "image": "busybox", "ports": [{"containerPort": 8080}]}]}})
        pod["status"] = {"phase": "Running", "podIP": "10.244.0.5"}
        await c.api("PUT", f"{PODS}/web/status", pod)
        yield c
    finally:
        await session.close()
        await server.stop()
        await agent.close()
        echo.close()


async def test_exec_output_and_exit_code(cluster: Cluster) -> None:
    rc, out, err = await cluster.kubectl("exec", "web", "--", "report", "--flag")
    assert rc == 3, err
    assert out == "out line\n"
    assert "err line" in err
    assert "command terminated with exit code 3" in err
    assert cluster.node.requests[-1].command == ("report", "--flag")


async def test_exec_with_stdin(cluster: Cluster) -> None:
    rc, out, err = await cluster.kubectl("exec", "-i", "web", "-c", "app", "--", "cat",
                                         stdin=b"line one\nline two\n")
    assert rc == 0, err
    assert out == "line one\nline two\n"
    assert cluster.node.processes[-1].stdin_closed


async def test_exec_with_a_tty(cluster: Cluster) -> None:
    """`kubectl exec -it`: a terminal on kubectl's side, so it sends the window size."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 33, 101, 0, 0))
    proc = await asyncio.create_subprocess_exec(
        "kubectl", f"--cache-dir={cluster.tmp / 'cache'}", "exec", "-it", "web", "--", "cat",
        stdin=slave, stdout=slave, stderr=slave, env=cluster.env())
    os.close(slave)
    loop = asyncio.get_running_loop()
    seen = b""
    try:
        for _ in range(200):
            if cluster.node.processes and cluster.node.processes[-1].resizes:
                break
            await asyncio.sleep(0.05)
        await loop.run_in_executor(None, os.write, master, b"hi there\x04")
        while b"hi there" not in seen:
            seen += await asyncio.wait_for(loop.run_in_executor(None, os.read, master, 1024),
                                           10)
        assert await asyncio.wait_for(proc.wait(), 10) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        os.close(master)
    assert cluster.node.requests[-1].tty
    assert cluster.node.processes[-1].resizes[0] == (101, 33)


async def test_exec_into_unknown_container_says_so(cluster: Cluster) -> None:
    rc, _, err = await cluster.kubectl("exec", "web", "-c", "nope", "--", "ls")
    assert rc != 0
    assert "container nope is not valid for pod web" in err


async def test_logs_tail_and_timestamps(cluster: Cluster) -> None:
    (cluster.tmp / "app.log").write_text(
        f"{T0} stdout first\n{T0} stderr second\n{T0} stdout third\n")
    rc, out, err = await cluster.kubectl("logs", "web")
    assert (rc, out) == (0, "first\nsecond\nthird\n"), err
    rc, out, err = await cluster.kubectl("logs", "web", "--tail=1", "--timestamps")
    assert (rc, out) == (0, f"{T0} third\n"), err
    rc, out, err = await cluster.kubectl("logs", "web", "--previous")
    assert rc == 1
    assert 'previous terminated container "app" in pod "web" not found' in err


async def test_logs_follow(cluster: Cluster) -> None:
    log = cluster.tmp / "app.log"
    log.write_text(f"{T0} stdout before\n")
    proc = await asyncio.create_subprocess_exec(
        "kubectl", f"--cache-dir={cluster.tmp / 'cache'}", "logs", "-f", "web",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=cluster.env())
    try:
        assert proc.stdout is not None
        first = await asyncio.wait_for(proc.stdout.readline(), 20)
        assert first == b"before\n"
        with log.open("a") as f:
            f.write(f"{T0} stdout after\n")
        second = await asyncio.wait_for(proc.stdout.readline(), 10)
        assert second == b"after\n"
        cluster.node.running = False  # the container stopped: the stream ends
        assert await asyncio.wait_for(proc.wait(), 10) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def _echo_through(port: int, payload: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(payload)
    await writer.drain()
    writer.write_eof()
    data = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    with contextlib.suppress(ConnectionError):
        await writer.wait_closed()
    return data


async def test_port_forward_two_connections(cluster: Cluster) -> None:
    local = free_port()
    proc = await asyncio.create_subprocess_exec(
        "kubectl", f"--cache-dir={cluster.tmp / 'cache'}", "port-forward", "pod/web",
        f"{local}:8080", "--address", "127.0.0.1",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=cluster.env())
    try:
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), 20)
        assert f"Forwarding from 127.0.0.1:{local} -> 8080".encode() in line
        assert await _echo_through(local, b"first connection") == b"first connection"
        big = os.urandom(300_000)
        results = await asyncio.gather(_echo_through(local, b"second"),
                                       _echo_through(local, big))
        assert list(results) == [b"second", big]
    finally:
        proc.terminate()
        await proc.wait()


async def test_unreachable_agent_errors(cluster: Cluster) -> None:
    dead = f"http://127.0.0.1:{free_port()}"

    async def node_proxy(request: web.Request, info: RequestInfo,
                         pod: dict[str, Any]) -> web.StreamResponse:
        return await nodeproxy.proxy_pod_stream(request, info, pod, dead, None)

    cluster.server.node_proxy = node_proxy  # type: ignore[attr-defined]
    refused = f"dial tcp 127.0.0.1:{dead.rsplit(':', 1)[1]}: connect: connection refused"
    rc, _, err = await cluster.kubectl("exec", "web", "--", "report")
    assert rc == 1
    assert f"error dialing backend: {refused}" in err
    rc, _, err = await cluster.kubectl("logs", "web")
    assert rc == 1
    assert f'Get "{dead}/containerLogs/default/web/app": {refused}' in err
    rc, _, err = await cluster.kubectl("port-forward", "pod/web", f"{free_port()}:8080",
                                       timeout=20)
    assert rc == 1
    assert f"error upgrading connection: error dialing backend: {refused}" in err


async def test_port_forward_to_a_closed_port_reports_the_error(cluster: Cluster) -> None:
    local = free_port()
    proc = await asyncio.create_subprocess_exec(
        "kubectl", f"--cache-dir={cluster.tmp / 'cache'}", "port-forward", "pod/web",
        f"{local}:9999", "--address", "127.0.0.1",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=cluster.env())
    try:
        assert proc.stdout is not None and proc.stderr is not None
        await asyncio.wait_for(proc.stdout.readline(), 20)
        assert await _echo_through(local, b"anyone?") == b""
        err = await asyncio.wait_for(proc.stderr.read(), 20)
        # kubectl 1.32 gives up on the first forwarding error, as with a real kubelet.
        assert await asyncio.wait_for(proc.wait(), 10) == 1
    finally:
        if proc.returncode is None:
            proc.terminate()
        await proc.wait()
    assert f"an error occurred forwarding {local} -> 9999: error forwarding port 9999 ".encode() \
        + b"to pod default/web: failed to connect to localhost:9999 inside the pod: " \
        + b"dial tcp4 127.0.0.1:9999: connect: connection refused" in err
    assert b"error: lost connection to pod" in err
