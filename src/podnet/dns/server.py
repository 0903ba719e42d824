"""The cluster DNS server: UDP and TCP on one address, answers from the Zone.

The hot path (`_Udp.datagram_received`) is a dict lookup: the key is the question as sent,
lower-cased (name wire bytes + type + class), the value a `wire.Prepared` answer; the
response is the query's ID and question spliced around pre-encoded bytes. No coroutine,
no parsing, no allocation beyond the response. Everything else — first question for a
name since it changed, EDNS options we do not fast-path, errors, forwarding — takes the
slow path, which parses the query, asks the Zone, and caches what it encoded.

Cache invalidation is per change, not per query: each cached answer is indexed by every
owner name it was built from; when the Zone's `version` moves, its dirty names drop
exactly those entries, so the next query sees the change (no TTL-based staleness).

Until `zone.synced` every question about the cluster zone or a reverse zone is answered
SERVFAIL, never NXDOMAIN: a client must not cache a negative answer for a Service that
exists but has not been listed yet.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import socket
from collections.abc import Callable, Sequence
from time import perf_counter_ns
from typing import Any, cast

from podnet.dns.forward import Forwarder, Upstream, default_upstreams
from podnet.dns.querylog import QueryLog
from podnet.dns.records import (
    ANY,
    CNAME,
    NOERROR,
    NOTIMP,
    REFUSED,
    SERVFAIL,
    SRV,
    Answer,
    Record,
    Srv,
    Zone,
)
from podnet.dns.wire import (
    BADVERS,
    Prepared,
    Query,
    WireError,
    build_query,
    error_response,
    parse_answers,
    parse_query,
    respond,
    response_rcode,
    truncated_response,
    udp_limit,
)

_IN = 1
_AXFR, _IXFR = 252, 251
_REVERSE = (".in-addr.arpa.", ".ip6.arpa.")
_TCP_IDLE = 10.0  # seconds a TCP client may stay silent between queries (RFC 7766 §6.2.3)

Send = Callable[[bytes], None]


class DnsServer:
    """Serves `zone` on `host:port` (port 0: an ephemeral one, see `port` after start)."""

    def __init__(self, zone: Zone, host: str = "127.0.0.1", port: int = 53,
                 upstreams: Sequence[Upstream] | None = None,
                 query_log: QueryLog | None = None, *, cache_size: int = 200_000,
                 forward_timeout: float = 0.5, forward_deadline: float = 1.8) -> None:
        self.zone = zone
        self.host = host
        self.port = port
        self.query_log = query_log if query_log is not None else QueryLog()
        self.forwarder = Forwarder(default_upstreams() if upstreams is None else upstreams,
                                   timeout=forward_timeout, deadline=forward_deadline)
        self.cache_size = cache_size
        # question key → prepared answer; owner name → keys built from it; key → its names.
        self._cache: dict[bytes, Prepared] = {}
        self._deps: dict[str, set[bytes]] = {}
        self._key_deps: dict[bytes, tuple[str, ...]] = {}
        self._version = -1
        self._tasks: set[asyncio.Task[None]] = set()
        self._udp: asyncio.DatagramTransport | None = None
        self._tcp: asyncio.Server | None = None

    # --- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        for _ in range(20):
            usock = socket.socket(socket.AF_INET6 if ":" in self.host else socket.AF_INET,
                                  socket.SOCK_DGRAM)
            # A deep receive queue absorbs bursts while the loop is busy elsewhere.
            with contextlib.suppress(OSError):
                usock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
            usock.bind((self.host, self.port))
            port = usock.getsockname()[1]
            try:
                self._tcp = await asyncio.start_server(self._tcp_client, self.host, port,
                                                       reuse_address=True)
            except OSError as exc:
                usock.close()
                if exc.errno == errno.EADDRINUSE and self.port == 0:
                    continue  # the ephemeral UDP port is taken for TCP: pick another
                raise
            self.port = port
            transport, _ = await loop.create_datagram_endpoint(lambda: _Udp(self), sock=usock)
            self._udp = transport
            return
        raise OSError(errno.EADDRINUSE, "no free port for both UDP and TCP")

    async def stop(self) -> None:
        if self._udp is not None:
            self._udp.close()
            self._udp = None
        if self._tcp is not None:
            self._tcp.close()
            await self._tcp.wait_closed()
            self._tcp = None
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def __aenter__(self) -> DnsServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # --- answering ---------------------------------------------------------------------

    def refresh(self) -> None:
        """Drop cached answers built from names that changed since the last call."""
        self._version = self.zone.version
        deps, cache, key_deps = self._deps, self._cache, self._key_deps
        for name in self.zone.take_dirty():
            for key in deps.pop(name, ()):
                cache.pop(key, None)
                key_deps.pop(key, None)

    def handle(self, data: bytes, addr: tuple[str, int], tcp: bool, send: Send,
               t0: int) -> None:
        """Answer one query through `send` (now, or later when it is forwarded)."""
        if self.zone.version != self._version:
            self.refresh()
        z = data.find(0, 12)
        if z > 0 and data[2] & 0xF8 == 0 and data[4:10] == b"\x00\x01\x00\x00\x00\x00":
            name = data[12:z + 1].lower()
            p = self._cache.get(name + data[z + 1:z + 5])
            if p is not None:
                qend = z + 5
                edns = _edns(data, qend)
                if edns is not None:
                    send(respond(data, qend, p, edns[0], edns[1], tcp))
                    self.query_log.append((t0, addr, name, (data[z + 1] << 8) | data[z + 2],
                                           p.rcode, perf_counter_ns() - t0,
                                           "tcp" if tcp else "udp"))
                    return
        self._slow(data, addr, tcp, send, t0)

    def _slow(self, data: bytes, addr: tuple[str, int], tcp: bool, send: Send,
              t0: int) -> None:
        try:
            q = parse_query(data)
        except WireError as exc:
            if exc.rcode is not None:
                send(error_response(data, exc.rcode))
            return
        if q.opcode != 0:
            return self._reply(data, error_response(data, NOTIMP, q), q, addr, tcp, send, t0)
        if q.edns_size is not None and q.edns_version > 0:
            return self._reply(data, error_response(data, BADVERS, q), q, addr, tcp, send, t0)
        if q.qclass not in (_IN, ANY) or q.qtype in (_AXFR, _IXFR):
            return self._reply(data, error_response(data, REFUSED, q), q, addr, tcp, send, t0)
        zone = self.zone
        if not zone.synced and (zone.in_zone(q.qname) or q.qname.endswith(_REVERSE)):
            return self._reply(data, error_response(data, SERVFAIL, q), q, addr, tcp, send, t0)
        answer = zone.lookup(q.qname, q.qtype)
        if answer is None:
            self._spawn(self._forward(data, q, addr, tcp, send, t0))
            return None
        if answer.chase is not None:
            self._spawn(self._chase(data, q, answer, addr, tcp, send, t0))
            return None
        p = Prepared(q.qname_wire, answer)
        if q.qclass == _IN:
            self._remember(data[12:q.qend - 4].lower() + data[q.qend - 4:q.qend], p,
                           q.qname, answer)
        resp = respond(data, q.qend, p, q.edns_size, q.do, tcp)
        self._reply(data, resp, q, addr, tcp, send, t0)
        return None

    def _reply(self, data: bytes, resp: bytes, q: Query, addr: tuple[str, int], tcp: bool,
               send: Send, t0: int) -> None:
        if not tcp and len(resp) > udp_limit(q.edns_size):
            resp = truncated_response(data, q)
        send(resp)
        self.query_log.append((t0, addr, q.qname_wire.lower(), q.qtype, response_rcode(resp),
                               perf_counter_ns() - t0, "tcp" if tcp else "udp"))

    def _remember(self, key: bytes, p: Prepared, qname: str, answer: Answer) -> None:
        cache = self._cache
        if len(cache) >= self.cache_size:  # evict the oldest entry (dicts keep order)
            old = next(iter(cache))
            del cache[old]
            for n in self._key_deps.pop(old, ()):
                keys = self._deps.get(n)
                if keys is not None:
                    keys.discard(old)
                    if not keys:
                        del self._deps[n]
        names = {qname}
        for rec in (*answer.answers, *answer.additional):
            names.add(rec.name)
            if rec.rtype == SRV and isinstance(rec.rdata, Srv):
                names.add(rec.rdata.target)
        cache[key] = p
        self._key_deps[key] = tuple(names)
        for n in names:
            self._deps.setdefault(n, set()).add(key)

    def _spawn(self, coro: Any) -> None:
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _forward(self, data: bytes, q: Query, addr: tuple[str, int], tcp: bool,
                       send: Send, t0: int) -> None:
        resp = await self.forwarder.query(data, q.qend, tcp)
        self._reply(data, resp if resp is not None else error_response(data, SERVFAIL, q),
                    q, addr, tcp, send, t0)

    async def _chase(self, data: bytes, q: Query, answer: Answer, addr: tuple[str, int],
                     tcp: bool, send: Send, t0: int) -> None:
        """An ExternalName's CNAME, followed by the upstream's answer for its target."""
        assert answer.chase is not None
        rcode = answer.rcode
        extra: tuple[Record, ...] = ()
        if q.qtype != CNAME and self.forwarder.upstreams:
            msg, qend = build_query(answer.chase, q.qtype)
            resp = await self.forwarder.query(msg, qend)
            if resp is not None:
                with contextlib.suppress(WireError, ValueError, OSError):
                    up_rcode, recs = parse_answers(resp)
                    if up_rcode in (NOERROR, 3):
                        rcode, extra = up_rcode, tuple(recs)
        # Without an upstream answer the CNAME alone still lets the client chase it.
        full = Answer(rcode, (*answer.answers, *extra), answer.authority if not extra else ())
        self._reply(data, respond(data, q.qend, Prepared(q.qname_wire, full), q.edns_size, q.do,
                            tcp), q, addr, tcp, send, t0)

    async def _tcp_client(self, reader: asyncio.StreamReader,
                          writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        addr = (str(peer[0]), int(peer[1])) if peer else ("", 0)

        def send(resp: bytes) -> None:
            if not writer.is_closing():
                writer.write(len(resp).to_bytes(2, "big") + resp)

        try:
            while True:
                size = await asyncio.wait_for(reader.readexactly(2), _TCP_IDLE)
                data = await reader.readexactly(int.from_bytes(size, "big"))
                self.handle(data, addr, True, send, perf_counter_ns())
                await writer.drain()
        except (asyncio.IncompleteReadError, TimeoutError, ConnectionError):
            pass
        finally:
            writer.close()


def _edns(data: bytes, qend: int) -> tuple[int | None, bool] | None:
    """(EDNS UDP size or None without EDNS, DO bit) for a query we can answer from the cache.

    None sends the query down the slow path: extra records, an EDNS version we must
    reject, anything not shaped like a plain question with at most one OPT record.
    """
    n = len(data)
    if n == qend and data[10:12] == b"\x00\x00":
        return None, False
    if (data[10:12] == b"\x00\x01" and n >= qend + 11 and data[qend:qend + 3] == b"\x00\x00\x29"
            and data[qend + 6] == 0
            and n == qend + 11 + int.from_bytes(data[qend + 9:qend + 11], "big")):
        return int.from_bytes(data[qend + 3:qend + 5], "big"), bool(data[qend + 7] & 0x80)
    return None


class _Udp(asyncio.DatagramProtocol):
    """UDP: the hot path inlined (a cache hit costs one dict lookup and one sendto)."""

    def __init__(self, server: DnsServer) -> None:
        self.server = server
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # (asyncio's own UDP transport does not subclass DatagramTransport on 3.11)
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        t0 = perf_counter_ns()
        s = self.server
        transport = self.transport
        assert transport is not None
        if s.zone.version != s._version:
            s.refresh()
        # Same as DnsServer.handle, inlined: this is the per-query cost of the server.
        z = data.find(0, 12)
        if z > 0 and data[2] & 0xF8 == 0 and data[4:10] == b"\x00\x01\x00\x00\x00\x00":
            name = data[12:z + 1].lower()
            p = s._cache.get(name + data[z + 1:z + 5])
            if p is not None:
                qend = z + 5
                rd = data[2] & 1
                if data[10:12] == b"\x00\x00" and len(data) == qend:
                    transport.sendto(data[:2] + p.plain[rd] + data[12:qend] + p.plain_tail,
                                     addr)
                else:
                    edns = _edns(data, qend)
                    if edns is None:
                        s._slow(data, addr, False, lambda r: transport.sendto(r, addr), t0)
                        return
                    transport.sendto(respond(data, qend, p, edns[0], edns[1], False), addr)
                s.query_log.append((t0, addr, name, (data[z + 1] << 8) | data[z + 2], p.rcode,
                                    perf_counter_ns() - t0, "udp"))
                return
        s._slow(data, addr, False, lambda r: transport.sendto(r, addr), t0)

    def error_received(self, exc: Exception) -> None:
        pass  # ICMP errors for clients that went away: nothing to do
