"""Queries parsed and answers encoded, checked against dnspython's reading of them."""

from __future__ import annotations

import dns.edns
import dns.flags
import dns.message
import dns.rcode
import dns.rrset
import pytest

from podnet.dns.records import NXDOMAIN, SOA, Answer, Record, Srv, Zone
from podnet.dns.wire import (
    MAX_UDP,
    Prepared,
    WireError,
    error_response,
    parse_answers,
    parse_query,
    respond,
)

SRV_T = 33
NAME = "_http._tcp.web.default.svc.cluster.local."


def lines(wire: bytes) -> list[str]:
    msg = dns.message.from_wire(wire)
    return [line for rrset in msg.answer for line in rrset.to_text().splitlines()]


def srv_answer(n: int) -> Answer:
    return Answer(0, tuple(Record(NAME, SRV_T, 5, Srv(0, 100, 80,
                                                      f"10-244-0-{i}.web.default.svc.cluster.local."))
                           for i in range(n)))


def test_parse_plain_and_edns_queries() -> None:
    q = parse_query(dns.message.make_query("WeB.default.svc.cluster.local.", "A").to_wire())
    assert (q.qname, q.qtype, q.qclass, q.edns_size) == ("web.default.svc.cluster.local.", 1,
                                                         1, None)
    assert q.qname_wire.startswith(b"\x03WeB")
    cookie = dns.edns.GenericOption(dns.edns.OptionType.COOKIE, b"12345678")
    q = parse_query(dns.message.make_query("a.b.", "AAAA", use_edns=0, payload=4096,
                                           want_dnssec=True, options=[cookie]).to_wire())
    assert (q.qtype, q.edns_size, q.edns_version, q.do) == (28, 4096, 0, True)


@pytest.mark.parametrize("data,rcode", [
    (b"\x00\x01", None),  # shorter than a header: drop
    (b"\x00\x01\x00\x00\x00\x02\x00\x00\x00\x00\x00\x00", 1),  # two questions: FORMERR
    (b"\x00\x01\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x05ab", 1),  # truncated name
])
def test_malformed_queries(data: bytes, rcode: int | None) -> None:
    with pytest.raises(WireError) as info:
        parse_query(data)
    assert info.value.rcode == rcode


def test_answer_echoes_id_and_question_case() -> None:
    query = dns.message.make_query("WEB.Default.svc.cluster.local.", "A")
    data = query.to_wire()
    q = parse_query(data)
    ans = Answer(0, (Record("web.default.svc.cluster.local.", 1, 5, "10.96.0.20"),))
    resp = respond(data, q.qend, Prepared(q.qname_wire, ans), None, False, False)
    msg = dns.message.from_wire(resp)
    assert msg.id == query.id and msg.question[0].name.to_text() == "WEB.Default.svc.cluster.local."
    assert lines(resp) == ["WEB.Default.svc.cluster.local. 5 IN A 10.96.0.20"]  # compressed


def test_one_prepared_answer_serves_every_spelling() -> None:
    ans = Answer(NXDOMAIN, authority=(Zone().soa,))
    p = Prepared(b"\x03web\x07default\x03svc\x07cluster\x05local\x00", ans)
    for spelling in ("web.default.svc.cluster.local.", "wEb.DEFAULT.svc.Cluster.local."):
        data = dns.message.make_query(spelling, "A").to_wire()
        q = parse_query(data)
        msg = dns.message.from_wire(respond(data, q.qend, p, None, False, False))
        assert msg.rcode() == dns.rcode.NXDOMAIN
        assert msg.authority[0].rdtype == SOA


def test_truncation_over_512_without_edns_and_over_the_edns_size() -> None:
    data = dns.message.make_query(NAME, "SRV").to_wire()
    q = parse_query(data)
    p = Prepared(q.qname_wire, srv_answer(15))
    udp = dns.message.from_wire(respond(data, q.qend, p, None, False, False))
    assert udp.flags & dns.flags.TC and not udp.answer
    tcp = respond(data, q.qend, p, None, False, True)
    assert len(tcp) > 512 and len(lines(tcp)) == 15
    big = dns.message.make_query(NAME, "SRV", use_edns=0, payload=MAX_UDP).to_wire()
    q = parse_query(big)
    resp = dns.message.from_wire(respond(big, q.qend, p, q.edns_size, q.do, False))
    assert not resp.flags & dns.flags.TC and len(resp.answer[0]) == 15 and resp.edns == 0
    p = Prepared(q.qname_wire, srv_answer(40))
    resp = dns.message.from_wire(respond(big, q.qend, p, q.edns_size, q.do, False))
    assert resp.flags & dns.flags.TC and resp.edns == 0


def test_error_response_keeps_the_question_and_opt() -> None:
    data = dns.message.make_query("x.", "A", use_edns=0).to_wire()
    msg = dns.message.from_wire(error_response(data, 2, parse_query(data)))
    assert msg.rcode() == dns.rcode.SERVFAIL and msg.question[0].name.to_text() == "x."
    assert msg.edns == 0


def test_parse_upstream_answers() -> None:
    query = dns.message.make_query("my.database.example.com.", "A")
    resp = dns.message.make_response(query)
    resp.answer.append(dns.rrset.from_text("my.database.example.com.", 30, "IN", "CNAME",
                                           "db.example.com."))
    resp.answer.append(dns.rrset.from_text("db.example.com.", 30, "IN", "A", "192.0.2.7"))
    rcode, recs = parse_answers(resp.to_wire())
    assert rcode == 0
    assert [r.to_text() for r in recs] == [
        "my.database.example.com. 30 IN CNAME db.example.com.",
        "db.example.com. 30 IN A 192.0.2.7"]
