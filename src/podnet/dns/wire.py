"""DNS messages on the wire (RFC 1035, EDNS0 per RFC 6891): parse queries, encode answers.

Pure. Answers are encoded once per change into a `Prepared` response: everything but the
2-byte ID and the question, which are copied from the query so a 0x20-randomized name is
echoed exactly as sent. Compression pointers in a prepared tail point into the question at
offset 12, whose length does not depend on the letters' case, so one tail serves every
spelling of the name. The hot path is then two slices and three concatenations.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass

from podnet.dns.records import (
    AAAA,
    CNAME,
    FORMERR,
    NS,
    OPT,
    PTR,
    SOA,
    SRV,
    TXT,
    A,
    Answer,
    Record,
    Soa,
    Srv,
)

MAX_UDP = 1232  # what we accept and send over UDP with EDNS0 (DNS flag day 2020 size)
PLAIN_UDP = 512  # RFC 1035 limit without EDNS0
BADVERS = 16

# Our OPT pseudo-record: root owner, type 41, class = UDP size, TTL = ext-rcode/version/flags.
OPT_PLAIN = b"\x00\x00\x29" + MAX_UDP.to_bytes(2, "big") + b"\x00\x00\x00\x00\x00\x00"
OPT_DO = b"\x00\x00\x29" + MAX_UDP.to_bytes(2, "big") + b"\x00\x00\x80\x00\x00\x00"

_QR, _AA, _TC = 0x80, 0x04, 0x02
_RA = 0x80


class WireError(Exception):
    """A query we cannot parse; `rcode` is what to answer (None: drop it silently)."""

    def __init__(self, rcode: int | None, why: str) -> None:
        super().__init__(why)
        self.rcode = rcode


@dataclass(frozen=True, slots=True)
class Query:
    id: int
    flags: int
    qname_wire: bytes  # as sent (case preserved)
    qname: str  # lower case, absolute ("web.default.svc.cluster.local.")
    qtype: int
    qclass: int
    qend: int  # offset just past the question
    edns_size: int | None  # None: no OPT record
    edns_version: int
    do: bool

    @property
    def opcode(self) -> int:
        return (self.flags >> 11) & 0xF

    @property
    def rd(self) -> bool:
        return bool(self.flags & 0x100)


def name_to_wire(name: str) -> bytes:
    """`web.default.svc.cluster.local.` → length-prefixed labels ending in a zero byte."""
    out = bytearray()
    for label in name.rstrip(".").split(".") if name not in ("", ".") else ():
        raw = label.encode("ascii", "replace")
        if not 0 < len(raw) < 64:
            raise ValueError(f"bad DNS label in {name!r}")
        out.append(len(raw))
        out += raw
    out.append(0)
    if len(out) > 255:
        raise ValueError(f"DNS name too long: {name!r}")
    return bytes(out)


def wire_to_name(data: bytes, off: int) -> tuple[str, int]:
    """Read a (possibly compressed) name at `off`; returns (name, offset after it)."""
    labels: list[str] = []
    end = -1
    hops = 0
    while True:
        if off >= len(data):
            raise WireError(FORMERR, "name runs past the message")
        n = data[off]
        if n == 0:
            off += 1
            break
        if n & 0xC0 == 0xC0:
            if off + 1 >= len(data) or hops > 64:
                raise WireError(FORMERR, "bad compression pointer")
            if end < 0:
                end = off + 2
            off = ((n & 0x3F) << 8) | data[off + 1]
            hops += 1
            continue
        if n > 63 or off + 1 + n > len(data):
            raise WireError(FORMERR, "bad label length")
        labels.append(data[off + 1:off + 1 + n].decode("latin-1"))
        off += 1 + n
    name = ".".join(labels) + "." if labels else "."
    return name, (end if end >= 0 else off)


def parse_query(data: bytes) -> Query:
    """Parse a query: header, exactly one question, and an OPT record if present."""
    if len(data) < 12:
        raise WireError(None, "shorter than a header")
    flags = int.from_bytes(data[2:4], "big")
    if flags & 0x8000:
        raise WireError(None, "a response, not a query")
    qd, an, ns, ar = (int.from_bytes(data[i:i + 2], "big") for i in (4, 6, 8, 10))
    if qd != 1:
        raise WireError(FORMERR, f"{qd} questions")
    off = 12
    while True:  # the question name: no compression allowed this early
        if off >= len(data):
            raise WireError(FORMERR, "truncated question")
        n = data[off]
        if n == 0:
            off += 1
            break
        if n > 63:
            raise WireError(FORMERR, "bad label in question")
        off += 1 + n
    if off + 4 > len(data) or off - 12 > 255:
        raise WireError(FORMERR, "truncated question")
    qname_wire = data[12:off]
    qname, _ = wire_to_name(qname_wire.lower(), 0)
    qtype = int.from_bytes(data[off:off + 2], "big")
    qclass = int.from_bytes(data[off + 2:off + 4], "big")
    qend = off + 4
    edns_size: int | None = None
    version = 0
    do = False
    pos = qend
    for i in range(an + ns + ar):
        _, pos = wire_to_name(data, pos)
        if pos + 10 > len(data):
            raise WireError(FORMERR, "truncated record")
        rtype = int.from_bytes(data[pos:pos + 2], "big")
        rdlen = int.from_bytes(data[pos + 8:pos + 10], "big")
        if rtype == OPT and i >= an + ns:
            if edns_size is not None:
                raise WireError(FORMERR, "two OPT records")
            edns_size = int.from_bytes(data[pos + 2:pos + 4], "big")
            version = data[pos + 5]
            do = bool(data[pos + 6] & 0x80)
        pos += 10 + rdlen
        if pos > len(data):
            raise WireError(FORMERR, "truncated rdata")
    return Query(int.from_bytes(data[:2], "big"), flags, qname_wire, qname, qtype, qclass,
                 qend, edns_size, version, do)


def udp_limit(edns_size: int | None) -> int:
    if edns_size is None:
        return PLAIN_UDP
    return max(PLAIN_UDP, min(edns_size, MAX_UDP))


# --- encoding ---------------------------------------------------------------------------

class _Writer:
    """Appends records to a message whose first `base` bytes are header + question."""

    def __init__(self, qname_wire: bytes, *, compress: bool = True) -> None:
        self.compress = compress
        self.out = bytearray()
        self.base = 12 + len(qname_wire) + 4
        self.names: dict[str, int] = {}
        # Seed with the question's suffixes (offsets into the query as sent).
        low = qname_wire.lower()
        labels: list[tuple[int, str]] = []
        off = 0
        while off < len(low) and low[off]:
            n = low[off]
            labels.append((12 + off, low[off + 1:off + 1 + n].decode("latin-1")))
            off += 1 + n
        if not any("." in text for _, text in labels):
            for i, (at, _) in enumerate(labels):
                self.names[".".join(t for _, t in labels[i:]) + "."] = at

    def name(self, name: str, compress: bool = True) -> None:
        compress = compress and self.compress
        for _, suffix in _suffixes(name):
            ptr = self.names.get(suffix) if compress else None
            if ptr is not None and ptr < 0x4000:
                self.out += (0xC000 | ptr).to_bytes(2, "big")
                return
            here = self.base + len(self.out)
            if compress and here < 0x4000:
                self.names[suffix] = here
            label = suffix.split(".", 1)[0].encode("ascii", "replace")
            self.out.append(len(label))
            self.out += label
        self.out.append(0)

    def record(self, rec: Record) -> None:
        self.name(rec.name)
        self.out += rec.rtype.to_bytes(2, "big") + b"\x00\x01" + rec.ttl.to_bytes(4, "big")
        at = len(self.out)
        self.out += b"\x00\x00"
        d = rec.rdata
        if rec.rtype == A:
            assert isinstance(d, str)
            self.out += socket.inet_aton(d)
        elif rec.rtype == AAAA:
            assert isinstance(d, str)
            self.out += socket.inet_pton(socket.AF_INET6, d)
        elif rec.rtype in (CNAME, PTR, NS):
            assert isinstance(d, str)
            self.name(d)
        elif rec.rtype == SRV:
            assert isinstance(d, Srv)
            self.out += (d.priority.to_bytes(2, "big") + d.weight.to_bytes(2, "big")
                         + d.port.to_bytes(2, "big"))
            self.name(d.target, compress=False)  # RFC 2782: no compression in SRV targets
        elif rec.rtype == SOA:
            assert isinstance(d, Soa)
            self.name(d.mname)
            self.name(d.rname)
            for v in (d.serial, d.refresh, d.retry, d.expire, d.minimum):
                self.out += v.to_bytes(4, "big")
        elif rec.rtype == TXT:
            assert isinstance(d, str)
            raw = d.encode()
            for i in range(0, max(len(raw), 1), 255):
                chunk = raw[i:i + 255]
                self.out.append(len(chunk))
                self.out += chunk
        else:
            raise ValueError(f"cannot encode type {rec.rtype}")
        self.out[at:at + 2] = (len(self.out) - at - 2).to_bytes(2, "big")


def _suffixes(name: str) -> list[tuple[int, str]]:
    labels = [x for x in name.split(".") if x]
    return [(i, ".".join(labels[i:]) + ".") for i in range(len(labels))]


def _hdr(rd: int, tc: bool, rcode: int, an: int, ns: int, ar: int) -> bytes:
    b2 = _QR | _AA | (_TC if tc else 0) | rd
    return bytes((b2, _RA | (rcode & 0xF))) + b"\x00\x01" + b"".join(
        n.to_bytes(2, "big") for n in (an, ns, ar))


class Prepared:
    """One pre-encoded answer: header variants (indexed by the query's RD bit) and tails."""

    __slots__ = ("edns", "edns_len", "edns_tc", "full", "plain", "plain_tail", "rcode",
                 "tail")

    def __init__(self, qname_wire: bytes, answer: Answer) -> None:
        w = _Writer(qname_wire)
        for sect in (answer.answers, answer.authority, answer.additional):
            for rec in sect:
                w.record(rec)
        tail = bytes(w.out)
        an, ns, ar = len(answer.answers), len(answer.authority), len(answer.additional)
        rc = answer.rcode
        self.rcode = rc
        self.tail = tail
        self.full = (_hdr(0, False, rc, an, ns, ar), _hdr(1, False, rc, an, ns, ar))
        size = w.base + len(tail)
        if size <= PLAIN_UDP:
            self.plain, self.plain_tail = self.full, tail
        else:
            self.plain = (_hdr(0, True, rc, 0, 0, 0), _hdr(1, True, rc, 0, 0, 0))
            self.plain_tail = b""
        self.edns = (_hdr(0, False, rc, an, ns, ar + 1), _hdr(1, False, rc, an, ns, ar + 1))
        self.edns_tc = (_hdr(0, True, rc, 0, 0, 1), _hdr(1, True, rc, 0, 0, 1))
        self.edns_len = size + len(OPT_PLAIN)


def entry(qname_wire: bytes, qtype: int, answer: Answer) -> bytes:
    """One answer as the answering process stores it: the type (2 bytes), the header
    without the ID and with RD set (10 bytes), then the sections (see `worker.py`)."""
    p = Prepared(qname_wire, answer)
    return qtype.to_bytes(2, "big") + p.full[1] + p.tail


def records_wire(records: tuple[Record, ...]) -> bytes:
    """Records without name compression: a section that fits after any question."""
    w = _Writer(b"\x00", compress=False)
    for rec in records:
        w.record(rec)
    return bytes(w.out)


def respond(data: bytes, qend: int, p: Prepared, edns_size: int | None, do: bool,
            tcp: bool) -> bytes:
    """The response to `data` (a parsed query ending its question at `qend`)."""
    rd = data[2] & 1
    if edns_size is None:
        if tcp:
            return data[:2] + p.full[rd] + data[12:qend] + p.tail
        return data[:2] + p.plain[rd] + data[12:qend] + p.plain_tail
    opt = OPT_DO if do else OPT_PLAIN
    if tcp or p.edns_len <= udp_limit(edns_size):
        return data[:2] + p.edns[rd] + data[12:qend] + p.tail + opt
    return data[:2] + p.edns_tc[rd] + data[12:qend] + opt


def error_response(data: bytes, rcode: int, q: Query | None = None) -> bytes:
    """A bare response with `rcode` (SERVFAIL, FORMERR, NOTIMP, BADVERS…): no AA."""
    rd = data[2] & 1 if len(data) > 2 else 0
    opcode_bits = data[2] & 0x78 if len(data) > 2 else 0
    head = data[:2].ljust(2, b"\x00")
    if q is None:
        return head + bytes((_QR | opcode_bits | rd, _RA | (rcode & 0xF))) + bytes(8)
    ar = 1 if q.edns_size is not None else 0
    out = head + bytes((_QR | opcode_bits | rd, _RA | (rcode & 0xF))) + b"\x00\x01" + bytes(4)
    out += ar.to_bytes(2, "big") + data[12:q.qend]
    if q.edns_size is not None:
        ext = rcode >> 4
        out += (b"\x00\x00\x29" + MAX_UDP.to_bytes(2, "big") + bytes((ext, 0))
                + (b"\x80\x00" if q.do else b"\x00\x00") + b"\x00\x00")
    return out


def with_id(response: bytes, qid: bytes) -> bytes:
    return qid + response[2:]


def response_rcode(response: bytes) -> int:
    return response[3] & 0xF if len(response) > 3 else 2


def truncated_response(data: bytes, q: Query) -> bytes:
    """An empty TC=1 answer to `q` (an upstream answer too large for the client's UDP)."""
    out = bytearray(error_response(data, 0, q))
    out[2] |= _TC
    return bytes(out)


def build_query(qname: str, qtype: int, qid: int = 0) -> tuple[bytes, int]:
    """A recursive query for (qname, qtype, IN); returns (message, offset past question)."""
    msg = (qid.to_bytes(2, "big") + b"\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00"
           + name_to_wire(qname) + qtype.to_bytes(2, "big") + b"\x00\x01")
    return msg, len(msg)


def parse_answers(data: bytes) -> tuple[int, list[Record]]:
    """(rcode, answer records) of a response; keeps only A, AAAA and CNAME records.

    Used to append an upstream's answer to an ExternalName CNAME; other types would need
    their rdata names decompressed type by type, and clients chase those themselves.
    """
    if len(data) < 12:
        raise WireError(None, "shorter than a header")
    qd, an = int.from_bytes(data[4:6], "big"), int.from_bytes(data[6:8], "big")
    pos = 12
    for _ in range(qd):
        _, pos = wire_to_name(data, pos)
        pos += 4
    out: list[Record] = []
    for _ in range(an):
        name, pos = wire_to_name(data, pos)
        if pos + 10 > len(data):
            raise WireError(FORMERR, "truncated record")
        rtype = int.from_bytes(data[pos:pos + 2], "big")
        ttl = int.from_bytes(data[pos + 4:pos + 8], "big")
        rdlen = int.from_bytes(data[pos + 8:pos + 10], "big")
        rd = data[pos + 10:pos + 10 + rdlen]
        if len(rd) != rdlen:
            raise WireError(FORMERR, "truncated rdata")
        if rtype == A and rdlen == 4:
            out.append(Record(name.lower(), A, ttl, socket.inet_ntoa(rd)))
        elif rtype == AAAA and rdlen == 16:
            out.append(Record(name.lower(), AAAA, ttl, socket.inet_ntop(socket.AF_INET6, rd)))
        elif rtype == CNAME:
            target, _ = wire_to_name(data, pos + 10)
            out.append(Record(name.lower(), CNAME, ttl, target.lower()))
        pos += 10 + rdlen
    return data[3] & 0xF, out
