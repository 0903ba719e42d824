"""The DNS answering process: a lean loop over a table of pre-encoded answers.

Why a process of its own: the answering side must stay small (≤ 25 MB resident at 10,000
Services + 10,000 pods) and fast. A Python process that imports asyncio, ssl or aiohttp
starts at 19-34 MB before it holds a single record; this one imports only `socket`,
`select` (epoll) and `marshal` (it is started with `python -I -S` and imported from its
folder, never through the `podnet` package, whose imports are heavy: see
`server._WORKER_BOOT`) and starts at about 10 MB.

It holds one dict, `table`: lower-cased question name (wire format) → value, where a
value is
- `bytes` of at least 12 bytes: the one record type at that name (2 bytes), then the
  response header with RD set (10 bytes, ID excluded), then the answer/authority/additional
  sections (compression pointers point into the question at offset 12);
- `dict[int, bytes]`: several types at that name (same entry format); key 0 is the entry
  for any type not listed (a CNAME owner's chained NODATA), else NODATA;
- `b""`: an empty non-terminal (NODATA);
- `b"R"`: ask the feeder (an ExternalName whose target is outside the cluster: the server
  must resolve it upstream).
A name that is not in the table is, inside the cluster zone, a pod's dashed-IP name
(answered from the name, `pods insecure`), a pod namespace (NODATA) or NXDOMAIN, all with
the zone's SOA; outside the zone it is forwarded. Nothing per record is a Python object
beyond the two bytes objects of its table entry.

Everything this process cannot answer alone — before the first full sync, outside names,
ANY/AXFR, other classes, unusual EDNS, malformed queries — is relayed to the feeder (the
process that watches the API and owns the forwarder) over the control socket, which sends
the response back. Answers the worker gives are logged in batches back to the feeder's
query log, so the hot path only appends a tuple.

Control protocol (one stream socket, both ways): frames of 4-byte length, 1-byte kind,
`marshal` payload (trusted: both ends are podnet, joined by a socketpair).
"""

from __future__ import annotations

import gc
import marshal
import select
import socket
import sys
from time import monotonic, perf_counter_ns

# `typing` alone costs this process about 1 MB resident: it is for the type checker only.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

# Frame kinds. Feeder → worker:
TABLE = 1  # [(name wire, value or None to delete), ...]
CONFIG = 2  # {"origin": wire, "soa": tail, "soa4": tail, "soa6": tail, "ttl": int, "pods": str}
SYNCED = 3  # None: answer from the table from now on
REPLY = 4  # (conn id (-1: UDP), client address, response)
# Worker → feeder:
RELAY = 5  # (conn id (-1: UDP), client address, query, receipt time ns)
LOG = 6  # (count, marshal of [(t0 ns, (ip, port), query, rcode, latency ns, "udp" | "tcp"),
#        ...]): the feeder keeps it undecoded; the query's name and type are read from it
#        only when the log is (`querylog.QueryLog.add_batch`)

ENT = b""
ASK_FEEDER = b"R"
PLAIN_UDP = 512
MAX_UDP = 1232
OPT_PLAIN = b"\x00\x00\x29" + MAX_UDP.to_bytes(2, "big") + b"\x00\x00\x00\x00\x00\x00"
OPT_DO = b"\x00\x00\x29" + MAX_UDP.to_bytes(2, "big") + b"\x00\x00\x80\x00\x00\x00"
TCP_IDLE = 10.0  # seconds a TCP client may stay silent (RFC 7766 §6.2.3)
LOG_BATCH = 256  # entries per LOG frame (also sent when idle): a bigger batch stalls the
#                  answering loop longer while it is marshalled (4096 raised the p99)
# Query-log bytes that may wait for the feeder. The log is best effort: when the feeder
# falls behind (it runs at a lower priority, so under a query flood it does), further
# batches are dropped and counted rather than grow this process (≤ 25 MB at 10k+10k).
LOG_BACKLOG = 256 << 10
_CONTROL_READ = 128 << 10  # bytes per recv on the control socket (below malloc's mmap size)
_IP6_ARPA = b"\x03ip6\x04arpa\x00"


def frame(kind: int, payload: Any) -> bytes:
    body = marshal.dumps(payload)
    return (len(body) + 1).to_bytes(4, "big") + bytes((kind,)) + body


def read_frames(buf: bytearray) -> list[tuple[int, Any]]:
    """Complete frames at the front of `buf` (removed from it); a partial one stays."""
    out: list[tuple[int, Any]] = []
    pos = 0
    n = len(buf)
    while n - pos >= 4:
        size = int.from_bytes(buf[pos:pos + 4], "big")
        if n - pos - 4 < size:
            break
        with memoryview(buf) as view:  # no copy of a (possibly large) table frame
            out.append((buf[pos + 4], marshal.loads(view[pos + 5:pos + 4 + size])))
        pos += 4 + size
    del buf[:pos]
    return out


def header(rd: int, tc: bool, rcode: int, an: int, ns: int, ar: int) -> bytes:
    """Response header without the ID: QR, AA, RA always; opcode 0."""
    return (bytes((0x84 | (0x02 if tc else 0) | rd, 0x80 | (rcode & 0xF)))
            + b"\x00\x01" + an.to_bytes(2, "big") + ns.to_bytes(2, "big")
            + ar.to_bytes(2, "big"))


def _pod_address(label: bytes) -> tuple[int, bytes] | None:
    """`10-244-0-7` → (A, 4 bytes); `fd00--1` → (AAAA, 16 bytes); else None.

    As strict as `ipaddress`: four decimal octets without leading zeros for IPv4.
    """
    if label.count(b"-") == 3:
        parts = label.split(b"-")
        out = bytearray()
        for p in parts:
            if not p.isdigit() or len(p) > 3 or (len(p) > 1 and p[0] == 0x30):
                return None
            v = int(p)
            if v > 255:
                return None
            out.append(v)
        return 1, bytes(out)
    try:
        return 28, socket.inet_pton(socket.AF_INET6, label.decode("ascii").replace("-", ":"))
    except (OSError, UnicodeDecodeError, ValueError):
        return None


def _count_labels(wire: bytes) -> int:
    count = off = 0
    while wire[off]:
        count += 1
        off += 1 + wire[off]
    return count


class Answerer:
    """The table and the pure answering logic (no sockets: unit-testable)."""

    def __init__(self) -> None:
        self.table: dict[bytes, bytes | dict[int, bytes]] = {}
        self.synced = False
        self.origin = b"\x07cluster\x05local\x00"
        self.soa = b""  # authority section (one SOA record) for the cluster zone
        self.soa4 = b""  # … for in-addr.arpa. and ip6.arpa. (NODATA at our PTR owners)
        self.soa6 = b""
        self.ttl = 5
        self.pods = "insecure"
        self.origin_labels = 2

    def configure(self, cfg: dict[str, Any]) -> None:
        self.origin = cfg["origin"]
        self.soa, self.soa4, self.soa6 = cfg["soa"], cfg["soa4"], cfg["soa6"]
        self.ttl = cfg["ttl"]
        self.pods = cfg["pods"]
        self.origin_labels = _count_labels(self.origin)

    def update(self, changes: list[tuple[bytes, Any]]) -> None:
        table = self.table
        for name, value in changes:
            if value is None:
                table.pop(name, None)
            else:
                table[name] = value

    def answer(self, data: bytes, tcp: bool) -> bytes | None:
        """The response to `data`, or None: relay it to the feeder."""
        if not self.synced or len(data) < 17 or data[2] & 0xF8 \
                or data[4:10] != b"\x00\x01\x00\x00\x00\x00":
            return None
        z = data.find(0, 12)
        qend = z + 5
        # Class IN only; qtypes 128-255 are meta types (ANY, AXFR, IXFR…): the feeder's.
        if z < 0 or len(data) < qend or data[z + 3:qend] != b"\x00\x01" \
                or (data[z + 1] == 0 and data[z + 2] >= 128):
            return None
        name = data[12:z + 1].lower()
        v = self.table.get(name)
        qtype = (data[z + 1] << 8) | data[z + 2]
        if v is None:
            return self._absent(data, name, z, qtype, tcp)
        if isinstance(v, bytes):
            if len(v) >= 12:
                if v[0] == data[z + 1] and v[1] == data[z + 2]:
                    return self._respond(data, qend, v, tcp)
                return self._nodata(data, name, qend, tcp)
            if v == ASK_FEEDER:
                return None
            return self._nodata(data, name, qend, tcp)
        e = v.get(qtype) or v.get(0)
        if e is None:
            return self._nodata(data, name, qend, tcp)
        return self._respond(data, qend, e, tcp)

    def _respond(self, data: bytes, qend: int, e: bytes, tcp: bool) -> bytes | None:
        """Splice ID and question (as sent) around a pre-encoded entry; EDNS and TC."""
        rd = data[2] & 1
        hdr = e[2:12] if rd else bytes((e[2] & 0xFE,)) + e[3:12]
        n = len(data)
        if n == qend and data[10:12] == b"\x00\x00":
            if tcp or qend + len(e) - 12 <= PLAIN_UDP:
                return data[:2] + hdr + data[12:qend] + e[12:]
            return data[:2] + header(rd, True, e[3] & 0xF, 0, 0, 0) + data[12:qend]
        # One OPT record and nothing else, EDNS version 0; anything else → the feeder.
        if not (data[10:12] == b"\x00\x01" and n >= qend + 11
                and data[qend:qend + 3] == b"\x00\x00\x29" and data[qend + 6] == 0
                and n == qend + 11 + int.from_bytes(data[qend + 9:qend + 11], "big")):
            return None
        size = int.from_bytes(data[qend + 3:qend + 5], "big")
        opt = OPT_DO if data[qend + 7] & 0x80 else OPT_PLAIN
        limit = PLAIN_UDP if size < PLAIN_UDP else min(size, MAX_UDP)
        if tcp or qend + len(e) - 12 + len(opt) <= limit:
            ar = int.from_bytes(e[10:12], "big") + 1
            return data[:2] + hdr[:8] + ar.to_bytes(2, "big") + data[12:qend] + e[12:] + opt
        return data[:2] + header(rd, True, e[3] & 0xF, 0, 0, 1) + data[12:qend] + opt

    def _soa_for(self, name: bytes) -> bytes:
        if name.endswith(self.origin):
            return self.soa
        return self.soa6 if name.endswith(_IP6_ARPA) else self.soa4

    def _nodata(self, data: bytes, name: bytes, qend: int, tcp: bool) -> bytes | None:
        return self._respond(data, qend, b"\x00\x00" + header(1, False, 0, 0, 1, 0)
                             + self._soa_for(name), tcp)

    def _absent(self, data: bytes, name: bytes, z: int, qtype: int,
                tcp: bool) -> bytes | None:
        """A name with no table entry: pod names, NXDOMAIN in the zone, else forward."""
        labels: list[bytes] = []
        off = 0
        while True:  # walk the labels: `find(0)` may have stopped inside a binary label
            if off >= len(name):
                return None
            n = name[off]
            if n == 0:
                break
            if n > 63:
                return None
            labels.append(name[off + 1:off + 1 + n])
            off += 1 + n
        if off != len(name) - 1:
            return None
        origin = self.origin
        if not (name == origin or (name.endswith(origin) and len(name) > len(origin)
                                   and self._boundary(name, len(name) - len(origin)))):
            return None  # outside the zone (or a reverse name we do not own): forward
        qend = z + 5
        depth = len(labels) - self.origin_labels
        if self.pods == "insecure" and depth == 3 and labels[2] == b"pod" and labels[1]:
            addr = _pod_address(labels[0])
            if addr is not None:
                if addr[0] != qtype:
                    return self._nodata(data, name, qend, tcp)
                rec = (b"\xc0\x0c" + addr[0].to_bytes(2, "big") + b"\x00\x01"
                       + self.ttl.to_bytes(4, "big") + len(addr[1]).to_bytes(2, "big")
                       + addr[1])
                return self._respond(data, qend, b"\x00\x00" + header(1, False, 0, 1, 0, 0)
                                     + rec, tcp)
        elif self.pods == "insecure" and depth == 2 and labels[1] == b"pod" and labels[0]:
            return self._nodata(data, name, qend, tcp)
        return self._respond(data, qend, b"\x00\x00" + header(1, False, 3, 0, 1, 0)
                             + self.soa, tcp)

    @staticmethod
    def _boundary(name: bytes, at: int) -> bool:
        off = 0
        while off < at:
            off += 1 + name[off]
        return off == at


class _Conn:
    __slots__ = ("buf", "id", "last", "out", "sock", "writing")

    def __init__(self, sock: socket.socket, cid: int) -> None:
        self.sock = sock
        self.id = cid
        self.buf = bytearray()
        self.out = bytearray()
        self.last = monotonic()
        self.writing = False


_IN, _OUT = select.EPOLLIN, select.EPOLLOUT
_GONE = select.EPOLLHUP | select.EPOLLERR


class Worker:
    """The loop: UDP and TCP clients on inherited sockets, the feeder on `control`.

    Ordering is what makes "a change is visible in the next answer" exact: each wakeup
    handles the control socket first, then at most one datagram, which was queued before
    the wakeup, so any change sent before that query was sent has been applied. A TCP
    read looks at the control socket again first (its bytes may be newer than the wakeup).
    """

    def __init__(self, control: socket.socket, udp: socket.socket, tcp: socket.socket) -> None:
        self.a = Answerer()
        self.control = control
        self.udp = udp
        self.tcp = tcp
        self.ep = select.epoll()
        self.cbuf = bytearray()
        self.cout = bytearray()
        self.cwriting = False
        self.conns: dict[int, _Conn] = {}  # by file descriptor
        self.next_id = 0
        self.by_id: dict[int, _Conn] = {}
        self.log: list[tuple[Any, ...]] = []
        self.log_dropped = 0  # entries not logged because the feeder fell behind
        self.running = True
        for s in (control, udp, tcp):
            s.setblocking(False)

    def run(self) -> None:
        ep = self.ep
        cfd, ufd, tfd = self.control.fileno(), self.udp.fileno(), self.tcp.fileno()
        for fd in (cfd, ufd, tfd):
            ep.register(fd, _IN)
        conns = self.conns
        last_sweep = monotonic()
        while self.running:
            events = ep.poll(0.05 if self.log or self.cout else 1.0)
            if not events and self.log:
                self._flush_log()
            # Changes first: a query that arrives together with a change must see it.
            for fd, mask in events:
                if fd == cfd:
                    if mask & (_IN | _GONE):
                        self._control_read()
                    if mask & _OUT:
                        self._control_write()
            for fd, mask in events:
                if fd == ufd:
                    self._udp()
                elif fd == tfd:
                    self._accept()
                elif fd != cfd:
                    c = conns.get(fd)
                    if c is None:
                        continue
                    if mask & _OUT:
                        self._tcp_write(c)
                    if mask & (_IN | _GONE):
                        self._tcp_read(c)
            now = monotonic()
            if now - last_sweep > 1.0:
                last_sweep = now
                for c in [c for c in conns.values() if now - c.last > TCP_IDLE]:
                    self._close(c)

    # --- the feeder --------------------------------------------------------------------

    def _control_read(self) -> None:
        try:
            while True:
                chunk = self.control.recv(_CONTROL_READ)
                if not chunk:
                    self.running = False  # the feeder is gone: so are we
                    return
                self.cbuf += chunk
                if len(chunk) < _CONTROL_READ:
                    break
        except (BlockingIOError, InterruptedError):
            pass
        except OSError:
            self.running = False
            return
        if not self.cbuf:
            return
        a = self.a
        for kind, payload in read_frames(self.cbuf):
            if kind == TABLE:
                a.update(payload)
            elif kind == REPLY:
                self._send(payload[0], payload[1], payload[2])
            elif kind == CONFIG:
                a.configure(payload)
            elif kind == SYNCED:
                a.synced = True

    def _to_feeder(self, kind: int, payload: Any) -> None:
        pending = bool(self.cout)
        self.cout += frame(kind, payload)
        if not pending:
            self._control_write()

    def _control_write(self) -> None:
        try:
            sent = self.control.send(self.cout)
            del self.cout[:sent]
        except (BlockingIOError, InterruptedError):
            pass
        except OSError:
            self.running = False
            return
        want = bool(self.cout)
        if want != self.cwriting:
            self.cwriting = want
            self.ep.modify(self.control.fileno(), _IN | (_OUT if want else 0))

    def _flush_log(self) -> None:
        batch, self.log = self.log, []
        if len(self.cout) > LOG_BACKLOG:
            self.log_dropped += len(batch)
            return
        self._to_feeder(LOG, (len(batch), marshal.dumps(batch)))

    def _logged(self, t0: int, addr: Any, data: bytes, resp: bytes, transport: str) -> None:
        self.log.append((t0, addr, data, resp[3] & 0xF, perf_counter_ns() - t0, transport))
        if len(self.log) >= LOG_BATCH:
            self._flush_log()

    # --- clients -----------------------------------------------------------------------

    def _udp(self) -> None:
        """One datagram (see the class docstring for why not a burst)."""
        try:
            data, addr = self.udp.recvfrom(65535)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            return  # an ICMP error for a client that went away
        t0 = perf_counter_ns()
        resp = self.a.answer(data, False)
        if resp is None:
            self._to_feeder(RELAY, (-1, addr, data, t0))
            return
        try:  # noqa: SIM105 (try/except is cheaper than a context manager per query)
            self.udp.sendto(resp, addr)
        except OSError:
            pass
        self._logged(t0, addr, data, resp, "udp")

    def _send(self, cid: int, addr: Any, resp: bytes) -> None:
        if cid < 0:
            try:  # noqa: SIM105 (as in _udp)
                self.udp.sendto(resp, tuple(addr))
            except OSError:
                pass
            return
        c = self.by_id.get(cid)
        if c is not None:
            self._tcp_out(c, len(resp).to_bytes(2, "big") + resp)

    def _accept(self) -> None:
        for _ in range(16):
            try:
                sock, _ = self.tcp.accept()
            except OSError:  # BlockingIOError (none left) included
                return
            sock.setblocking(False)
            self.next_id += 1
            c = _Conn(sock, self.next_id)
            self.conns[sock.fileno()] = c
            self.by_id[c.id] = c
            self.ep.register(sock.fileno(), _IN)

    def _tcp_read(self, c: _Conn) -> None:
        try:
            chunk = c.sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            chunk = b""
        if not chunk:
            self._close(c)
            return
        self._control_read()  # these bytes may be newer than this wakeup's control read
        c.last = monotonic()
        c.buf += chunk
        while len(c.buf) >= 2:
            size = int.from_bytes(c.buf[:2], "big")
            if len(c.buf) < 2 + size:
                break
            data = bytes(c.buf[2:2 + size])
            del c.buf[:2 + size]
            t0 = perf_counter_ns()
            try:
                peer = c.sock.getpeername()
            except OSError:
                self._close(c)
                return
            addr = (peer[0], peer[1])
            resp = self.a.answer(data, True)
            if resp is None:
                self._to_feeder(RELAY, (c.id, addr, data, t0))
                continue
            self._tcp_out(c, len(resp).to_bytes(2, "big") + resp)
            self._logged(t0, addr, data, resp, "tcp")

    def _tcp_out(self, c: _Conn, payload: bytes) -> None:
        pending = bool(c.out)
        c.out += payload
        if not pending:
            self._tcp_write(c)

    def _tcp_write(self, c: _Conn) -> None:
        try:
            sent = c.sock.send(c.out)
            del c.out[:sent]
        except (BlockingIOError, InterruptedError):
            pass
        except OSError:
            self._close(c)
            return
        want = bool(c.out)
        if want != c.writing and c.sock.fileno() >= 0:
            c.writing = want
            self.ep.modify(c.sock.fileno(), _IN | (_OUT if want else 0))

    def _close(self, c: _Conn) -> None:
        fd = c.sock.fileno()
        if self.by_id.pop(c.id, None) is None:
            return
        self.conns.pop(fd, None)
        try:  # noqa: SIM105 (contextlib stays out of this process)
            self.ep.unregister(fd)
        except (OSError, ValueError):
            pass
        c.sock.close()


def main(argv: list[str]) -> int:
    """`worker.py CONTROL_FD UDP_FD TCP_FD`: serve until the feeder closes the control fd."""
    # No reference cycles are made here, and the table is large: a cyclic collection
    # walking it would be a latency spike for nothing.
    gc.disable()
    control_fd, udp_fd, tcp_fd = (int(a) for a in argv[:3])
    control = socket.socket(fileno=control_fd)
    udp = socket.socket(fileno=udp_fd)
    tcp = socket.socket(fileno=tcp_fd)
    try:
        Worker(control, udp, tcp).run()
    except KeyboardInterrupt:
        pass
    finally:
        for s in (control, udp, tcp):
            s.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
