"""exec over websocket v5.channel.k8s.io (and v4) against the agent's routes, with a fake
process standing in for the container runtime. The fakes here are also used by the
kubectl end-to-end test."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from podnet.agent.streams import Connect, ExecRequest, StreamError
from podnet.agent.streams import server as streams_server
from podnet.agent.streams.logs import LogFile


class FakeProcess:
    """What the runtime gives exec. Commands it knows:

    - `report`: prints a line on stdout and one on stderr, exits 3;
    - `cat`: echoes stdin to stdout until stdin closes (or a ^D arrives, as a terminal
      in raw mode sends it), exits 0;
    - `sleep`: prints nothing until killed (exit 137).
    """

    def __init__(self, command: tuple[str, ...]) -> None:
        self.command = command
        self.out: asyncio.Queue[tuple[str, bytes] | None] = asyncio.Queue()
        self.stdin = bytearray()
        self.stdin_closed = False
        self.resizes: list[tuple[int, int]] = []
        self.killed = False
        self.code = 0
        if command[:1] == ("report",):
            self.out.put_nowait(("stdout", b"out line\n"))
            self.out.put_nowait(("stderr", b"err line\n"))
            self.out.put_nowait(None)
            self.code = 3

    async def read(self) -> tuple[str, bytes] | None:
        return await self.out.get()

    async def write(self, data: bytes) -> None:
        self.stdin += data
        if self.command[:1] == ("cat",) and not self.stdin_closed:
            self.out.put_nowait(("stdout", data))
            if b"\x04" in data:
                self.close_stdin()

    def close_stdin(self) -> None:
        if not self.stdin_closed and self.command[:1] == ("cat",):
            self.out.put_nowait(None)
        self.stdin_closed = True

    def resize(self, cols: int, rows: int) -> None:
        self.resizes.append((cols, rows))

    async def wait(self) -> int:
        return self.code

    def kill(self) -> None:
        if not self.killed and self.command[:1] == ("sleep",):
            self.code = 137
            self.out.put_nowait(None)
        self.killed = True


class FakeNode:
    """Resolvers for `add_routes`: one pod default/web with container app."""

    def __init__(self, log_path: Path | None = None, echo_port: int = 0) -> None:
        self.processes: list[FakeProcess] = []
        self.requests: list[ExecRequest] = []
        self.log_path = log_path
        self.running = True
        self.echo_port = echo_port

    async def resolve_exec(self, req: ExecRequest) -> FakeProcess:
        if (req.namespace, req.pod) != ("default", "web"):
            raise StreamError(f'pod "{req.pod}" not found', 404, "NotFound")
        if req.container != "app":
            raise StreamError(f'container not found ("{req.container}")', 404, "NotFound")
        self.requests.append(req)
        proc = FakeProcess(req.command)
        self.processes.append(proc)
        return proc

    async def resolve_connect(self, namespace: str, pod: str) -> Connect:
        if (namespace, pod) != ("default", "web"):
            raise StreamError(f'pod "{pod}" not found', 404, "NotFound")

        async def connect(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
            if port != 8080:
                raise ConnectionRefusedError(111, "Connection refused")
            return await asyncio.open_connection("127.0.0.1", self.echo_port)

        return connect

    async def resolve_log(self, namespace: str, pod: str, container: str) -> LogFile:
        if (namespace, pod, container) != ("default", "web", "app") or self.log_path is None:
            raise StreamError(f'pod "{pod}" not found', 404, "NotFound")
        return LogFile(self.log_path, lambda: self.running)

    def app(self) -> web.Application:
        app = web.Application()
        streams_server.add_routes(app, self.resolve_exec, self.resolve_connect,
                                  self.resolve_log)
        return app


async def echo_server() -> asyncio.Server:
    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        finally:
            writer.close()

    return await asyncio.start_server(echo, "127.0.0.1", 0)


# ---- tests --------------------------------------------------------------------------
@pytest.fixture
async def agent() -> AsyncIterator[tuple[FakeNode, str]]:
    node = FakeNode()
    server = TestServer(node.app(), host="127.0.0.1")
    await server.start_server()
    try:
        yield node, str(server.make_url("")).rstrip("/")
    finally:
        await server.close()


async def run_exec(url: str, protocol: str = "v5.channel.k8s.io",
                   send: list[bytes] | None = None) -> tuple[dict[int, bytes], dict[str, Any]]:
    """Drive one exec: send the given raw messages, collect output per channel."""
    out: dict[int, bytes] = {}
    status: dict[str, Any] = {}
    async with aiohttp.ClientSession() as session, \
            session.ws_connect(url, protocols=(protocol,)) as ws:
        assert ws.protocol == protocol
        for raw in send or []:
            await ws.send_bytes(raw)
        async for msg in ws:
            assert msg.type == aiohttp.WSMsgType.BINARY
            channel, payload = msg.data[0], msg.data[1:]
            if channel == 3:
                status = json.loads(payload)
            else:
                out[channel] = out.get(channel, b"") + payload
    return out, status


async def test_exit_code_becomes_non_zero_exit_status(agent: tuple[FakeNode, str]) -> None:
    node, base = agent
    out, status = await run_exec(
        f"{base}/exec/default/web/app?command=report&stdout=true&stderr=true")
    assert out == {1: b"out line\n", 2: b"err line\n"}
    assert status["status"] == "Failure"
    assert status["reason"] == "NonZeroExitCode"
    assert status["details"]["causes"] == [{"reason": "ExitCode", "message": "3"}]
    assert node.requests[0].command == ("report",)


async def test_stdin_echo_and_half_close_v5(agent: tuple[FakeNode, str]) -> None:
    node, base = agent
    out, status = await run_exec(
        f"{base}/exec/default/web/app?command=cat&stdin=true&stdout=true&tty=true",
        send=[b"\x04" + b'{"Width":120,"Height":40}', b"\x00hello ", b"\x00world",
              b"\xff\x00"])
    assert out == {1: b"hello world"}
    assert status == {"metadata": {}, "status": "Success"}
    proc = node.processes[0]
    assert proc.resizes == [(120, 40)]
    assert proc.stdin_closed
    assert node.requests[0].tty and node.requests[0].stdin


async def test_v4_is_accepted(agent: tuple[FakeNode, str]) -> None:
    _, base = agent
    out, status = await run_exec(f"{base}/exec/default/web/app?command=report",
                                 protocol="v4.channel.k8s.io")
    assert out[1] == b"out line\n"
    assert status["reason"] == "NonZeroExitCode"


async def test_client_going_away_kills_the_process(agent: tuple[FakeNode, str]) -> None:
    node, base = agent
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(f"{base}/exec/default/web/app?command=sleep",
                                      protocols=("v5.channel.k8s.io",)):
            for _ in range(100):
                if node.processes:
                    break
                await asyncio.sleep(0.01)
        for _ in range(100):
            if node.processes[0].killed:
                break
            await asyncio.sleep(0.01)
    assert node.processes[0].killed


async def test_refusals_are_statuses_before_upgrade(agent: tuple[FakeNode, str]) -> None:
    _, base = agent
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.WSServerHandshakeError) as err:
            await session.ws_connect(f"{base}/exec/default/web/nope?command=ls",
                                     protocols=("v5.channel.k8s.io",))
        assert err.value.status == 404
        assert err.value.headers is not None
        doc = json.loads(err.value.headers[streams_server.STATUS_HEADER])
        assert doc["message"] == 'container not found ("nope")'
        # Not an upgrade at all, and an unknown subprotocol.
        async with session.get(f"{base}/exec/default/web/app?command=ls") as resp:
            assert resp.status == 400
            assert (await resp.json())["message"] == "Upgrade request required"
        with pytest.raises(aiohttp.WSServerHandshakeError) as err:
            await session.ws_connect(f"{base}/exec/default/web/app?command=ls",
                                     protocols=("channel.k8s.io",))
        assert err.value.status == 400
