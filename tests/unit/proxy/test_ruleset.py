"""The ruleset's shape where packets do not show it: what a sync sends, and how much.
Behaviour is in test_tracer.py (packet walks) and the kernel tests."""

from __future__ import annotations

import random
import time
from collections.abc import Mapping, Sequence
from ipaddress import IPv4Address

import pytest

from podnet.proxy import render, ruleset
from podnet.proxy.ir import Piece, PortKey, Rule, Ruleset, Verdict
from podnet.proxy.ruleset import NodeInfo
from podnet.proxy.tables import Tables, statement_count, text
from podnet.proxy.views import Endpoint, ServicePort

NODE = NodeInfo(node_ip="10.250.0.2", node_name="node-0")


def cluster(
    services: int, endpoints: int = 3, affinity: bool = False
) -> tuple[list[ServicePort], dict[PortKey, list[Endpoint]]]:
    ports, eps = [], {}
    svc0, pod0 = int(IPv4Address("10.96.1.0")), int(IPv4Address("10.244.0.2"))
    for i in range(services):
        p = ServicePort("default", f"s{i}", "http", "TCP", str(IPv4Address(svc0 + i)), 80,
                        node_port=30000 + i if i < 2768 else None,
                        session_affinity_timeout=60 if affinity else None)
        ports.append(p)
        eps[p.key] = [Endpoint(str(IPv4Address(pod0 + (i * endpoints + j) % 60000)), 8080,
                               node_name="node-0") for j in range(endpoints)]
    return ports, eps


def pieces(ports: Sequence[ServicePort],
           eps: Mapping[PortKey, Sequence[Endpoint]]) -> dict[PortKey, Piece | None]:
    return {p.key: ruleset.piece(p, eps.get(p.key, ()), NODE) for p in ports}


def loaded(ports: Sequence[ServicePort], eps: Mapping[PortKey, Sequence[Endpoint]]) -> Tables:
    t = Tables(NODE)
    t.reset()
    t.update(pieces(ports, eps))
    return t


def build(ports: Sequence[ServicePort], eps: Mapping[PortKey, Sequence[Endpoint]]) -> Ruleset:
    return ruleset.build(ports, eps, NODE)


def test_reset_replaces_the_table_with_the_static_one() -> None:
    script = Tables(NODE).reset()
    lines = [c.text for c in script]
    assert lines[:3] == ["add table ip podnet-proxy", "delete table ip podnet-proxy",
                         "add table ip podnet-proxy"]
    hooks = sorted(line.split("{")[1] for line in lines if " hook " in line)
    assert hooks == [
        " type filter hook output priority -90 ; policy accept ; }",
        " type filter hook prerouting priority -90 ; policy accept ; }",
        " type nat hook output priority -100 ; policy accept ; }",
        " type nat hook postrouting priority 100 ; policy accept ; }",
        " type nat hook prerouting priority -100 ; policy accept ; }",
    ]


def test_a_plain_service_is_map_elements_and_a_shared_chain() -> None:
    ports, eps = cluster(1)
    script = Tables(NODE).update(pieces(ports, eps))
    assert [c.text for c in script] == [
        "add chain ip podnet-proxy cluster-3",
        "add chain ip podnet-proxy external-3",
        "add rule ip podnet-proxy cluster-3 ip saddr != 10.244.0.0/16 jump mark-for-masquerade",
        "add rule ip podnet-proxy cluster-3 ct mark set numgen random mod 3 dnat ip to "
        "ip daddr . meta l4proto . th dport . ct mark map @service-endpoints",
        "add rule ip podnet-proxy external-3 jump mark-for-masquerade",
        "add rule ip podnet-proxy external-3 goto cluster-3",
        "add element ip podnet-proxy service-endpoints { "
        "10.96.1.0 . tcp . 80 . 0 : 10.244.0.2 . 8080, "
        "10.96.1.0 . tcp . 80 . 1 : 10.244.0.3 . 8080, "
        "10.96.1.0 . tcp . 80 . 2 : 10.244.0.4 . 8080, "
        "10.250.0.2 . tcp . 30000 . 0 : 10.244.0.2 . 8080, "
        "10.250.0.2 . tcp . 30000 . 1 : 10.244.0.3 . 8080, "
        "10.250.0.2 . tcp . 30000 . 2 : 10.244.0.4 . 8080 }",
        "add element ip podnet-proxy service-ips { 10.96.1.0 . tcp . 80 : goto cluster-3 }",
        "add element ip podnet-proxy service-nodeports { tcp . 30000 : goto external-3 }",
    ]


def test_no_change_no_commands() -> None:
    ports, eps = cluster(50)
    t = loaded(ports, eps)
    assert t.update(pieces(ports, eps)) == []


@pytest.mark.parametrize(("services", "affinity"), [(1000, False), (10_000, False),
                                                    (2000, True)])
def test_one_endpoint_change_is_a_handful_of_statements(services: int, affinity: bool) -> None:
    ports, eps = cluster(services, affinity=affinity)
    key = ports[567].key
    for new in ([*eps[key][:2], Endpoint("10.244.250.1", 8080, node_name="node-0")],
                [*eps[key], Endpoint("10.244.250.1", 8080, node_name="node-0")],
                eps[key][1:]):
        t = loaded(ports, eps)
        port = ports[567]
        script = t.update({key: ruleset.piece(port, new, NODE)})
        # Bounded by that service's endpoints (its elements, a shared chain for a new
        # endpoint count), never by the cluster's size.
        assert statement_count(script) <= 24, text(script)


def test_last_endpoint_gone_moves_the_service_to_reject_and_back() -> None:
    ports, eps = cluster(100)
    port = ports[7]
    t = loaded(ports, eps)
    script = t.update({port.key: ruleset.piece(port, [], NODE)})
    out = text(script)
    assert "add element ip podnet-proxy no-endpoint-services { 10.96.1.7 . tcp . 80 : goto " \
           "reject-service }" in out
    assert "no-endpoint-nodeports" in out
    assert statement_count(script) <= 20
    back = t.update({port.key: ruleset.piece(port, eps[port.key], NODE)})
    assert statement_count(back) <= 20
    assert t.ruleset() == build(ports, eps)


def test_shared_chains_follow_their_users() -> None:
    ports, eps = cluster(3)
    t = loaded(ports, eps)
    one = ports[0]
    grown = t.update({one.key: ruleset.piece(one, [*eps[one.key],
                                                   Endpoint("10.244.9.9", 80)], NODE)})
    assert "add chain ip podnet-proxy cluster-4" in text(grown)
    shrunk = t.update({one.key: ruleset.piece(one, eps[one.key], NODE)})
    assert "delete chain ip podnet-proxy cluster-4" in text(shrunk)
    gone = t.update({p.key: None for p in ports})
    assert "delete chain ip podnet-proxy cluster-3" in text(gone)
    assert t.ruleset() == build([], {})


def test_references_come_before_what_they_refer_to() -> None:
    ports, eps = cluster(10, affinity=True)
    t = loaded(ports, eps)
    lines = [c.text for c in t.update({ports[0].key: None})]
    verbs = [" ".join(line.split()[:2]) for line in lines]
    first_chain_delete = verbs.index("delete chain")
    assert verbs.index("delete element") < first_chain_delete
    assert verbs.index("flush chain") < first_chain_delete
    assert verbs.index("delete set") > first_chain_delete


def test_incremental_updates_end_where_a_full_build_does() -> None:
    ports, eps = cluster(60)
    rng = random.Random(4)
    t = loaded(ports, eps)
    state = dict(eps)
    live = {p.key: p for p in ports}
    for _ in range(200):
        p = rng.choice(ports)
        roll = rng.random()
        if roll < 0.1:
            live.pop(p.key, None)
            t.update({p.key: None})
            continue
        live[p.key] = p
        base = list(state[p.key])
        if roll < 0.5 and base:
            base.pop(rng.randrange(len(base)))
        else:
            base.append(Endpoint(f"10.244.{rng.randrange(3)}.{rng.randrange(250)}", 8080,
                                 node_name=rng.choice(["node-0", "node-1"])))
        state[p.key] = sorted(set(base), key=lambda e: (IPv4Address(e.ip), e.port))
        t.update({p.key: ruleset.piece(p, state[p.key], NODE)})
    assert t.ruleset() == build(list(live.values()), state)


def test_cold_sync_comes_in_bounded_transactions() -> None:
    ports, eps = cluster(2500, endpoints=10)
    t = Tables(NODE)
    scripts = list(t.load(ruleset.piece(p, eps[p.key], NODE) for p in ports))
    assert len(scripts) == 1 + 3  # the static table, then 1,000 ports at a time
    assert max(statement_count(s) for s in scripts) < 40_000
    assert t.ruleset() == build(ports, eps)


def test_names_are_stable_and_independent_of_order() -> None:
    ports, eps = cluster(20)
    a, b = build(ports, eps), build(list(reversed(ports)), eps)
    assert a == b


@pytest.mark.parametrize("bad", ["not-an-ip", "10.0.0.1 } ; flush ruleset", "300.1.1.1"])
def test_bad_addresses_never_reach_nft(bad: str) -> None:
    p = ServicePort("default", "x", "", "TCP", "10.96.0.5", 80)
    with pytest.raises(ValueError):
        Tables(NODE).update({p.key: ruleset.piece(p, [Endpoint(bad, 80)], NODE)})


def test_comments_cannot_end_the_string() -> None:
    rule = Rule((Verdict("accept"),), 'a"b\\c\nd')
    assert render.rule("x", rule) == 'add rule ip podnet-proxy x accept comment "abcd"'


def test_cold_sync_python_timing(capsys: pytest.CaptureFixture[str]) -> None:
    """Pure Python only; the kernel side is measured by bench/proxy."""
    ports, eps = cluster(10_000, endpoints=10)
    t0 = time.perf_counter()
    made = [ruleset.piece(p, eps[p.key], NODE) for p in ports]
    built = time.perf_counter() - t0
    t0 = time.perf_counter()
    scripts = [text(s) for s in Tables(NODE).load(made)]
    rendered = time.perf_counter() - t0
    with capsys.disabled():
        print(f"\n  10,000 services x 10 endpoints: pieces {built:.2f} s, scripts "
              f"{rendered:.2f} s ({len(scripts)} transactions, "
              f"{sum(map(len, scripts)) / 1e6:.1f} MB of nft text)")
    assert built + rendered < 30  # a guard against accidental quadratic work
