"""The query log: entries the feeder logs and batches the answering process sends."""

from __future__ import annotations

import marshal

from podnet.dns.querylog import QueryLog

NAME = b"\x03web\x07default\x03svc\x07cluster\x05local\x00"


def entry(t: int, transport: str = "udp") -> tuple[object, ...]:
    return (t, ("10.244.0.5", 4000 + t), NAME, 1, 0, 2000, transport)


def test_batches_and_single_entries_read_in_time_order() -> None:
    log = QueryLog(4, wall=lambda: 1000.0, mono_ns=lambda: 0)
    log.add_batch(2, marshal.dumps([entry(1), entry(3)]))
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
        log.add_batch(2, marshal.dumps([entry(2 * b), entry(2 * b + 1)]))
    assert len(log) == 4
    assert [e.source for e in log.entries()] == [f"10.244.0.5:{4000 + t}" for t in (6, 7, 8, 9)]
    log.clear()
    assert len(log) == 0 and log.entries() == []
