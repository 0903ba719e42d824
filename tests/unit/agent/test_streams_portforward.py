"""port-forward over SPDY/3.1-in-websocket against the agent's route, driven by a small
SPDY client written here (what kubectl's portforward package does), to a local echo
server standing in for the pod's port."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from podnet.agent.streams import portforward, spdy
from tests.unit.agent.test_streams_remotecommand import FakeNode, echo_server


@dataclass
class Forward:
    """The client's view of one forwarded connection (an error and a data stream)."""

    error_id: int
    data_id: int
    data: bytearray = field(default_factory=bytearray)
    error: bytearray = field(default_factory=bytearray)
    data_done: asyncio.Event = field(default_factory=asyncio.Event)
    error_done: asyncio.Event = field(default_factory=asyncio.Event)
    replies: set[int] = field(default_factory=set)


class SpdyClient:
    def __init__(self, ws: aiohttp.ClientWebSocketResponse, slice_size: int = 0) -> None:
        self.ws = ws
        self.enc = spdy.FrameEncoder()
        self.dec = spdy.FrameDecoder()
        self.next_id = 1
        self.by_stream: dict[int, Forward] = {}
        self.pongs: list[int] = []
        self.slice_size = slice_size
        self.reader = asyncio.create_task(self._read())

    async def send(self, frame: spdy.Frame) -> None:
        wire = self.enc.encode(frame)
        step = self.slice_size or len(wire)
        for i in range(0, len(wire), step):  # frames need not align with messages
            await self.ws.send_bytes(wire[i:i + step])

    async def open(self, port: int, request_id: str) -> Forward:
        err_id, data_id = self.next_id, self.next_id + 2
        self.next_id += 4
        fwd = Forward(err_id, data_id)
        self.by_stream[err_id] = self.by_stream[data_id] = fwd
        base = {"port": [str(port)], "requestid": [request_id]}
        await self.send(spdy.SynStream(err_id, {"streamtype": ["error"], **base}))
        await self.send(spdy.Data(err_id, b"", fin=True))  # kubectl half-closes it at once
        await self.send(spdy.SynStream(data_id, {"streamtype": ["data"], **base}))
        return fwd

    async def _read(self) -> None:
        async for msg in self.ws:
            if msg.type != aiohttp.WSMsgType.BINARY:
                break
            for frame in self.dec.feed(msg.data):
                match frame:
                    case spdy.SynReply(sid):
                        self.by_stream[sid].replies.add(sid)
                    case spdy.Ping(pid):
                        self.pongs.append(pid)
                    case spdy.Data(sid, data, fin):
                        fwd = self.by_stream[sid]
                        if sid == fwd.data_id:
                            fwd.data += data
                            if fin:
                                fwd.data_done.set()
                        else:
                            fwd.error += data
                            if fin:
                                fwd.error_done.set()


@pytest.fixture
async def base() -> AsyncIterator[str]:
    echo = await echo_server()
    node = FakeNode(echo_port=echo.sockets[0].getsockname()[1])
    server = TestServer(node.app(), host="127.0.0.1")
    await server.start_server()
    try:
        yield str(server.make_url("")).rstrip("/")
    finally:
        await server.close()
        echo.close()


async def _session(base: str, slice_size: int = 0) -> tuple[aiohttp.ClientSession,
                                                            aiohttp.ClientWebSocketResponse,
                                                            SpdyClient]:
    session = aiohttp.ClientSession()
    ws = await session.ws_connect(f"{base}/portForward/default/web",
                                  protocols=(portforward.PROTOCOL,))
    assert ws.protocol == portforward.PROTOCOL
    return session, ws, SpdyClient(ws, slice_size)


async def test_echo_through_one_connection(base: str) -> None:
    session, ws, client = await _session(base)
    try:
        fwd = await client.open(8080, "0")
        await client.send(spdy.Data(fwd.data_id, b"hello "))
        await client.send(spdy.Data(fwd.data_id, b"pod", fin=True))
        await asyncio.wait_for(fwd.data_done.wait(), 5)
        await asyncio.wait_for(fwd.error_done.wait(), 5)
        assert bytes(fwd.data) == b"hello pod"
        assert bytes(fwd.error) == b""
        assert fwd.replies == {fwd.error_id, fwd.data_id}
    finally:
        await ws.close()
        await session.close()


async def test_concurrent_connections_pings_and_sliced_frames(base: str) -> None:
    session, ws, client = await _session(base, slice_size=7)
    try:
        fwds = [await client.open(8080, str(i)) for i in range(3)]
        await client.send(spdy.Ping(1))
        payloads = [bytes([65 + i]) * (50_000 * (i + 1)) for i in range(3)]
        for fwd, payload in zip(reversed(fwds), reversed(payloads), strict=True):
            await client.send(spdy.Data(fwd.data_id, payload, fin=True))
        for fwd, payload in zip(fwds, payloads, strict=True):
            await asyncio.wait_for(fwd.data_done.wait(), 10)
            assert bytes(fwd.data) == payload
        assert client.pongs == [1]
    finally:
        await ws.close()
        await session.close()


async def test_refused_port_is_reported_on_the_error_stream(base: str) -> None:
    session, ws, client = await _session(base)
    try:
        fwd = await client.open(9999, "7")
        await asyncio.wait_for(fwd.error_done.wait(), 5)
        await asyncio.wait_for(fwd.data_done.wait(), 5)
        message = bytes(fwd.error).decode()
        assert message.startswith("error forwarding port 9999 to pod default/web: "
                                  "failed to connect to localhost:9999 inside the pod: "
                                  "dial tcp4 127.0.0.1:9999: connect: connection refused")
        # The session survives: the next connection works.
        ok = await client.open(8080, "8")
        await client.send(spdy.Data(ok.data_id, b"still here", fin=True))
        await asyncio.wait_for(ok.data_done.wait(), 5)
        assert bytes(ok.data) == b"still here"
    finally:
        await ws.close()
        await session.close()


async def test_unknown_pod_is_refused_before_upgrade(base: str) -> None:
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.WSServerHandshakeError) as err:
            await session.ws_connect(f"{base}/portForward/default/other",
                                     protocols=(portforward.PROTOCOL,))
        assert err.value.status == 404


async def test_reset_stream_closes_the_pod_connection(base: str) -> None:
    session, ws, client = await _session(base)
    try:
        fwd = await client.open(8080, "0")
        await client.send(spdy.Data(fwd.data_id, b"x"))
        for _ in range(100):
            if fwd.data:
                break
            await asyncio.sleep(0.01)
        await client.send(spdy.RstStream(fwd.data_id, spdy.RST_CANCEL))
        again = await client.open(8080, "1")
        await client.send(spdy.Data(again.data_id, b"y", fin=True))
        await asyncio.wait_for(again.data_done.wait(), 5)
        assert bytes(again.data) == b"y"
    finally:
        await ws.close()
        await session.close()
