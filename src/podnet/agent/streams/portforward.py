"""port-forward: a SPDY/3.1 session carried inside a websocket (`SPDY/3.1+portforward.k8s.io`).

The websocket's binary messages are slices of one SPDY byte stream (not aligned to
frames). kubectl opens, per local TCP connection, two streams sharing a `requestid`
header: first `streamtype: error` (which it half-closes at once), then `streamtype: data`,
both with `port`. We answer SYN_REPLY to each; once both are there we connect to the
port inside the pod and copy bytes both ways on the data stream (DATA with FIN is a
half-close). A failure is written as text on the error stream. Whatever happens, the
error stream is finished with FIN at the end, because kubectl waits for it before it
forgets the connection. PINGs are echoed (the client pings every 10 s).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from dataclasses import dataclass, field

from aiohttp import WSMsgType, web

from podnet.agent.streams import Connect, spdy

log = logging.getLogger("podnet.agent.streams")

PROTOCOL = "SPDY/3.1+portforward.k8s.io"
CHUNK = 32 * 1024


@dataclass
class _Pair:
    request_id: str
    port_header: str = ""
    error_id: int = 0
    data_id: int = 0
    inbound: asyncio.Queue[bytes | None] = field(default_factory=asyncio.Queue)
    task: asyncio.Task[None] | None = None


class PortForwardSession:
    """Serve one port-forward websocket until the client goes away."""

    def __init__(self, ws: web.WebSocketResponse, connect: Connect, *, pod: str = "") -> None:
        self.ws = ws
        self.connect = connect
        self.pod = pod
        self._decoder = spdy.FrameDecoder()
        self._encoder = spdy.FrameEncoder()
        self._out: asyncio.Queue[spdy.Frame | None] = asyncio.Queue(maxsize=256)
        self._pairs: dict[str, _Pair] = {}
        self._by_stream: dict[int, _Pair] = {}
        self._last_stream = 0

    async def run(self) -> None:
        writer = asyncio.create_task(self._write_loop())
        try:
            async for msg in self.ws:
                if msg.type != WSMsgType.BINARY:
                    if msg.type == WSMsgType.TEXT:
                        continue
                    break
                try:
                    frames = self._decoder.feed(msg.data)
                except spdy.ProtocolError as exc:
                    log.info("component=agent event=portforward-protocol-error error=%s", exc)
                    await self._out.put(spdy.GoAway(self._last_stream,
                                                    spdy.GOAWAY_PROTOCOL_ERROR))
                    break
                for frame in frames:
                    if not await self._handle(frame):
                        return
        finally:
            for pair in list(self._pairs.values()):
                if pair.task is not None:
                    pair.task.cancel()
            tasks = [p.task for p in self._pairs.values() if p.task is not None]
            if tasks:
                await asyncio.gather(*tasks, return_exceptions=True)
            with contextlib.suppress(asyncio.QueueFull):
                self._out.put_nowait(None)
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(writer, 2.0)
            writer.cancel()
            with contextlib.suppress(Exception):
                await self.ws.close()

    async def _write_loop(self) -> None:
        # Frames are encoded here, in send order, because header blocks share one
        # compression context for the whole session.
        while (frame := await self._out.get()) is not None:
            try:
                await self.ws.send_bytes(self._encoder.encode(frame))
            except (ConnectionError, RuntimeError):
                return

    async def _handle(self, frame: spdy.Frame) -> bool:
        """Act on one frame; False ends the session."""
        match frame:
            case spdy.Ping(pid):
                await self._out.put(spdy.Ping(pid))
            case spdy.SynStream():
                await self._open(frame)
            case spdy.Data(sid, data, fin):
                pair = self._by_stream.get(sid)
                if pair is not None and sid == pair.data_id:
                    if data:
                        pair.inbound.put_nowait(data)
                    if fin:
                        pair.inbound.put_nowait(None)
            case spdy.RstStream(sid, _status):
                pair = self._by_stream.get(sid)
                if pair is not None and pair.task is not None:
                    pair.task.cancel()
            case spdy.GoAway():
                return False
        return True

    async def _open(self, syn: spdy.SynStream) -> None:
        self._last_stream = max(self._last_stream, syn.stream_id)
        kind = _first(syn.headers, "streamtype")
        request_id = _first(syn.headers, "requestid")
        if not request_id:
            # Clients before requestid existed: the kubelet pairs by stream id instead.
            request_id = str(syn.stream_id - 2 if kind == "data" else syn.stream_id)
        if kind not in ("error", "data"):
            await self._out.put(spdy.RstStream(syn.stream_id, spdy.RST_PROTOCOL_ERROR))
            return
        await self._out.put(spdy.SynReply(syn.stream_id))
        pair = self._pairs.setdefault(request_id, _Pair(request_id))
        if kind == "error":
            pair.error_id = syn.stream_id
        else:
            pair.data_id = syn.stream_id
            pair.port_header = _first(syn.headers, "port")
        self._by_stream[syn.stream_id] = pair
        if pair.error_id and pair.data_id and pair.task is None:
            pair.task = asyncio.create_task(self._forward(pair))

    async def _forward(self, pair: _Pair) -> None:
        writer: asyncio.StreamWriter | None = None
        try:
            try:
                port = int(pair.port_header)
                if not 0 < port < 65536:
                    raise ValueError
            except ValueError:
                await self._fail(pair, f'invalid port "{pair.port_header}"')
                return
            try:
                reader, writer = await self.connect(port)
            except (TimeoutError, OSError) as exc:
                why = os.strerror(exc.errno).lower() if exc.errno else \
                    (str(exc) or "i/o timeout")
                await self._fail(pair, f"error forwarding port {port} to pod {self.pod}: "
                                       f"failed to connect to localhost:{port} inside the "
                                       f"pod: dial tcp4 127.0.0.1:{port}: connect: {why}")
                return
            except Exception as exc:  # the resolver's own refusal, e.g. pod gone
                await self._fail(pair, f"error forwarding port {port} to pod {self.pod}: "
                                       f"{exc}")
                return
            up = asyncio.create_task(_copy_in(pair.inbound, writer))
            try:
                while chunk := await reader.read(CHUNK):
                    await self._out.put(spdy.Data(pair.data_id, chunk))
            except (ConnectionError, OSError):
                pass
            # The pod closed its side. kubectl waits for the error stream to finish before
            # it closes the local connection, so finish both now rather than wait for the
            # client's FIN (which may never come while its local peer keeps the socket).
            await self._out.put(spdy.Data(pair.data_id, b"", fin=True))
            await self._out.put(spdy.Data(pair.error_id, b"", fin=True))
            up.cancel()
            with contextlib.suppress(asyncio.CancelledError, ConnectionError, OSError):
                await up
        finally:
            if writer is not None:
                writer.close()
                with contextlib.suppress(Exception):
                    await writer.wait_closed()
            self._pairs.pop(pair.request_id, None)
            self._by_stream.pop(pair.error_id, None)
            self._by_stream.pop(pair.data_id, None)

    async def _fail(self, pair: _Pair, message: str) -> None:
        log.info("component=agent event=portforward-error pod=%s error=%s", self.pod, message)
        await self._out.put(spdy.Data(pair.error_id, message.encode(), fin=True))
        await self._out.put(spdy.Data(pair.data_id, b"", fin=True))


async def _copy_in(inbound: asyncio.Queue[bytes | None], writer: asyncio.StreamWriter) -> None:
    while (data := await inbound.get()) is not None:
        writer.write(data)
        await writer.drain()
    if writer.can_write_eof():
        writer.write_eof()


def _first(headers: spdy.Headers, name: str) -> str:
    values = headers.get(name) or [""]
    return values[0]


async def serve(ws: web.WebSocketResponse, connect: Connect, *, pod: str = "") -> None:
    await PortForwardSession(ws, connect, pod=pod).run()
