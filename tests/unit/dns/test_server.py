"""The real server on 127.0.0.1, asked with dnspython over UDP and TCP."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from typing import Any, TypeVar, cast

import pytest
from dns import flags as dflags
from dns import message as dmessage
from dns import query as dquery
from dns import rcode as drcode
from dns import rrset as drrset

from podnet.dns.forward import Upstream
from podnet.dns.querylog import QueryLog
from podnet.dns.records import Zone, ZoneFeeder
from podnet.dns.server import DnsServer
from tests.unit.dns import SOA_LINE, Cluster

T = TypeVar("T")
HOST = "127.0.0.1"
WEB = "web.default.svc.cluster.local."


class _FakeUpstream(asyncio.DatagramProtocol):
    """Answers A for *.example.com. with 192.0.2.1 (my.database… with 192.0.2.7)."""

    def __init__(self) -> None:
        self.transport: asyncio.DatagramTransport | None = None
        self.questions: list[str] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # (asyncio's own UDP transport does not subclass DatagramTransport on 3.11)
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        query = dmessage.from_wire(data)
        q = query.question[0]
        self.questions.append(q.name.to_text())
        resp = dmessage.make_response(query)
        if q.name.to_text().endswith("example.com.") and q.rdtype == 1:
            ip = "192.0.2.7" if q.name.to_text().startswith("my.database") else "192.0.2.1"
            resp.answer.append(drrset.from_text(q.name, 60, "IN", "A", ip))
        else:
            resp.set_rcode(drcode.NXDOMAIN)
        assert self.transport is not None
        self.transport.sendto(resp.to_wire(), addr)


class ServerCluster(Cluster):
    def __init__(self, upstreams: list[Upstream] | None = None, synced: bool = True,
                 fake_upstream: bool = False) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.zone = Zone()
        super().__init__(ZoneFeeder(self.zone), self._apply)
        self.upstream = _FakeUpstream()
        ups = list(upstreams or [])
        if fake_upstream:
            ups.append(self.call(self._start_upstream()))
        self.log = QueryLog(100)
        self.server = DnsServer(self.zone, HOST, 0, ups, self.log)
        self.call(self.server.start())
        if synced:
            self.apply(self.feeder.mark_synced)

    async def _start_upstream(self) -> Upstream:
        transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(
            lambda: self.upstream, local_addr=(HOST, 0))
        self._upstream_transport = transport
        return HOST, int(transport.get_extra_info("sockname")[1])

    def call(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=5)

    def _apply(self, fn: Callable[[], None]) -> None:
        async def run() -> None:
            fn()
        self.call(run())

    def close(self) -> None:
        self.call(self.server.stop())
        if self.upstream.transport is not None:
            self.upstream.transport.close()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()

    def message(self, name: str, rtype: str, tcp: bool = False,
                **kw: Any) -> dmessage.Message:
        q = dmessage.make_query(name, rtype, **kw)
        if tcp:
            return dquery.tcp(q, HOST, port=self.server.port, timeout=3)
        return dquery.udp(q, HOST, port=self.server.port, timeout=3)

    def query(self, name: str, rtype: str) -> tuple[str, list[str], list[str], list[str]]:
        msg = self.message(name, rtype)

        def text(section: list[drrset.RRset]) -> list[str]:
            return [line for rrset in section for line in rrset.to_text().splitlines()]
        return (drcode.to_text(msg.rcode()), text(msg.answer), text(msg.authority),
                text(msg.additional))


@pytest.fixture
def dns() -> Iterator[ServerCluster]:
    c = ServerCluster()
    yield c
    c.close()




def test_named_port_gets_srv(dns: ServerCluster) -> None:
    dns.add_service("web", "default", cluster_ip="10.96.0.20", ports=[("http", 80, "TCP")])
    assert dns.ask("_http._tcp.web.default.svc.cluster.local.", "SRV") == [
        "_http._tcp.web.default.svc.cluster.local. 5 IN SRV 0 100 80 "
        "web.default.svc.cluster.local.",
    ]
    assert dns.additional("_http._tcp.web.default.svc.cluster.local.", "SRV") == [
        f"{WEB} 5 IN A 10.96.0.20"]


def test_every_record_kind_over_the_wire(dns: ServerCluster) -> None:
    dns.add_service("web", cluster_ip="10.96.0.20")
    dns.add_service("db", headless=True)
    dns.set_endpoints("db", endpoints=[("10.244.0.7", "db-0", True)], ports=[("pg", 5432, "TCP")])
    dns.add_service("my-service", external_name="my.database.example.com")
    dns.add_pod("p", ip="10.244.0.11", hostname="h", subdomain="db")
    db = "db.default.svc.cluster.local."
    for _ in range(2):  # the first answer is encoded, the second comes from the cache
        assert dns.ask("dns-version.cluster.local.", "TXT") == [
            'dns-version.cluster.local. 5 IN TXT "1.1.0"']
        assert dns.ask(WEB, "A") == [f"{WEB} 5 IN A 10.96.0.20"]
        assert dns.ask("20.0.96.10.in-addr.arpa.", "PTR") == [
            f"20.0.96.10.in-addr.arpa. 5 IN PTR {WEB}"]
        assert dns.ask(db, "A") == [f"{db} 5 IN A 10.244.0.7"]
        assert dns.ask("db-0." + db, "A") == [f"db-0.{db} 5 IN A 10.244.0.7"]
        assert dns.ask("h." + db, "A") == [f"h.{db} 5 IN A 10.244.0.11"]
        assert dns.ask("_pg._tcp." + db, "SRV") == [
            f"_pg._tcp.{db} 5 IN SRV 0 100 5432 db-0.{db}"]
        assert dns.ask("7.0.244.10.in-addr.arpa.", "PTR") == [
            f"7.0.244.10.in-addr.arpa. 5 IN PTR db-0.{db}"]
        assert dns.ask("my-service.default.svc.cluster.local.", "A") == [
            "my-service.default.svc.cluster.local. 5 IN CNAME my.database.example.com."]
        assert dns.ask("10-244-0-11.default.pod.cluster.local.", "A") == [
            "10-244-0-11.default.pod.cluster.local. 5 IN A 10.244.0.11"]


def test_nxdomain_and_nodata_carry_the_soa(dns: ServerCluster) -> None:
    dns.add_service("web", cluster_ip="10.96.0.20")
    for _ in range(2):
        assert dns.query("nope.default.svc.cluster.local.", "A") == (
            "NXDOMAIN", [], [SOA_LINE], [])
        assert dns.query(WEB, "AAAA") == ("NOERROR", [], [SOA_LINE], [])
    msg = dns.message(WEB, "AAAA")
    assert msg.flags & dflags.AA


def test_case_is_echoed_as_asked(dns: ServerCluster) -> None:
    dns.add_service("web", cluster_ip="10.96.0.20")
    for spelling in ("web.default.svc.cluster.local.", "WeB.dEfAuLt.SVC.cluster.local.",
                     "WEB.DEFAULT.SVC.CLUSTER.LOCAL."):
        assert dns.ask(spelling, "A") == [f"{spelling} 5 IN A 10.96.0.20"]


def test_external_name_chased_in_zone(dns: ServerCluster) -> None:
    dns.add_service("web", cluster_ip="10.96.0.20")
    dns.add_service("alias", external_name=WEB)
    assert dns.ask("alias.default.svc.cluster.local.", "A") == [
        f"alias.default.svc.cluster.local. 5 IN CNAME {WEB}", f"{WEB} 5 IN A 10.96.0.20"]
    dns.add_service("web", cluster_ip="10.96.0.21")  # the alias follows at once
    assert dns.ask("alias.default.svc.cluster.local.", "A")[1] == f"{WEB} 5 IN A 10.96.0.21"


def test_large_answer_truncates_then_tcp(dns: ServerCluster) -> None:
    dns.add_service("big", headless=True)
    dns.set_endpoints("big", endpoints=[(f"10.244.1.{i}", "", True) for i in range(1, 41)],
                      ports=[("http", 80, "TCP")])
    name = "_http._tcp.big.default.svc.cluster.local."
    udp = dns.message(name, "SRV")
    assert udp.flags & dflags.TC and not udp.answer
    q = dmessage.make_query(name, "SRV")
    resp, used_tcp = dquery.udp_with_fallback(q, HOST, port=dns.server.port, timeout=3)
    assert used_tcp and len(resp.answer[0]) == 40
    assert len(dns.message(name, "SRV", tcp=True).answer[0]) == 40
    a = dns.message("big.default.svc.cluster.local.", "A", use_edns=0, payload=1232)
    assert not a.flags & dflags.TC and len(a.answer[0]) == 40 and a.edns == 0
    a = dns.message("big.default.svc.cluster.local.", "A")
    assert a.flags & dflags.TC  # 40 A records (672 bytes) exceed 512 without EDNS


def test_edns0(dns: ServerCluster) -> None:
    dns.add_service("web", cluster_ip="10.96.0.20")
    for _ in range(2):
        msg = dns.message(WEB, "A", use_edns=0, payload=4096, want_dnssec=True)
        assert msg.edns == 0 and msg.payload == 1232 and msg.ednsflags & dflags.DO
        assert [str(r) for r in msg.answer[0]] == ["10.96.0.20"]
    bad = dns.message(WEB, "A", use_edns=1)
    assert bad.rcode() == drcode.BADVERS


def test_servfail_until_synced_never_nxdomain() -> None:
    c = ServerCluster(synced=False)
    try:
        c.add_service("web", cluster_ip="10.96.0.20")
        assert c.rcode(WEB, "A") == "SERVFAIL"
        assert c.rcode("nope.default.svc.cluster.local.", "A") == "SERVFAIL"
        assert c.rcode("20.0.96.10.in-addr.arpa.", "PTR") == "SERVFAIL"
        c.apply(c.feeder.mark_synced)
        assert c.ask(WEB, "A") == [f"{WEB} 5 IN A 10.96.0.20"]
        assert c.rcode("nope.default.svc.cluster.local.", "A") == "NXDOMAIN"
    finally:
        c.close()


def test_forwarding_to_upstream() -> None:
    c = ServerCluster(fake_upstream=True)
    try:
        assert c.ask("www.example.com.", "A") == ["www.example.com. 60 IN A 192.0.2.1"]
        assert c.rcode("nothing.test.", "A") == "NXDOMAIN"
        msg = c.message("www.example.com.", "A", tcp=True)
        assert [str(r) for r in msg.answer[0]] == ["192.0.2.1"]
        # ExternalName: the CNAME, then the upstream's answer for its target.
        c.add_service("my-service", external_name="my.database.example.com")
        assert c.ask("my-service.default.svc.cluster.local.", "A") == [
            "my-service.default.svc.cluster.local. 5 IN CNAME my.database.example.com.",
            "my.database.example.com. 60 IN A 192.0.2.7"]
        # Cluster names never go upstream.
        c.rcode("nope.default.svc.cluster.local.", "A")
        assert not any(q.endswith("cluster.local.") for q in c.upstream.questions)
    finally:
        c.close()


def test_fast_servfail_with_dead_upstreams() -> None:
    closed = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    closed.bind((HOST, 0))
    dead = closed.getsockname()[1]
    closed.close()  # nothing listens: port unreachable
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    silent.bind((HOST, 0))  # bound but never answers: a black hole
    c = ServerCluster(upstreams=[(HOST, dead), (HOST, silent.getsockname()[1])])
    try:
        # An answer at all (the query's own 3 s timeout would raise otherwise): the dead
        # upstream is skipped at its port-unreachable, the silent one after the
        # forwarder's short per-try timeout.
        assert c.rcode("www.example.com.", "A") == "SERVFAIL"
    finally:
        c.close()
        silent.close()


def test_no_upstream_is_a_servfail(dns: ServerCluster) -> None:
    assert dns.rcode("www.example.com.", "A") == "SERVFAIL"


def test_a_change_is_visible_in_the_next_answer(dns: ServerCluster) -> None:
    dns.add_service("db", headless=True)
    dns.set_endpoints("db", endpoints=[("10.244.0.7", "", True)])
    db = "db.default.svc.cluster.local."
    assert dns.ask(db, "A") == [f"{db} 5 IN A 10.244.0.7"]
    dns.set_endpoints("db", endpoints=[("10.244.0.8", "", True)])
    assert dns.ask(db, "A") == [f"{db} 5 IN A 10.244.0.8"]
    assert dns.rcode("10-244-0-7." + db, "A") == "NXDOMAIN"
    dns.delete_service("db")
    assert dns.rcode(db, "A") == "NXDOMAIN"
    dns.add_service("new", cluster_ip="10.96.0.99")  # NXDOMAIN was cached: now it exists
    assert dns.rcode("new.default.svc.cluster.local.", "A") == "NOERROR"


def test_query_log(dns: ServerCluster) -> None:
    dns.add_service("web", cluster_ip="10.96.0.20")
    dns.ask("WEB.default.svc.cluster.local.", "A")
    dns.ask("web.default.svc.cluster.local.", "A")
    dns.message("nope.default.svc.cluster.local.", "SRV", tcp=True)
    # The server logs right after it answers: give its loop a moment to get there.
    deadline = time.monotonic() + 2
    while len(dns.log.entries()) < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    got = [(e.name, e.type, e.rcode, e.transport) for e in dns.log.entries()]
    assert got == [(WEB, "A", "NOERROR", "udp"), (WEB, "A", "NOERROR", "udp"),
                   ("nope.default.svc.cluster.local.", "SRV", "NXDOMAIN", "tcp")]
    assert all(e.source.startswith("127.0.0.1:") and e.latency_us > 0
               for e in dns.log.entries())


def test_malformed_queries_do_not_break_the_server(dns: ServerCluster) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(2)
        s.sendto(b"\x12\x34\x01\x00\x00\x02" + bytes(6), (HOST, dns.server.port))
        resp = s.recv(512)
        assert resp[:2] == b"\x12\x34" and resp[3] & 0xF == 1  # FORMERR
        s.sendto(b"\x00", (HOST, dns.server.port))  # dropped
    assert dns.rcode("dns-version.cluster.local.", "TXT") == "NOERROR"


def test_the_worker_answers_alone_and_stops_with_the_server() -> None:
    c = ServerCluster()
    proc = c.server.worker
    assert proc is not None and proc.poll() is None
    try:
        c.add_service("web", cluster_ip="10.96.0.20", ports=[("http", 80, "TCP")])
        c.call(c.server.drain())  # the first sync's table push runs in the background
        for tcp in (False, True):
            assert c.message(WEB, "A", tcp=tcp).answer[0].to_text() == f"{WEB} 5 IN A 10.96.0.20"
            assert c.message("nope." + WEB, "A", tcp=tcp).rcode() == drcode.NXDOMAIN
        assert c.server.relayed == 0  # none of these needed the feeder
    finally:
        c.close()
    assert proc.poll() is not None  # stopped, and reaped


def test_a_worker_that_dies_is_replaced_on_the_same_port(dns: ServerCluster) -> None:
    dns.add_service("web", cluster_ip="10.96.0.20")
    first = dns.server.worker
    assert first is not None
    first.kill()  # a process this test's server started, by its PID
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        new = dns.server.worker
        if new is not None and new is not first and new.poll() is None:
            break
        time.sleep(0.05)
    dns.call(dns.server.drain())
    dns.add_service("web", cluster_ip="10.96.0.21")  # changes reach the new worker too
    assert dns.ask(WEB, "A") == [f"{WEB} 5 IN A 10.96.0.21"]
    assert dns.server.relayed == 0
