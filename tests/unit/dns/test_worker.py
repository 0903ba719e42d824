"""The answering process's table: every record kind, asked of `worker.Answerer` alone.

`TableCluster` feeds a Zone as the server does (each change → `table.changes` of the dirty
names → the worker's table) and asks the worker's pure answering logic; what it relays
to the feeder is answered by the Zone, as the server's slow path would, and recorded.
The record-kind tests of `test_records` run here again against the table.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from dns import flags as dflags
from dns import message as dmessage
from dns import rcode as drcode
from dns import rrset as drrset

from podnet.dns import table, worker
from podnet.dns.records import Zone
from podnet.dns.server import _WORKER_BOOT
from tests.unit.dns import SOA_LINE
from tests.unit.dns.test_records import (  # noqa: F401  (collected here, against the table)
    WEB,
    ZoneCluster,
    test_cluster_ip_service,
    test_cname_loop_is_servfail,
    test_deletes_remove_every_record,
    test_external_name,
    test_external_name_chased_inside_the_zone,
    test_headless_service,
    test_headless_without_ready_endpoints_is_nxdomain,
    test_nxdomain_and_nodata,
    test_pod_dashed_ip,
    test_pod_hostname_and_subdomain,
    test_publish_not_ready_addresses,
    test_replace_all_after_relist,
    test_schema_version,
    test_udp_port_srv_and_ipv6,
)

Lines = list[str]


def _text(section: list[drrset.RRset]) -> Lines:
    return [line for rrset in section for line in rrset.to_text().splitlines()]


class TableCluster(ZoneCluster):
    def __init__(self, zone: Zone | None = None) -> None:
        super().__init__()
        if zone is not None:
            self.zone = zone
            self.feeder.zone = zone
        self.answerer = worker.Answerer()
        self.answerer.configure(table.config(self.zone))
        self.answerer.update(table.changes(self.zone, table.all_names(self.zone)))
        self.zone.take_dirty()
        self.zone.on_change = self._push
        self.zone.mark_synced()
        self.answerer.synced = True
        self.relayed: list[tuple[str, str]] = []

    def _push(self) -> None:
        self.answerer.update(table.changes(self.zone, self.zone.take_dirty()))

    def wire(self, data: bytes, tcp: bool = True) -> bytes | None:
        return self.answerer.answer(data, tcp)

    def query(self, name: str, rtype: str) -> tuple[str, Lines, Lines, Lines]:
        resp = self.wire(dmessage.make_query(name, rtype).to_wire())
        if resp is None:  # the feeder answers it (from the Zone)
            self.relayed.append((name, rtype))
            return super().query(name, rtype)
        msg = dmessage.from_wire(resp)
        assert msg.flags & dflags.AA and msg.flags & dflags.RD
        return (drcode.to_text(msg.rcode()), _text(msg.answer), _text(msg.authority),
                _text(msg.additional))


@pytest.fixture
def dns() -> TableCluster:  # the fixture the imported record-kind tests use
    return TableCluster()


def test_cluster_names_are_answered_without_the_feeder(dns: TableCluster) -> None:
    dns.add_service("web", cluster_ip="10.96.0.20", ports=[("http", 80, "TCP")])
    dns.add_service("db", headless=True)
    dns.set_endpoints("db", endpoints=[("10.244.0.7", "db-0", True)], ports=[("pg", 5432, "TCP")])
    dns.add_service("alias", external_name=WEB)
    for name, rtype in [(WEB, "A"), (WEB, "AAAA"), ("_http._tcp." + WEB, "SRV"),
                        ("nope.default.svc.cluster.local.", "A"), ("cluster.local.", "SOA"),
                        ("20.0.96.10.in-addr.arpa.", "PTR"), ("20.0.96.10.in-addr.arpa.", "A"),
                        ("db-0.db.default.svc.cluster.local.", "A"), ("svc.cluster.local.", "A"),
                        ("alias.default.svc.cluster.local.", "A"),
                        ("alias.default.svc.cluster.local.", "TXT"),
                        ("10-244-0-5.default.pod.cluster.local.", "A"),
                        ("default.pod.cluster.local.", "A")]:
        dns.query(name, rtype)
    assert dns.relayed == []


def test_reverse_nodata_carries_the_reverse_soa(dns: TableCluster) -> None:
    dns.add_service("web", cluster_ip="10.96.0.20")
    assert dns.authority("20.0.96.10.in-addr.arpa.", "A") == [
        SOA_LINE.replace("cluster.local. 5", "in-addr.arpa. 5", 1)]


def test_what_the_worker_relays(dns: TableCluster) -> None:
    dns.add_service("my-service", external_name="my.database.example.com")
    dns.add_service("web", cluster_ip="10.96.0.20")
    relay = [dmessage.make_query(WEB, "ANY"),
             dmessage.make_query("cluster.local.", "AXFR"),
             dmessage.make_query(WEB, "A", rdclass="CH"),
             dmessage.make_query("www.example.com.", "A"),
             dmessage.make_query("8.8.8.8.in-addr.arpa.", "PTR"),
             dmessage.make_query("my-service.default.svc.cluster.local.", "A"),
             dmessage.make_query(WEB, "A", use_edns=1)]
    for q in relay:
        assert dns.wire(q.to_wire()) is None, q.question
    assert dns.wire(b"\x00\x01\x01\x00\x00\x01") is None  # too short: the feeder's FORMERR
    before = TableCluster()
    before.answerer.synced = False
    assert before.wire(dmessage.make_query(WEB, "A").to_wire()) is None


def test_pod_names_are_as_strict_as_ipaddress(dns: TableCluster) -> None:
    for label in ("010-244-0-5", "256-1-1-1", "1-2-3", "a-b-c-d", "1-2-3-4-5"):
        assert dns.rcode(f"{label}.default.pod.cluster.local.", "A") == "NXDOMAIN", label
    assert dns.ask("fd00--1.default.pod.cluster.local.", "AAAA") == [
        "fd00--1.default.pod.cluster.local. 5 IN AAAA fd00::1"]
    assert dns.query("fd00--1.default.pod.cluster.local.", "A") == (
        "NOERROR", [], [SOA_LINE], [])
    for name in ("1-2-3-4.pod.cluster.local.", "x.1-2-3-4.default.pod.cluster.local."):
        assert dns.query(name, "A") == ZoneCluster().query(name, "A")


def test_pod_names_verified_come_from_the_table() -> None:
    c = TableCluster(Zone(pods="verified"))
    c.add_pod("p", ip="10.244.0.5")
    assert c.ask("10-244-0-5.default.pod.cluster.local.", "A") == [
        "10-244-0-5.default.pod.cluster.local. 5 IN A 10.244.0.5"]
    assert c.rcode("10-244-0-6.default.pod.cluster.local.", "A") == "NXDOMAIN"
    c.delete_pod("p")
    assert c.rcode("10-244-0-5.default.pod.cluster.local.", "A") == "NXDOMAIN"
    assert c.relayed == []


def test_id_case_edns_and_truncation(dns: TableCluster) -> None:
    dns.add_service("big", headless=True)
    dns.set_endpoints("big", endpoints=[(f"10.244.1.{i}", "", True) for i in range(1, 41)])
    name = "BiG.default.svc.cluster.local."
    q = dmessage.make_query(name, "A")
    udp = dns.wire(q.to_wire(), tcp=False)
    assert udp is not None
    msg = dmessage.from_wire(udp)
    assert msg.id == q.id and msg.flags & dflags.TC and not msg.answer
    assert msg.question[0].name.to_text() == name  # 0x20 spelling echoed
    q = dmessage.make_query(name, "A", use_edns=0, payload=1232, want_dnssec=True)
    edns = dns.wire(q.to_wire(), tcp=False)
    assert edns is not None
    msg = dmessage.from_wire(edns)
    assert not msg.flags & dflags.TC and len(msg.answer[0]) == 40
    assert msg.edns == 0 and msg.payload == 1232 and msg.ednsflags & dflags.DO
    q = dmessage.make_query(name, "A", use_edns=0, payload=512)
    small = dns.wire(q.to_wire(), tcp=False)
    assert small is not None
    msg = dmessage.from_wire(small)
    assert msg.flags & dflags.TC and msg.edns == 0
    q = dmessage.make_query(name, "A")
    q.flags &= ~dflags.RD
    tcp = dns.wire(q.to_wire())
    assert tcp is not None
    msg = dmessage.from_wire(tcp)
    assert not msg.flags & dflags.RD and len(msg.answer[0]) == 40


def test_a_label_with_a_zero_byte_is_not_misread(dns: TableCluster) -> None:
    dns.add_service("web", cluster_ip="10.96.0.20")
    q = bytearray(dmessage.make_query(WEB, "A").to_wire())
    q[12:16] = b"\x03w\x00b"  # `w\0b.default…`: find(0) stops inside the first label
    resp = dns.wire(bytes(q))
    assert resp is None or dmessage.from_wire(resp).rcode() == drcode.NXDOMAIN


def test_frames_round_trip() -> None:
    buf = bytearray(worker.frame(worker.TABLE, [(b"\x01a\x00", b"x" * 20)])
                    + worker.frame(worker.SYNCED, None))
    whole = bytes(buf)
    buf += whole[:7]  # a partial third frame stays for the next read
    assert worker.read_frames(buf) == [(worker.TABLE, [(b"\x01a\x00", b"x" * 20)]),
                                       (worker.SYNCED, None)]
    assert bytes(buf) == whole[:7]


def test_the_worker_exits_when_its_feeder_goes() -> None:
    ours, theirs = socket.socketpair()
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", 0))
    tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    tcp.bind(("127.0.0.1", 0))
    tcp.listen()
    fds = (theirs.fileno(), udp.fileno(), tcp.fileno())
    proc = subprocess.Popen([sys.executable, "-I", "-S", "-c", _WORKER_BOOT,
                             str(Path(worker.__file__).parent), *map(str, fds)], pass_fds=fds)
    try:
        for s in (theirs, udp, tcp):
            s.close()
        time.sleep(0.2)
        assert proc.poll() is None
        ours.close()  # the feeder dies (or stops): the worker follows
        assert proc.wait(5) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_query_log_batches_are_dropped_not_buffered_when_the_feeder_falls_behind() -> None:
    ours, theirs = socket.socketpair()
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        w = worker.Worker(theirs, udp, tcp)
        w.cout += b"x" * (worker.LOG_BACKLOG + 1)  # the feeder has not read for a while
        w.log = [(0, ("10.244.0.5", 5353), b"q", 0, 1, "udp")] * 3
        w._flush_log()
        assert (w.log_dropped, w.log, len(w.cout)) == (3, [], worker.LOG_BACKLOG + 1)
        w.cout.clear()
        w.log = [(0, ("10.244.0.5", 5353), b"q", 0, 1, "udp")]
        w._flush_log()  # room again: sent (or queued) as a LOG frame
        assert w.log_dropped == 3 and (ours.recv(65536) or w.cout)
    finally:
        for s in (ours, theirs, udp, tcp):
            s.close()
