"""SPDY/3.1 framing (draft-mbelshe-httpbis-spdy-00 and the SPDY/3.1 draft), pure.

Only what Kubernetes port-forward needs: SYN_STREAM, SYN_REPLY, RST_STREAM, SETTINGS,
PING, GOAWAY, HEADERS, WINDOW_UPDATE and DATA. Header blocks are zlib-compressed with
the SPDY/3 dictionary; each direction of a session has ONE compression context that
lives as long as the session (every block ends with a SYNC_FLUSH, never a full flush),
so frames carrying headers must be encoded in exactly the order they are sent.

The peers Kubernetes uses (moby/spdystream on both ends) do no flow control, so neither
do we: WINDOW_UPDATE is parsed and ignored, and we never send one.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

VERSION = 3

# Control frame types (SPDY/3 §2.6).
SYN_STREAM = 1
SYN_REPLY = 2
RST_STREAM = 3
SETTINGS = 4
PING = 6
GOAWAY = 7
HEADERS = 8
WINDOW_UPDATE = 9

FLAG_FIN = 0x01
FLAG_UNIDIRECTIONAL = 0x02

# RST_STREAM status codes (§2.6.3).
RST_PROTOCOL_ERROR = 1
RST_INVALID_STREAM = 2
RST_REFUSED_STREAM = 3
RST_CANCEL = 5
RST_INTERNAL_ERROR = 6

# GOAWAY status codes (§2.6.6).
GOAWAY_OK = 0
GOAWAY_PROTOCOL_ERROR = 1

MAX_DATA_LENGTH = 0xFFFFFF  # 24-bit length field

# The header-compression dictionary of SPDY/3 (§2.6.10.1): a run of length-prefixed
# header words, then an unprefixed tail of status lines, dates and media types. It must
# be byte-exact (1423 bytes, zlib dictionary id 0xe3c6a7c2): one wrong byte and the
# peer's inflate fails with "invalid dictionary". Note "Sept", not "Sep".
_DICT_WORDS = (
    "options", "head", "post", "put", "delete", "trace", "accept", "accept-charset",
    "accept-encoding", "accept-language", "accept-ranges", "age", "allow", "authorization",
    "cache-control", "connection", "content-base", "content-encoding", "content-language",
    "content-length", "content-location", "content-md5", "content-range", "content-type", "date",
    "etag", "expect", "expires", "from", "host", "if-match", "if-modified-since", "if-none-match",
    "if-range", "if-unmodified-since", "last-modified", "location", "max-forwards", "pragma",
    "proxy-authenticate", "proxy-authorization", "range", "referer", "retry-after", "server",
    "te", "trailer", "transfer-encoding", "upgrade", "user-agent", "vary", "via", "warning",
    "www-authenticate", "method", "get", "status", "200 OK", "version", "HTTP/1.1", "url",
    "public", "set-cookie", "keep-alive", "origin",
)
_DICT_TAIL = (
    "100101201202205206300302303304305306307402405406407408409410411412413414415416417"
    "502504505203 Non-Authoritative Information204 No Content301 Moved Permanently"
    "400 Bad Request401 Unauthorized403 Forbidden404 Not Found500 Internal Server Error"
    "501 Not Implemented503 Service UnavailableJan Feb Mar Apr May Jun Jul Aug Sept Oct "
    "Nov Dec 00:00:00 Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMTchunked,text/html,image/png,"
    "image/jpg,image/gif,application/xml,application/xhtml+xml,text/plain,text/javascript,"
    "publicprivatemax-age=gzip,deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0."
)
DICTIONARY = b"".join(struct.pack(">I", len(w)) + w.encode() for w in _DICT_WORDS) + \
    _DICT_TAIL.encode()

Headers = dict[str, list[str]]


class ProtocolError(Exception):
    """The peer sent something that is not SPDY/3: the session must end (GOAWAY)."""


# ---- frames -------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class SynStream:
    stream_id: int
    headers: Headers
    associated_id: int = 0
    priority: int = 0
    fin: bool = False
    unidirectional: bool = False


@dataclass(frozen=True, slots=True)
class SynReply:
    stream_id: int
    headers: Headers = field(default_factory=dict)
    fin: bool = False


@dataclass(frozen=True, slots=True)
class HeadersFrame:
    stream_id: int
    headers: Headers = field(default_factory=dict)
    fin: bool = False


@dataclass(frozen=True, slots=True)
class RstStream:
    stream_id: int
    status: int


@dataclass(frozen=True, slots=True)
class Settings:
    entries: tuple[tuple[int, int, int], ...] = ()  # (flags, id, value)
    clear: bool = False


@dataclass(frozen=True, slots=True)
class Ping:
    ping_id: int


@dataclass(frozen=True, slots=True)
class GoAway:
    last_stream_id: int
    status: int = GOAWAY_OK


@dataclass(frozen=True, slots=True)
class WindowUpdate:
    stream_id: int
    delta: int


@dataclass(frozen=True, slots=True)
class Data:
    stream_id: int
    data: bytes
    fin: bool = False


Frame = SynStream | SynReply | HeadersFrame | RstStream | Settings | Ping | GoAway | \
    WindowUpdate | Data


# ---- header blocks ------------------------------------------------------------------
def _name_value_block(headers: Mapping[str, Iterable[str]]) -> bytes:
    """The uncompressed name/value block: names lower-case, several values NUL-joined."""
    out = [struct.pack(">I", len(headers))]
    for name, values in headers.items():
        n = name.lower().encode()
        v = b"\x00".join(x.encode() for x in values)
        out.append(struct.pack(">I", len(n)) + n + struct.pack(">I", len(v)) + v)
    return b"".join(out)


def _parse_name_value_block(raw: bytes) -> Headers:
    try:
        (count,) = struct.unpack_from(">I", raw, 0)
        pos = 4
        headers: Headers = {}
        for _ in range(count):
            (nlen,) = struct.unpack_from(">I", raw, pos)
            name = raw[pos + 4:pos + 4 + nlen].decode()
            pos += 4 + nlen
            (vlen,) = struct.unpack_from(">I", raw, pos)
            value = raw[pos + 4:pos + 4 + vlen]
            if len(value) != vlen:
                raise ProtocolError("truncated header block")
            pos += 4 + vlen
            headers.setdefault(name.lower(), []).extend(
                v.decode() for v in value.split(b"\x00"))
        return headers
    except (struct.error, UnicodeDecodeError) as exc:
        raise ProtocolError(f"malformed header block: {exc}") from exc


class HeaderCompressor:
    """One per sending direction of a session."""

    def __init__(self) -> None:
        self._z = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, 15, 8,
                                   zlib.Z_DEFAULT_STRATEGY, DICTIONARY)

    def compress(self, headers: Mapping[str, Iterable[str]]) -> bytes:
        raw = _name_value_block(headers)
        return self._z.compress(raw) + self._z.flush(zlib.Z_SYNC_FLUSH)


class HeaderDecompressor:
    """One per receiving direction of a session."""

    def __init__(self) -> None:
        self._z = zlib.decompressobj(15, DICTIONARY)

    def decompress(self, block: bytes) -> Headers:
        try:
            raw = self._z.decompress(block)
        except zlib.error as exc:
            raise ProtocolError(f"header block does not inflate: {exc}") from exc
        return _parse_name_value_block(raw)


# ---- encoding -----------------------------------------------------------------------
def _control(ftype: int, flags: int, body: bytes) -> bytes:
    return struct.pack(">HHI", 0x8000 | VERSION, ftype, (flags << 24) | len(body)) + body


class FrameEncoder:
    """Turns frames into bytes; owns the sending direction's header compressor."""

    def __init__(self) -> None:
        self.headers = HeaderCompressor()

    def encode(self, frame: Frame) -> bytes:
        match frame:
            case Data(sid, data, fin):
                if len(data) > MAX_DATA_LENGTH:
                    raise ValueError("DATA frame too long; split it")
                return struct.pack(">II", sid & 0x7FFFFFFF,
                                   ((FLAG_FIN if fin else 0) << 24) | len(data)) + data
            case SynStream(sid, headers, assoc, prio, fin, uni):
                flags = (FLAG_FIN if fin else 0) | (FLAG_UNIDIRECTIONAL if uni else 0)
                body = struct.pack(">IIBB", sid & 0x7FFFFFFF, assoc & 0x7FFFFFFF,
                                   (prio & 7) << 5, 0) + self.headers.compress(headers)
                return _control(SYN_STREAM, flags, body)
            case SynReply(sid, headers, fin):
                body = struct.pack(">I", sid & 0x7FFFFFFF) + self.headers.compress(headers)
                return _control(SYN_REPLY, FLAG_FIN if fin else 0, body)
            case HeadersFrame(sid, headers, fin):
                body = struct.pack(">I", sid & 0x7FFFFFFF) + self.headers.compress(headers)
                return _control(HEADERS, FLAG_FIN if fin else 0, body)
            case RstStream(sid, status):
                return _control(RST_STREAM, 0, struct.pack(">II", sid & 0x7FFFFFFF, status))
            case Settings(entries, clear):
                body = struct.pack(">I", len(entries)) + b"".join(
                    struct.pack(">II", (f << 24) | (i & 0xFFFFFF), v) for f, i, v in entries)
                return _control(SETTINGS, 1 if clear else 0, body)
            case Ping(pid):
                return _control(PING, 0, struct.pack(">I", pid))
            case GoAway(last, status):
                return _control(GOAWAY, 0, struct.pack(">II", last & 0x7FFFFFFF, status))
            case WindowUpdate(sid, delta):
                return _control(WINDOW_UPDATE, 0,
                                struct.pack(">II", sid & 0x7FFFFFFF, delta & 0x7FFFFFFF))
        raise TypeError(f"not a SPDY frame: {frame!r}")


# ---- decoding -----------------------------------------------------------------------
class FrameDecoder:
    """Incremental: `feed()` any slice of the byte stream, get the whole frames back.

    Owns the receiving direction's header decompressor. Unknown control frame types are
    skipped, as the spec asks (§2.2.1).
    """

    def __init__(self) -> None:
        self.headers = HeaderDecompressor()
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[Frame]:
        self._buf += data
        frames: list[Frame] = []
        while len(self._buf) >= 8:
            (length,) = struct.unpack_from(">I", self._buf, 4)
            length &= 0xFFFFFF
            if len(self._buf) < 8 + length:
                break
            head = bytes(self._buf[:8])
            body = bytes(self._buf[8:8 + length])
            del self._buf[:8 + length]
            frame = self._frame(head, body)
            if frame is not None:
                frames.append(frame)
        return frames

    def _frame(self, head: bytes, body: bytes) -> Frame | None:
        word0, word1 = struct.unpack(">II", head)
        flags = word1 >> 24
        fin = bool(flags & FLAG_FIN)
        if not word0 & 0x80000000:
            return Data(word0 & 0x7FFFFFFF, body, fin)
        version = (word0 >> 16) & 0x7FFF
        ftype = word0 & 0xFFFF
        if version != VERSION:
            raise ProtocolError(f"unsupported SPDY version {version}")
        try:
            if ftype == SYN_STREAM:
                sid, assoc, prio, _slot = struct.unpack_from(">IIBB", body)
                return SynStream(sid & 0x7FFFFFFF, self.headers.decompress(body[10:]),
                                 assoc & 0x7FFFFFFF, prio >> 5, fin,
                                 bool(flags & FLAG_UNIDIRECTIONAL))
            if ftype in (SYN_REPLY, HEADERS):
                (sid,) = struct.unpack_from(">I", body)
                headers = self.headers.decompress(body[4:])
                cls = SynReply if ftype == SYN_REPLY else HeadersFrame
                return cls(sid & 0x7FFFFFFF, headers, fin)
            if ftype == RST_STREAM:
                sid, status = struct.unpack_from(">II", body)
                return RstStream(sid & 0x7FFFFFFF, status)
            if ftype == SETTINGS:
                (count,) = struct.unpack_from(">I", body)
                entries = []
                for i in range(count):
                    fid, value = struct.unpack_from(">II", body, 4 + 8 * i)
                    entries.append((fid >> 24, fid & 0xFFFFFF, value))
                return Settings(tuple(entries), bool(flags & 1))
            if ftype == PING:
                (pid,) = struct.unpack_from(">I", body)
                return Ping(pid)
            if ftype == GOAWAY:
                last, status = struct.unpack_from(">II", body) if len(body) >= 8 else (
                    struct.unpack_from(">I", body)[0], GOAWAY_OK)
                return GoAway(last & 0x7FFFFFFF, status)
            if ftype == WINDOW_UPDATE:
                sid, delta = struct.unpack_from(">II", body)
                return WindowUpdate(sid & 0x7FFFFFFF, delta & 0x7FFFFFFF)
        except struct.error as exc:
            raise ProtocolError(f"short control frame type {ftype}: {exc}") from exc
        return None
