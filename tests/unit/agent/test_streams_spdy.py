"""SPDY/3 frames: encode, then decode with a fresh decoder, and get the same frame back;
header blocks compressed with the SPDY/3 dictionary in one running zlib context."""

from __future__ import annotations

import struct
import zlib

import pytest

from podnet.agent.streams import spdy


def test_dictionary_is_the_spdy3_one() -> None:
    # Length and zlib dictionary id (Adler-32) of the draft's §2.6.10.1 dictionary.
    assert len(spdy.DICTIONARY) == 1423
    assert zlib.adler32(spdy.DICTIONARY) == 0xE3C6A7C2
    assert spdy.DICTIONARY.startswith(b"\x00\x00\x00\x07options\x00\x00\x00\x04head")
    assert b"Aug Sept Oct" in spdy.DICTIONARY
    assert spdy.DICTIONARY.endswith(b",*,enq=0.")


FRAMES: list[spdy.Frame] = [
    spdy.SynStream(1, {"streamtype": ["error"], "port": ["8080"], "requestid": ["0"]},
                   fin=True),
    spdy.SynStream(3, {"streamtype": ["data"], "port": ["8080"], "requestid": ["0"]},
                   associated_id=0, priority=2, unidirectional=True),
    spdy.SynReply(1),
    spdy.SynReply(3, {"x": ["a", "b"]}, fin=True),
    spdy.HeadersFrame(3, {"trailer": ["yes"]}),
    spdy.Data(3, b"hello", fin=False),
    spdy.Data(3, b"", fin=True),
    spdy.Data(5, bytes(range(256)) * 300),
    spdy.RstStream(3, spdy.RST_CANCEL),
    spdy.Settings(((0, 7, 65536), (1, 4, 100))),
    spdy.Ping(0xFFFFFFFF),
    spdy.Ping(1),
    spdy.GoAway(7, spdy.GOAWAY_PROTOCOL_ERROR),
    spdy.WindowUpdate(3, 65536),
]


def test_round_trip_in_one_session() -> None:
    enc, dec = spdy.FrameEncoder(), spdy.FrameDecoder()
    wire = b"".join(enc.encode(f) for f in FRAMES)
    assert dec.feed(wire) == FRAMES


def test_round_trip_byte_by_byte() -> None:
    """The websocket carries the stream in arbitrary slices, down to single bytes."""
    enc, dec = spdy.FrameEncoder(), spdy.FrameDecoder()
    wire = b"".join(enc.encode(f) for f in FRAMES)
    got: list[spdy.Frame] = []
    for i in range(len(wire)):
        got += dec.feed(wire[i:i + 1])
    assert got == FRAMES


def test_header_context_spans_frames() -> None:
    """The second block with the same headers is tiny: it refers back into the first,
    so a decoder that did not see the first one cannot read it."""
    enc = spdy.FrameEncoder()
    headers = {"streamtype": ["data"], "port": ["8080"], "requestid": ["41"]}
    first = enc.encode(spdy.SynStream(1, headers))
    second = enc.encode(spdy.SynStream(3, headers))
    assert len(second) < len(first)
    dec = spdy.FrameDecoder()
    assert dec.feed(first + second) == [spdy.SynStream(1, headers), spdy.SynStream(3, headers)]
    with pytest.raises(spdy.ProtocolError):
        spdy.FrameDecoder().feed(second)


def test_header_block_layout_and_dictionary() -> None:
    """Control frame header as the draft lays it out; the block inflates with the
    dictionary (plain zlib, preset-dictionary flag set) to the name/value layout."""
    frame = spdy.FrameEncoder().encode(spdy.SynReply(5, {"Port": ["80"]}))
    word0, word1, sid = struct.unpack_from(">III", frame)
    assert word0 == 0x8000_0000 | (3 << 16) | spdy.SYN_REPLY
    assert word1 & 0xFFFFFF == len(frame) - 8
    assert sid == 5
    block = frame[12:]
    assert block[1] & 0x20  # FDICT
    z = zlib.decompressobj(zdict=spdy.DICTIONARY)
    raw = z.decompress(block)
    assert raw == struct.pack(">I", 1) + struct.pack(">I", 4) + b"port" + \
        struct.pack(">I", 2) + b"80"


def test_data_frame_layout() -> None:
    wire = spdy.FrameEncoder().encode(spdy.Data(7, b"abc", fin=True))
    assert wire == struct.pack(">II", 7, (spdy.FLAG_FIN << 24) | 3) + b"abc"


def test_unknown_control_frames_are_skipped_and_bad_version_refused() -> None:
    dec = spdy.FrameDecoder()
    unknown = struct.pack(">HHI", 0x8003, 0x00F0, 4) + b"abcd"
    assert dec.feed(unknown + spdy.FrameEncoder().encode(spdy.Ping(3))) == [spdy.Ping(3)]
    with pytest.raises(spdy.ProtocolError):
        spdy.FrameDecoder().feed(struct.pack(">HHII", 0x8002, spdy.PING, 4, 1))


def test_multi_valued_headers_split_on_nul() -> None:
    enc, dec = spdy.FrameEncoder(), spdy.FrameDecoder()
    frame = spdy.SynReply(1, {"set-cookie": ["a=1", "b=2"]})
    assert dec.feed(enc.encode(frame)) == [frame]
