"""Node and pod networks in the real kernel, checked with real packets.

Every test builds its own node (a cluster name unique to the run, a node network that
does not overlap a live podnet's 10.250.0.1/24) and proves that the host's namespaces,
links and routes are exactly as before once it is torn down. Packets go only to our own
namespaces; the one "outside" address is tried from a pod after proving that the node
namespace has no route to it, so the SYN dies in our node namespace.
"""

from __future__ import annotations

import asyncio
import errno
import os
import secrets
import select
import socket
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from ipaddress import IPv4Address
from pathlib import Path

import pytest

from podnet.agent import network
from podnet.agent.ipam import Ipam
from podnet.agent.network import NodeNetwork, PodNetwork
from podnet.kernel import netns
from tests.conftest import assert_not_via_default_route
from tests.kernel.hoststate import sh, snapshot

HOST_FORWARDING = Path("/proc/sys/net/ipv4/ip_forward")
OUTSIDE = "192.0.2.1"  # TEST-NET-1; on this machine also the host's gateway
UIDS = ("aaaaaaaa-0000-4000-8000-000000000001", "bbbbbbbb-0000-4000-8000-000000000002")

ECHO_SERVER = r"""
import socket, sys, threading
name, port = sys.argv[1], int(sys.argv[2])
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("0.0.0.0", port))
srv.listen(64)
print("ready", flush=True)
def serve(c):
    with c:
        c.sendall(name.encode() + b" " + c.recv(1024))
while True:
    c, _ = srv.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
"""





def new_node() -> NodeNetwork:
    return NodeNetwork(
        f"kt{secrets.token_hex(3)}",
        "node-0",
        100 + secrets.randbelow(20),
        node_network="10.250.0.128/25",
    )


@pytest.fixture
async def node(cluster_route_guards: list[str]) -> AsyncIterator[NodeNetwork]:
    """A node network for one test; afterwards the host must be exactly as before."""
    before = snapshot()
    net = new_node()
    try:
        await network.ensure_node(net)
        yield net
    finally:
        await network.teardown_node(net)
        assert snapshot() == before


@contextmanager
def echo_server(pod: PodNetwork, port: int) -> Iterator[subprocess.Popen[str]]:
    """A TCP server in the pod's namespace answering `<netns> <what you sent>`; tracked
    by its PID and stopped by it."""
    proc = subprocess.Popen(
        ["ip", "netns", "exec", pod.netns, sys.executable, "-c", ECHO_SERVER, pod.netns, str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], 10)
        assert ready and proc.stdout.readline().strip() == "ready", proc.stderr
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def ask(sock: socket.socket, what: bytes) -> bytes:
    with sock:
        sock.sendall(what)
        return sock.recv(1024)


async def make_pods(net: NodeNetwork, count: int = 2) -> list[PodNetwork]:
    ipam = Ipam(net.pod_cidr, None)
    return [await network.create_pod_network(net, u, ipam.allocate(u)) for u in UIDS[:count]]


async def test_host_reaches_every_pod_and_pods_reach_each_other(node: NodeNetwork) -> None:
    a, b = await make_pods(node)
    with echo_server(a, 8080), echo_server(b, 8080):
        for pod in (a, b):
            assert_not_via_default_route(str(pod.ip))
            with socket.create_connection((str(pod.ip), 8080), timeout=3) as s:
                assert ask(s, b"from-host") == f"{pod.netns} from-host".encode()
        s = await netns.aconnect_in_netns(a.netns, str(b.ip), 8080, 3)
        assert ask(s, b"from-a") == f"{b.netns} from-a".encode()
        s = await netns.aconnect_in_netns(b.netns, str(a.ip), 8080, 3)
        assert ask(s, b"from-b") == f"{a.netns} from-b".encode()


async def test_pod_veths_have_one_queue_each_way(node: NodeNetwork) -> None:
    # Asked for at creation: the kernel's default (one per CPU, cut to one) holds the
    # rtnl lock through an RCU grace period per sandbox.
    (pod,) = await make_pods(node, 1)
    for ns, dev in ((pod.netns, "eth0"), (node.netns, pod.host_veth)):
        out = subprocess.run(["ip", "-n", ns, "-d", "link", "show", "dev", dev],
                             capture_output=True, text=True, check=True).stdout
        assert "numtxqueues 1 numrxqueues 1" in out, out


async def test_pod_reaches_the_host_end_of_the_node_link(node: NodeNetwork) -> None:
    # Where the API server listens for pods.
    (a,) = await make_pods(node, 1)
    with socket.create_server((str(node.host_ip), 0)) as srv:
        port = srv.getsockname()[1]
        s = await netns.aconnect_in_netns(a.netns, str(node.host_ip), port, 3)
        conn, peer = srv.accept()
        with s, conn:
            assert peer[0] == str(a.ip)  # routed, not masqueraded


async def test_pod_cannot_reach_outside_the_cluster_and_fails_fast(node: NodeNetwork) -> None:
    (a,) = await make_pods(node, 1)
    # The node namespace has no route out, so the SYN cannot get past it.
    assert "Network is unreachable" in sh("ip", "-n", node.netns, "route", "get", OUTSIDE)
    assert sh("ip", "-n", node.netns, "route", "show", "default") == ""
    assert sh("ip", "-n", a.netns, "route", "show").strip() == (
        "default via 169.254.1.1 dev eth0 onlink"
    )
    started = time.monotonic()
    with pytest.raises(OSError) as err:
        await netns.aconnect_in_netns(a.netns, OUTSIDE, 80, 5)
    assert err.value.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH), err.value
    assert time.monotonic() - started < 1.0  # an ICMP answer, not a timeout


async def test_host_routes_the_pod_cidr_via_the_node_link_only(node: NodeNetwork) -> None:
    (a,) = await make_pods(node, 1)
    route = sh("ip", "route", "get", str(a.ip))
    assert f"via {node.node_ip} dev {node.host_link}" in route, route
    covering = [
        line.strip()
        for line in sh("ip", "route", "show", "match", str(a.ip)).splitlines()
        if not line.startswith("default") and "metric 4242" not in line
        and not line.startswith("unreachable")
    ]
    assert covering == [f"{node.pod_cidr} via {node.node_ip} dev {node.host_link}"], covering


async def test_node_forwards_and_has_the_gateway_address(node: NodeNetwork) -> None:
    assert (
        sh("ip", "netns", "exec", node.netns, "sysctl", "-n", "net.ipv4.ip_forward").strip() == "1"
    )
    assert "inet 169.254.1.1/32" in sh("ip", "-n", node.netns, "addr", "show", "dev", "lo")


async def test_netns_threads_return_home(node: NodeNetwork) -> None:
    (a,) = await make_pods(node, 1)
    for _ in range(20):
        with pytest.raises(ConnectionRefusedError):
            await netns.aconnect_in_netns(a.netns, str(a.ip), 9, 3)
    home = os.readlink("/proc/self/ns/net")
    loop = asyncio.get_running_loop()

    def where() -> str:
        time.sleep(0.05)  # hold the worker so every pool thread answers once
        return os.readlink(f"/proc/self/task/{threading.get_native_id()}/ns/net")

    for kind in (netns.WORK, netns.WAIT):  # connects run on WAIT, sandboxes on WORK
        pool = netns._pool(kind)
        assert set(await asyncio.gather(*(loop.run_in_executor(pool, where)
                                          for _ in range(16)))) == {home}


async def test_create_and_delete_are_idempotent(node: NodeNetwork) -> None:
    (a,) = await make_pods(node, 1)
    again = await network.create_pod_network(node, UIDS[0], a.ip)
    assert again == a
    assert await network.list_pod_networks(node) == {a.netns: UIDS[0][:12]}
    with echo_server(again, 8081):
        s = socket.create_connection((str(a.ip), 8081), timeout=3)
        assert ask(s, b"x") == f"{a.netns} x".encode()
    await network.delete_pod_network(node, UIDS[0])
    await network.delete_pod_network(node, UIDS[0])
    assert await network.list_pod_networks(node) == {}
    assert str(a.ip) not in sh("ip", "-n", node.netns, "route", "show")


async def test_a_pod_with_the_wrong_address_is_rebuilt(node: NodeNetwork) -> None:
    (a,) = await make_pods(node, 1)
    other = IPv4Address(int(a.ip) + 10)
    b = await network.create_pod_network(node, UIDS[0], other)
    assert b.ip == other
    addrs = sh("ip", "-n", b.netns, "-4", "-o", "addr", "show", "dev", "eth0")
    assert f"{other}/32" in addrs and f"{a.ip}/32" not in addrs
    node_routes = sh("ip", "-n", node.netns, "route", "show")
    assert f"{other} dev {b.host_veth}" in node_routes and f"{a.ip} " not in node_routes


async def test_ensure_node_again_changes_nothing(node: NodeNetwork) -> None:
    (a,) = await make_pods(node, 1)
    before = snapshot()
    started = time.monotonic()
    await network.ensure_node(node)
    assert time.monotonic() - started < 1.0
    assert snapshot() == before
    assert str(a.ip) in sh("ip", "-n", node.netns, "route", "show")


async def test_a_stale_half_made_sandbox_is_rebuilt(node: NodeNetwork) -> None:
    (a,) = await make_pods(node, 1)
    before = set(netns.list_netns())
    plan = network.plan_pod(node, UIDS[1], a.ip)
    await network.apply(plan[:2])  # a stale half-made sandbox: netns and veth only
    b = await network.create_pod_network(node, UIDS[1], IPv4Address(int(a.ip) + 1))
    with echo_server(b, 8083):
        s = socket.create_connection((str(b.ip), 8083), timeout=3)
        assert ask(s, b"ok") == f"{b.netns} ok".encode()
    await network.delete_pod_network(node, UIDS[1])
    assert set(netns.list_netns()) == before


@pytest.mark.parametrize("made", [1, 2, 5, 9])
async def test_teardown_removes_half_made_nodes(cluster_route_guards: list[str], made: int) -> None:
    before = snapshot()
    net = new_node()
    try:
        await network.apply(network.plan_node(net)[:made])
    finally:
        await network.teardown_node(net)
        await network.teardown_node(net)
    assert snapshot() == before


async def test_host_link_without_node_namespace_is_repaired(node: NodeNetwork) -> None:
    # Simulate the node namespace vanishing under a running host link.
    subprocess.run(["ip", "netns", "del", node.netns], check=True)
    await network.ensure_node(node)
    (a,) = await make_pods(node, 1)
    with echo_server(a, 8082):
        s = socket.create_connection((str(a.ip), 8082), timeout=3)
        assert ask(s, b"ok") == f"{a.netns} ok".encode()


async def test_node_namespace_made_again_under_its_name_is_relinked(node: NodeNetwork) -> None:
    # An old process keeps the first node namespace (and so the host link) alive while a
    # fresh, empty namespace takes its name.
    holder = subprocess.Popen(["ip", "netns", "exec", node.netns, "sleep", "60"])
    try:
        time.sleep(0.1)
        subprocess.run(["ip", "netns", "del", node.netns], check=True)
        subprocess.run(["ip", "netns", "add", node.netns], check=True)
        assert node.host_link in sh("ip", "-o", "link", "show")
        await network.ensure_node(node)
        (a,) = await make_pods(node, 1)
        with echo_server(a, 8084):
            s = socket.create_connection((str(a.ip), 8084), timeout=3)
            assert ask(s, b"ok") == f"{a.netns} ok".encode()
    finally:
        holder.kill()
        holder.wait(5)


async def test_whole_lifecycle_leaves_the_host_exactly_as_before(
    cluster_route_guards: list[str],
) -> None:
    before = snapshot()
    forwarding = HOST_FORWARDING.read_text()
    net = new_node()
    await network.ensure_node(net)
    pods = await make_pods(net)
    assert all(p.netns in netns.list_netns() for p in pods)
    assert HOST_FORWARDING.read_text() == forwarding  # host's is not ours
    for u in UIDS:
        await network.delete_pod_network(net, u)
    await network.teardown_node(net)
    assert snapshot() == before


async def test_hundred_pods_in_parallel(
    node: NodeNetwork, capsys: pytest.CaptureFixture[str]
) -> None:
    ipam = Ipam(node.pod_cidr, None)
    uids = [f"{i:08x}-1111-4000-8000-{i:012x}" for i in range(100)]
    t0 = time.monotonic()
    one = await network.create_pod_network(node, uids[0], ipam.allocate(uids[0]))
    single = time.monotonic() - t0
    t0 = time.monotonic()
    pods = await asyncio.gather(
        *(network.create_pod_network(node, u, ipam.allocate(u)) for u in uids[1:])
    )
    burst = time.monotonic() - t0
    assert len({p.netns for p in [one, *pods]}) == 100
    # the last one works end to end
    with pytest.raises(ConnectionRefusedError):
        await netns.aconnect_in_netns(pods[-1].netns, str(one.ip), 9, 3)
    t0 = time.monotonic()
    await asyncio.gather(*(network.delete_pod_network(node, u) for u in uids))
    removal = time.monotonic() - t0
    with capsys.disabled():
        print(
            f"\n  one pod network {single * 1000:.1f} ms; 99 in parallel {burst:.2f} s; "
            f"100 deleted in {removal:.2f} s"
        )
    assert burst < 5.0
    assert await network.list_pod_networks(node) == {}


async def test_cluster_ranges_are_guarded_while_the_node_is_up(node: NodeNetwork) -> None:
    """Without the test suite's own guards, a cluster address no pod has would go out by
    the default route; the node's guards answer it instead, and leave with the node."""
    guards = sh("ip", "route", "show", "type", "unreachable")
    for cidr in node.guard_ranges:
        assert f"unreachable {cidr} metric {node.guard_metric}" in guards, guards
    assert sh("ip", "route", "get", "10.244.201.5").count("No route") == 1
    await network.teardown_node(node)
    after = sh("ip", "route", "show", "type", "unreachable")
    assert f"metric {node.guard_metric}" not in after
