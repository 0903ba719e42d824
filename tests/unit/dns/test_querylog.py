"""The query log: entries the feeder logs and batches the answering process sends."""

from __future__ import annotations

import marshal

from podnet.dns.querylog import QueryLog

NAME = b"\x03web\x07default\x03svc\x07cluster\x05local\x00"


QUERY = b"\x12\x34\x01\x00\x00\x01" + bytes(6) + NAME + b"\x00\x01\x00\x01"


def entry(t: int, transport: str = "udp") -> tuple[object, ...]:
    """As the feeder logs it: the question's name (wire) and type."""
    return (t, ("10.244.0.5", 4000 + t), NAME, 1, 0, 2000, transport)


def sent(t: int) -> tuple[object, ...]:
    """As the answering process sends it: the query message as received."""
    return (t, ("10.244.0.5", 4000 + t), QUERY, 0, 2000, "udp")


def test_batches_and_single_entries_read_in_time_order() -> None:
    log = QueryLog(4, wall=lambda: 1000.0, mono_ns=lambda: 0)
    log.add_batch(2, marshal.dumps([sent(1), sent(3)]))
    log.append(entry(2, "tcp"))  # type: ignore[arg-type]
    got = [(e.source, e.transport) for e in log.entries()]
    assert got == [("10.244.0.5:4001", "udp"), ("10.244.0.5:4002", "tcp"),
                   ("10.244.0.5:4003", "udp")]
    e = log.entries()[0]
    assert (e.name, e.type, e.rcode, e.latency_us, e.time) == (
        "web.default.svc.cluster.local.", "A", "NOERROR", 2.0, 1000.0)


def test_capacity_drops_the_oldest_batches() -> None:
    log = QueryLog(4)
    for b in range(5):
        log.add_batch(2, marshal.dumps([sent(2 * b), sent(2 * b + 1)]))
    assert len(log) == 4
    assert [e.source for e in log.entries()] == [f"10.244.0.5:{4000 + t}" for t in (6, 7, 8, 9)]
    log.clear()
    assert len(log) == 0 and log.entries() == []
