"""Services in the real kernel: `ruleset.build` → `nft.apply` in a throwaway node
namespace, checked with real packets from real pod namespaces (STYLE.md §4: the same
intent as tests/unit/proxy/test_tracer.py's FLOWS, with sockets).

Each test builds its own node (cluster name unique to the run, node network
10.250.0.128/25, node index 100+) and proves afterwards that the host's namespaces,
links, routes and nftables tables are exactly as before. Traffic goes only to our own
namespaces: pods to service addresses (answered or rejected in the node namespace, which
has no route out) and the host to the node's own IP.
"""

from __future__ import annotations

import secrets
import select
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Any

import pytest

from podnet.agent import network
from podnet.agent.ipam import Ipam
from podnet.agent.network import NodeNetwork, PodNetwork
from podnet.kernel import netns
from podnet.proxy import ir, nft, ruleset, tables
from podnet.proxy.ruleset import NodeInfo
from podnet.proxy.tables import Tables
from podnet.proxy.views import Endpoint, ServicePort
from tests.conftest import assert_not_via_default_route
from tests.kernel.hoststate import snapshot

# Answers TCP and UDP on one port with "<netns> <peer address>".
SERVER = r"""
import socket, sys, threading
name, port = sys.argv[1], int(sys.argv[2])
tcp = socket.socket()
tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
tcp.bind(("0.0.0.0", port))
tcp.listen(64)
udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
udp.bind(("0.0.0.0", port))
def serve_udp():
    while True:
        data, peer = udp.recvfrom(1024)
        udp.sendto(f"{name} {peer[0]}".encode(), peer)
threading.Thread(target=serve_udp, daemon=True).start()
print("ready", flush=True)
while True:
    c, peer = tcp.accept()
    with c:
        c.sendall(f"{name} {peer[0]}".encode())
"""

UIDS = [f"{i:08x}-cccc-4000-8000-{i:012x}" for i in range(1, 5)]





@dataclass
class Node:
    net: NodeNetwork
    client: PodNetwork  # a pod that is no endpoint
    pods: list[PodNetwork]  # endpoints, each running SERVER on 9376
    info: NodeInfo
    last_statements: int = 0

    def name_of(self, answer: str) -> PodNetwork:
        (pod,) = [p for p in (self.client, *self.pods) if p.netns == answer.split()[0]]
        return pod

    async def program(
        self, ports: Sequence[ServicePort], eps: Mapping[Any, Sequence[Endpoint]],
        before: Tables | None = None, backend: nft.Backend = "lib",
    ) -> Tables:
        """Load these ports from scratch, or (`before`) as the proxier does: only the
        ports whose piece changed, in one transaction."""
        pieces = {p.key: ruleset.piece(p, eps.get(p.key, ()), self.info) for p in ports}
        if before is None:
            t = Tables(self.info)
            for script in t.load(pieces.values()):
                await nft.apply(self.net.netns, tables.text(script), backend)
            return t
        gone: dict[Any, ir.Piece | None] = {k: None for k in before.pieces
                                                  if k not in pieces}
        script = before.update({**pieces, **gone})
        self.last_statements = tables.statement_count(script)
        await nft.apply(self.net.netns, tables.text(script), backend)
        return before


@contextmanager
def server(pod: PodNetwork, port: int) -> Iterator[None]:
    """SERVER in the pod's namespace, tracked by its PID and stopped by it."""
    proc = subprocess.Popen(
        ["ip", "netns", "exec", pod.netns, sys.executable, "-c", SERVER, pod.netns, str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], 10)
        assert ready and proc.stdout.readline().strip() == "ready", proc.stderr
        yield
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


@pytest.fixture
async def node(cluster_route_guards: list[str]) -> AsyncIterator[Node]:
    """A node with a client pod and three endpoint pods serving on 9376; afterwards the
    host must be exactly as before, nftables included."""
    before = snapshot()
    net = NodeNetwork(f"kp{secrets.token_hex(3)}", "node-0", 100 + secrets.randbelow(20),
                      node_network="10.250.0.128/25")
    try:
        await network.ensure_node(net)
        ipam = Ipam(net.pod_cidr, None)
        client, *pods = [
            await network.create_pod_network(net, u, ipam.allocate(u)) for u in UIDS
        ]
        info = NodeInfo(node_ip=str(net.node_ip), node_name="node-0",
                        pod_cidr=net.pod_network)
        with ExitStack() as stack:
            for p in pods:
                stack.enter_context(server(p, 9376))
            yield Node(net, client, pods, info)
            assert await nft.delete_table(net.netns)
            assert await nft.list_table(net.netns) == {}
    finally:
        await network.teardown_node(net)
        assert snapshot() == before


def svc(name: str, ip: str, port: int = 80, proto: str = "TCP", **kw: Any) -> ServicePort:
    return ServicePort("default", name, "", proto, ip, port, **kw)  # type: ignore[arg-type]


def eps(*pods: PodNetwork, port: int = 9376) -> list[Endpoint]:
    return [Endpoint(str(p.ip), port, node_name="node-0") for p in pods]


async def tcp_ask(ns: str, ip: str, port: int) -> str:
    s = await netns.aconnect_in_netns(ns, ip, port, 3)
    with s:
        s.settimeout(3)
        return s.recv(1024).decode()


def udp_ask(ns: str, ip: str, port: int) -> str:
    def ask() -> str:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(3)
            s.connect((ip, port))
            s.send(b"?")
            return s.recv(1024).decode()

    return netns.in_netns(ns, ask)


def host_ask(ip: str, port: int) -> str:
    assert_not_via_default_route(ip)
    with socket.create_connection((ip, port), timeout=3) as s:
        s.settimeout(3)
        return s.recv(1024).decode()


async def test_cluster_ip_spreads_and_follows_endpoint_changes(node: Node) -> None:
    web = svc("web", "10.96.0.20")
    b, c, d = node.pods
    rs = await node.program([web], {web.key: eps(b, c, d)})
    # Random choice: ask until every endpoint has answered (20 asks miss one endpoint
    # about once in a thousand runs; 100 practically never).
    seen: list[str] = []
    while len(seen) < 100 and len({s.split()[0] for s in seen}) < 3:
        seen.append(await tcp_ask(node.client.netns, "10.96.0.20", 80))
    assert {s.split()[0] for s in seen} == {b.netns, c.netns, d.netns}, seen
    # from a pod, the source is kept (no masquerade inside the pod range)
    assert {s.split()[1] for s in seen} == {str(node.client.ip)}

    # one endpoint gone: a diff, sent through `ip netns exec … nft -j -f -`
    await node.program([web], {web.key: eps(b)}, before=rs, backend="exec")
    assert node.last_statements <= 16
    for _ in range(5):
        assert node.name_of(await tcp_ask(node.client.netns, "10.96.0.20", 80)) == b

    # the kernel now holds what a full sync of the same state would give
    after_diff = normalise(await nft.list_table(node.net.netns))
    await node.program([web], {web.key: eps(b)})
    assert normalise(await nft.list_table(node.net.netns)) == after_diff


def normalise(listing: dict[str, Any]) -> list[str]:
    out = []
    for item in listing.get("nftables", []):
        for body in item.values():
            if isinstance(body, dict):
                body = {k: v for k, v in body.items() if k != "handle"}
                if "elem" in body:
                    body["elem"] = sorted(map(repr, body["elem"]))
            out.append(repr(body))
    return sorted(out)


async def test_no_endpoints_is_refused_at_once(node: Node) -> None:
    empty = svc("empty", "10.96.0.30", node_port=30008)
    web = svc("web", "10.96.0.20")
    await node.program([empty, web], {web.key: eps(node.pods[0])})
    for ip, port in (("10.96.0.30", 80), ("10.96.0.99", 80), ("10.96.0.20", 81)):
        started = time.monotonic()
        with pytest.raises(ConnectionRefusedError):
            await netns.aconnect_in_netns(node.client.netns, ip, port, 5)
        assert time.monotonic() - started < 1.0, (ip, port)
    # and from the host, on the NodePort
    assert_not_via_default_route(str(node.net.node_ip))
    started = time.monotonic()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((str(node.net.node_ip), 30008), timeout=5)
    assert time.monotonic() - started < 1.0


async def test_endpoints_come_and_go(node: Node) -> None:
    web = svc("web", "10.96.0.20", node_port=30007)
    b = node.pods[0]
    rs = await node.program([web], {web.key: eps(b)})
    assert node.name_of(await tcp_ask(node.client.netns, "10.96.0.20", 80)) == b
    rs = await node.program([web], {web.key: []}, before=rs)
    with pytest.raises(ConnectionRefusedError):
        await netns.aconnect_in_netns(node.client.netns, "10.96.0.20", 80, 5)
    await node.program([web], {web.key: eps(b)}, before=rs)
    assert node.name_of(await tcp_ask(node.client.netns, "10.96.0.20", 80)) == b


async def test_node_port_on_the_node_ip_from_the_host(node: Node) -> None:
    web = svc("web", "10.96.0.20", node_port=30007)
    local = svc("local", "10.96.0.40", node_port=30009, external_local=True)
    b, c, _ = node.pods
    await node.program([web, local], {web.key: eps(b, c), local.key: eps(c)})
    seen = {host_ask(str(node.net.node_ip), 30007) for _ in range(10)}
    # masqueraded: the pod sees the node, not the host
    assert {s.split()[1] for s in seen} != {str(node.net.host_ip)}
    assert {node.name_of(s) for s in seen} <= {b, c}
    # externalTrafficPolicy Local: the client's own address arrives
    answer = host_ask(str(node.net.node_ip), 30009)
    assert answer == f"{c.netns} {node.net.host_ip}"


async def test_hairpin_is_masqueraded(node: Node) -> None:
    b = node.pods[0]
    web = svc("web", "10.96.0.20")
    await node.program([web], {web.key: eps(b)})
    answer = await tcp_ask(b.netns, "10.96.0.20", 80)
    name, peer = answer.split()
    assert name == b.netns and peer != str(b.ip)  # it came back to itself, from the node


async def test_udp_service(node: Node) -> None:
    b, c, _ = node.pods
    dns = svc("dns", "10.96.0.10", 53, "UDP")
    rs = await node.program([dns], {dns.key: eps(b)})
    assert udp_ask(node.client.netns, "10.96.0.10", 53) == f"{b.netns} {node.client.ip}"
    await node.program([dns], {dns.key: eps(c)}, before=rs)
    # a new socket (new source port): a new conntrack entry, the new endpoint
    assert udp_ask(node.client.netns, "10.96.0.10", 53) == f"{c.netns} {node.client.ip}"
    # UDP to an unserved service port: ICMP port unreachable, at once
    started = time.monotonic()
    with pytest.raises(ConnectionRefusedError):
        udp_ask(node.client.netns, "10.96.0.10", 54)
    assert time.monotonic() - started < 1.0


async def test_client_ip_affinity_sticks(node: Node) -> None:
    sticky = svc("sticky", "10.96.0.70", session_affinity_timeout=60)
    await node.program([sticky], {sticky.key: eps(*node.pods)})
    seen = {await tcp_ask(node.client.netns, "10.96.0.70", 80) for _ in range(15)}
    assert len(seen) == 1, seen


async def test_many_services_in_one_transaction(node: Node) -> None:
    """200 services (the kernel tier stays small); the last one answers."""
    b = node.pods[0]
    ports = [svc(f"s{i}", f"10.96.1.{i}") for i in range(200)]
    t0 = time.monotonic()
    await node.program(ports, {p.key: eps(b) for p in ports})
    took = time.monotonic() - t0
    assert node.name_of(await tcp_ask(node.client.netns, "10.96.1.199", 80)) == b
    assert took < 5.0
