"""The cluster DNS server: a feeder beside the informers, an answering process on the port.

Two processes, so that the one on the hot path stays small (see `worker.py`):

- **this one (the feeder)** owns the `Zone`. After every change it encodes the answers of
  exactly the owner names the Zone reports dirty (`table.changes`) and pushes them to the
  worker over a socketpair, before the mutation returns: the next query sees the change.
  Whole tables (at start, at the first sync, to a new worker) go in chunks between which
  the event loop runs; the worker relays every query until it has one.
  It also answers whatever the worker relays (queries before the first full sync,
  forwarding of outside names, ExternalName chasing, ANY/AXFR, unusual EDNS, malformed
  input) with the full logic below, and keeps the query log (the worker sends its entries
  in batches).
- **the worker** (`python -I -S`, see `_WORKER_BOOT`) inherits the UDP and TCP sockets
  (this process keeps them, to start another worker on them if one dies), holds one
  dict of pre-encoded answers, and answers from it: a cache hit is one dict lookup and a
  splice of the query's ID and question.

Until `zone.synced` every question about the cluster zone or a reverse zone is answered
SERVFAIL, never NXDOMAIN: a client must not cache a negative answer for a Service that
exists but has not been listed yet (the worker relays everything until then).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import socket
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from time import perf_counter_ns
from typing import Any

from podnet.dns import table, worker
from podnet.dns.forward import Forwarder, Upstream, default_upstreams
from podnet.dns.querylog import QueryLog
from podnet.dns.records import ANY, CNAME, NOERROR, NOTIMP, REFUSED, SERVFAIL, Answer, Record, Zone
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

log = logging.getLogger("podnet.dns")

_IN = 1
_AXFR, _IXFR = 252, 251
_REVERSE = (".in-addr.arpa.", ".ip6.arpa.")
# Owner names per frame when a whole table is pushed. Encoding takes ~40 µs a name, so a
# chunk keeps the event loop for ~20 ms; the loop runs between chunks.
_CHUNK = 500
_STOP_WAIT = 3.0  # seconds the worker gets to exit after its control socket closes
_RESTART_PAUSE = 0.5  # seconds before a worker that died is replaced

Send = Callable[[bytes], None]

# How the worker starts: `-I -S` (no site-packages, no environment), and `worker.py`
# imported as a top-level module from its folder (after the standard library on the
# path), not through the `podnet` package, whose imports are heavy, and not run as a
# script, which would compile it in the process (its cached bytecode is used instead).
_WORKER_BOOT = ("import sys; sys.path.append(sys.argv[1]); import worker; "
                "sys.exit(worker.main(sys.argv[2:]))")


WORKER_NICE = -20


class DnsServer:
    """Serves `zone` on `host:port` (port 0: an ephemeral one, see `port` after start)."""

    def __init__(self, zone: Zone, host: str = "127.0.0.1", port: int = 53,
                 upstreams: Sequence[Upstream] | None = None,
                 query_log: QueryLog | None = None, *,
                 forward_timeout: float = 0.5, forward_deadline: float = 1.8) -> None:
        self.zone = zone
        self.host = host
        self.port = port
        self.query_log = query_log if query_log is not None else QueryLog()
        self.forwarder = Forwarder(default_upstreams() if upstreams is None else upstreams,
                                   timeout=forward_timeout, deadline=forward_deadline)
        self.worker: subprocess.Popen[bytes] | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._reader_task: asyncio.Task[None] | None = None
        self._synced_sent = False
        self._bulk: asyncio.Task[None] | None = None
        self._stopping = False
        self._socks: tuple[socket.socket, ...] = ()
        self.relayed = 0  # queries the worker could not answer alone (tests, diagnostics)
        self._tasks: set[asyncio.Task[None]] = set()

    # --- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        # Kept open here (never read) so that a new worker can take over the same port.
        self._socks = self._bind()
        await self._start_worker()
        self.zone.on_change = self._on_change

    async def _start_worker(self) -> None:
        """Spawn the worker on our sockets and give it the config and the whole table."""
        udp, tcp = self._socks
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            fds = (theirs.fileno(), udp.fileno(), tcp.fileno())
            self.worker = subprocess.Popen(
                [sys.executable, "-I", "-S", "-c", _WORKER_BOOT,
                 str(Path(worker.__file__).parent), *map(str, fds)],
                pass_fds=fds, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
            # The answering process is the latency-critical one: it shares the cores with
            # this process (informers, the proxy, pod work) and must win when both are
            # runnable. In bench/dns, with both on one core, p99 at half load was ~1.5 ms
            # at nice 0, ~1 ms at -10 and ~0.4 ms at -20 (medians). The cost: a query
            # flood can take most of a core from the processes that share it (the kernel
            # still moves them to the other cores). Lowering a nice value needs root.
            with contextlib.suppress(OSError):
                os.setpriority(os.PRIO_PROCESS, self.worker.pid, WORKER_NICE)
        finally:
            theirs.close()
        reader, self._writer = await asyncio.open_unix_connection(sock=ours)
        self._reader_task = asyncio.get_running_loop().create_task(self._read(reader))
        self._send(worker.CONFIG, table.config(self.zone))
        self._synced_sent = False
        self.zone.take_dirty()  # the whole table goes now
        self._start_bulk(table.all_names(self.zone))

    def _bind(self) -> tuple[socket.socket, socket.socket]:
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        for _ in range(20):
            udp = socket.socket(family, socket.SOCK_DGRAM)
            # A deep receive queue absorbs bursts while the worker applies a change.
            with contextlib.suppress(OSError):
                udp.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
            udp.bind((self.host, self.port))
            port = udp.getsockname()[1]
            tcp = socket.socket(family, socket.SOCK_STREAM)
            tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                tcp.bind((self.host, port))
                tcp.listen(128)
            except OSError as exc:
                udp.close()
                tcp.close()
                if exc.errno == errno.EADDRINUSE and self.port == 0:
                    continue  # the ephemeral UDP port is taken for TCP: pick another
                raise
            self.port = port
            return udp, tcp
        raise OSError(errno.EADDRINUSE, "no free port for both UDP and TCP")

    async def stop(self) -> None:
        """Stop the worker (it exits when its control socket closes) and every task."""
        if self.zone.on_change == self._on_change:
            self.zone.on_change = None
        self._stopping = True
        if self._bulk is not None:
            self._bulk.cancel()
            with contextlib.suppress(BaseException):
                await self._bulk
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(Exception):
                await self._writer.wait_closed()
            self._writer = None
        if self._reader_task is not None:
            self._reader_task.cancel()
            with contextlib.suppress(BaseException):
                await self._reader_task
            self._reader_task = None
        await self._reap()
        for s in self._socks:
            s.close()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _reap(self) -> None:
        """Wait for the worker to exit (its control socket is closed), else kill it."""
        proc, self.worker = self.worker, None
        if proc is None:
            return
        for _ in range(int(_STOP_WAIT / 0.01)):
            if proc.poll() is not None:
                return
            await asyncio.sleep(0.01)
        proc.kill()
        await asyncio.to_thread(proc.wait)

    async def __aenter__(self) -> DnsServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def drain(self) -> None:
        """Wait until what was pushed to the worker (a whole table included) has left
        this process; the worker applies it before the next query it reads."""
        if self._bulk is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.shield(self._bulk)
        if self._writer is not None:
            await self._writer.drain()

    # --- feeding the worker ------------------------------------------------------------

    def _send(self, kind: int, payload: Any) -> None:
        if self._writer is not None and not self._writer.is_closing():
            self._writer.write(worker.frame(kind, payload))

    def _push(self, names: Sequence[str]) -> None:
        for i in range(0, len(names), _CHUNK):
            self._send(worker.TABLE, table.changes(self.zone, names[i:i + _CHUNK]))

    def _on_change(self) -> None:
        """After each Zone mutation: encode and send what changed (before it returns)."""
        if not self.zone.synced or self._bulk is not None:
            return  # the first sync's push, or the one under way, takes the dirty names
        if self._synced_sent:
            self._push(sorted(self.zone.take_dirty()))
        else:
            self._start_bulk(sorted(self.zone.take_dirty()))

    def _start_bulk(self, names: Sequence[str]) -> None:
        if self._bulk is not None:
            self._bulk.cancel()  # a new worker's whole-table push supersedes it
        self._bulk = asyncio.get_running_loop().create_task(self._push_bulk(names))

    async def _push_bulk(self, names: Sequence[str]) -> None:
        """Many names (a whole table, the first sync) in chunks, letting the loop run
        between them; then, once the Zone is synced, SYNCED. Until then the worker relays
        every query here, where the Zone answers it: answers are right all along. A name
        that changes meanwhile is dirty again and goes at the end."""
        try:
            for i in range(0, len(names), _CHUNK):
                self._push(names[i:i + _CHUNK])
                await asyncio.sleep(0)
            if self.zone.synced:
                self._push(sorted(self.zone.take_dirty()))
                self._send(worker.SYNCED, None)
                self._synced_sent = True
        finally:
            self._bulk = None

    async def _read(self, reader: asyncio.StreamReader) -> None:
        """Frames from the worker: queries it relays, and its query-log batches."""
        try:
            while True:
                size = int.from_bytes(await reader.readexactly(4), "big")
                kind, payload = worker.read_frames(
                    bytearray(size.to_bytes(4, "big") + await reader.readexactly(size)))[0]
                if kind == worker.RELAY:
                    cid, addr, data, t0 = payload
                    self._relayed(cid, tuple(addr), data, t0)
                elif kind == worker.LOG:
                    self.query_log.add_batch(*payload)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        if self._stopping:
            return
        # The worker died (it never exits on its own while we run): start another on the
        # same sockets after a pause (no crash loop); clients retry meanwhile.
        log.error("component=dns event=worker-exited code=%s",
                  self.worker.poll() if self.worker else None)
        if self._writer is not None:
            self._writer.close()
        await self._reap()
        await asyncio.sleep(_RESTART_PAUSE)
        if not self._stopping:
            await self._start_worker()

    def _relayed(self, cid: int, addr: tuple[str, int], data: bytes, t0: int) -> None:
        self.relayed += 1
        def send(resp: bytes) -> None:
            self._send(worker.REPLY, (cid, addr, resp))
        self._slow(data, addr, cid >= 0, send, t0)

    # --- the full logic (what the worker relays) ---------------------------------------

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
        resp = respond(data, q.qend, Prepared(q.qname_wire, answer), q.edns_size, q.do, tcp)
        self._reply(data, resp, q, addr, tcp, send, t0)
        return None

    def _reply(self, data: bytes, resp: bytes, q: Query, addr: tuple[str, int], tcp: bool,
               send: Send, t0: int) -> None:
        if not tcp and len(resp) > udp_limit(q.edns_size):
            resp = truncated_response(data, q)
        send(resp)
        self.query_log.append((t0, addr, q.qname_wire.lower(), q.qtype, response_rcode(resp),
                               perf_counter_ns() - t0, "tcp" if tcp else "udp"))

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


__all__ = ["DnsServer"]
