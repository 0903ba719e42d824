"""The ruleset's shape where packets do not show it: what `full` and `diff` send, and how
much. Behaviour is in test_tracer.py (packet walks) and the kernel tests."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from ipaddress import IPv4Address

import pytest

from podnet.proxy import ruleset
from podnet.proxy.ruleset import NodeInfo, Ruleset, statement_count
from podnet.proxy.views import Endpoint, ServicePort

NODE = NodeInfo(node_ip="10.250.0.2", node_name="node-0")
Key = tuple[str, str, str, str]


def cluster(
    services: int, endpoints: int = 3, affinity: bool = False
) -> tuple[list[ServicePort], dict[Key, list[Endpoint]]]:
    ports, eps = [], {}
    svc0, pod0 = int(IPv4Address("10.96.1.0")), int(IPv4Address("10.244.0.2"))
    for i in range(services):
        p = ServicePort("default", f"s{i}", "http", "TCP", str(IPv4Address(svc0 + i)), 80,
                        node_port=30000 + i % 2768 if i < 2768 else None,
                        session_affinity_timeout=60 if affinity else None)
        ports.append(p)
        eps[p.key] = [Endpoint(str(IPv4Address(pod0 + (i * endpoints + j) % 60000)), 8080,
                               node_name="node-0") for j in range(endpoints)]
    return ports, eps


def build(ports: Sequence[ServicePort], eps: Mapping[Key, Sequence[Endpoint]]) -> Ruleset:
    return ruleset.build(ports, eps, NODE)


def test_full_replaces_the_table_in_one_document() -> None:
    cmds = ruleset.full(build(*cluster(2)))
    table = {"table": {"family": "ip", "name": "podnet-proxy"}}
    assert cmds[:3] == [{"add": table}, {"delete": table}, {"add": table}]
    json.dumps(cmds)  # plain JSON all the way down
    hooks = sorted(
        (c["add"]["chain"]["hook"], c["add"]["chain"]["type"], c["add"]["chain"]["prio"])
        for c in cmds if "chain" in c.get("add", {}) and "hook" in c["add"]["chain"]
    )
    assert hooks == [("output", "filter", -90), ("output", "nat", -100),
                     ("postrouting", "nat", 100), ("prerouting", "filter", -90),
                     ("prerouting", "nat", -100)]


def test_no_change_no_commands() -> None:
    ports, eps = cluster(50)
    assert ruleset.diff(build(ports, eps), build(ports, eps)) == []


@pytest.mark.parametrize("affinity", [False, True])
def test_one_endpoint_change_is_a_handful_of_statements(affinity: bool) -> None:
    ports, eps = cluster(2000, affinity=affinity)
    before = build(ports, eps)
    key = ports[1234].key
    swapped = {**eps, key: [*eps[key][:2], Endpoint("10.244.250.1", 8080)]}
    cmds = ruleset.diff(before, build(ports, swapped))
    # new endpoint chain (+ its rules), service chain rewritten, old chain flushed and
    # deleted. With affinity the service chain has one lookup rule per endpoint and there
    # is one set more and one less: bounded by that service's endpoints, not the cluster.
    bound = 16 if affinity else 9
    assert statement_count(cmds) <= bound, cmds
    grown = {**eps, key: [*eps[key], Endpoint("10.244.250.1", 8080)]}
    assert statement_count(ruleset.diff(before, build(ports, grown))) <= bound


def test_last_endpoint_gone_moves_the_service_to_reject_and_back() -> None:
    ports, eps = cluster(100)
    key = ports[7].key
    before = build(ports, eps)
    after = build(ports, {**eps, key: []})
    cmds = ruleset.diff(before, after)
    text = json.dumps(cmds)
    assert '"no-endpoint-services"' in text and '"no-endpoint-nodeports"' in text
    assert statement_count(cmds) <= 20
    deleted = [c["delete"]["chain"]["name"] for c in cmds if "chain" in c.get("delete", {})]
    assert len(deleted) == 1 + 1 + 3  # svc-, ext-, three ep- chains
    back = ruleset.diff(after, before)
    assert statement_count(back) <= 25


def test_references_come_before_what_they_refer_to() -> None:
    ports, eps = cluster(10)
    before = build(ports, eps)
    after = build(ports[1:], eps)
    cmds = ruleset.diff(before, after)
    kinds = [(verb, next(iter(body))) for c in cmds for verb, body in c.items()]
    first_chain_delete = kinds.index(("delete", "chain"))
    assert kinds.index(("delete", "element")) < first_chain_delete
    assert kinds.index(("flush", "chain")) < first_chain_delete
    # removing a service does not touch the others
    assert statement_count(cmds) <= 12


def test_names_are_stable_and_independent_of_order() -> None:
    ports, eps = cluster(20)
    a, b = build(ports, eps), build(list(reversed(ports)), eps)
    assert a == b


def test_bad_addresses_never_reach_nft() -> None:
    p = ServicePort("default", "x", "", "TCP", "10.96.0.5", 80)
    rs = build([p], {p.key: [Endpoint("not-an-ip", 80)]})
    with pytest.raises(ValueError):
        ruleset.full(rs)


def test_build_and_diff_timing(capsys: pytest.CaptureFixture[str]) -> None:
    """Pure Python only; the kernel side is measured by bench/proxy."""
    ports, eps = cluster(10_000, endpoints=10)
    t0 = time.perf_counter()
    before = build(ports, eps)
    built = time.perf_counter() - t0
    t0 = time.perf_counter()
    cmds = ruleset.full(before)
    rendered = time.perf_counter() - t0
    key = ports[5000].key
    after = build(ports, {**eps, key: eps[key][1:]})
    t0 = time.perf_counter()
    d = ruleset.diff(before, after)
    diffed = time.perf_counter() - t0
    with capsys.disabled():
        print(f"\n  10,000 services x 10 endpoints: build {built:.2f} s, full() {rendered:.2f} s "
              f"({len(cmds)} commands), one-endpoint diff {diffed * 1000:.0f} ms "
              f"({statement_count(d)} statements)")
    assert statement_count(d) <= 9
    assert built < 30  # a guard against accidental quadratic work, not a benchmark
