"""The node's and pods' network plumbing: pure plans of `ip` commands, and their apply.

Layout (DESIGN.md, "Network layout"; routed, never bridged):

    host ── pn-… (10.250.0.1/24) ══ eth0 (10.250.0.(n+2)/24) node netns podnet-<C>-<node>
    node netns: lo has 169.254.1.1/32, ip_forward=1, no default route,
                one `<podIP>/32 dev vp…` route per pod
    pod netns podnet-<C>-<uid[:12]>: eth0 <podIP>/32, default via 169.254.1.1 onlink

Why 169.254.1.1 on the node's `lo`: the pod's only route points at that link-local
gateway, and Linux answers ARP for any address that is local anywhere in the namespace
(arp_ignore=0), so every pod veth answers for it without proxy_arp, which would need a
route to the gateway address (the node deliberately has no default route). Anything not
in the cluster is unroutable in the node namespace, and with forwarding on the node
answers at once with ICMP net-unreachable: a pod's connect to the outside fails fast with
ENETUNREACH, and no packet can leave towards the host's default route.

Pure: `NodeNetwork`, `plan_node`, `plan_pod`, `plan_pod_delete`, `plan_teardown`, `render`.
Apply (the only part touching the kernel): `apply`, `ensure_node`, `teardown_node`,
`create_pod_network`, `delete_pod_network`, `list_pod_networks`.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import itertools
import re
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from pathlib import Path
from typing import NamedTuple

from podnet.kernel import links, netnsdir, rtnl
from podnet.kernel.netns import WAIT, asysctl_in_netns, in_pool, list_netns, netns_exists
from podnet.kernel.run import KernelError, ip_batch, run

GATEWAY = IPv4Address("169.254.1.1")
POD_IF = "eth0"
NODE_IF = "eth0"
SYSCTL = "sysctl -w "

_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$")
_UID = re.compile(r"^[0-9a-f-]{12,}$")


class Step(NamedTuple):
    """One command: an `ip` batch line (no leading `ip`), or `sysctl -w key=value`, run
    in `netns` (None: the host)."""

    netns: str | None
    command: str


def _short_hash(text: str, n: int) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:n]


@dataclass(frozen=True, slots=True)
class NodeNetwork:
    """Every name and address of one node's network, derived from three facts.

    `node_network` and `pod_network` are the layout defaults; tests move them so they can
    run beside a live cluster. `extra_host_routes` are further prefixes (the service or
    LoadBalancer ranges, say) the host sends to the node."""

    cluster: str
    node_name: str
    node_index: int
    pod_network: str = "10.244.0.0/16"
    node_network: str = "10.250.0.0/24"
    extra_host_routes: tuple[str, ...] = ()
    # Cluster ranges the host answers with `unreachable` while the node is up (DESIGN.md,
    # Safety): nothing addressed to a cluster range may leave by the default route. The
    # routes of this node (its podCIDR, extra_host_routes) are more specific and win.
    guard_ranges: tuple[str, ...] = ("10.244.0.0/16", "10.96.0.0/12", "10.251.0.0/24")

    @property
    def guard_metric(self) -> int:
        """A metric of this cluster's own, so two clusters' guards never remove each other
        and never clash with the test suite's (4242)."""
        digest = hashlib.sha256(self.cluster.encode()).digest()
        return 5000 + int.from_bytes(digest[:2], "big") % 4000

    def __post_init__(self) -> None:
        for what, value in (("cluster", self.cluster), ("node name", self.node_name)):
            if not _NAME.match(value):
                raise ValueError(f"{what} {value!r} must be a DNS label ([a-z0-9-])")
        node_net, pod_net = IPv4Network(self.node_network), IPv4Network(self.pod_network)
        if pod_net.prefixlen > 24:
            raise ValueError(f"pod network {pod_net} is smaller than one /24 per node")
        if not 0 <= self.node_index < 2 ** (24 - pod_net.prefixlen):
            raise ValueError(f"node index {self.node_index} has no /24 in {pod_net}")
        if self.node_index + 2 >= node_net.num_addresses - 1:
            raise ValueError(f"node index {self.node_index} has no address in {node_net}")
        for cidr in self.extra_host_routes:
            IPv4Network(cidr)

    @property
    def netns(self) -> str:
        return f"podnet-{self.cluster}-{self.node_name}"

    @property
    def host_link(self) -> str:
        """The host end of the node link: readable when it fits IFNAMSIZ, else hashed."""
        readable = f"pn-{self.cluster}-{self.node_index}"
        if len(readable) <= links.IFNAMSIZ:
            return readable
        return "pn-" + _short_hash(f"{self.cluster}/{self.node_index}", 10)

    @property
    def host_cidr(self) -> IPv4Interface:
        net = IPv4Network(self.node_network)
        return IPv4Interface(f"{net.network_address + 1}/{net.prefixlen}")

    @property
    def host_ip(self) -> IPv4Address:
        return self.host_cidr.ip

    @property
    def node_cidr(self) -> IPv4Interface:
        return _node_cidr(self.node_network, self.node_index)

    @property
    def node_ip(self) -> IPv4Address:
        return self.node_cidr.ip

    @property
    def pod_cidr(self) -> IPv4Network:
        return _pod_cidr(self.pod_network, self.node_index)

    @property
    def pod_netns_prefix(self) -> str:
        return f"podnet-{self.cluster}-"

    def pod_netns(self, pod_uid: str) -> str:
        return self.pod_netns_prefix + _check_uid(pod_uid)[:12]

    def pod_veth(self, pod_uid: str) -> str:
        """Node-side veth of a pod: hashed, because a UID does not fit IFNAMSIZ."""
        return "vp" + _short_hash(_check_uid(pod_uid), 10)


@dataclass(frozen=True, slots=True)
class PodNetwork:
    """What a pod's sandbox network is, once made."""

    netns: str
    ip: IPv4Address
    host_veth: str


def _check_uid(pod_uid: str) -> str:
    if not _UID.match(pod_uid):
        raise ValueError(f"pod uid {pod_uid!r} is not a Kubernetes UID ([0-9a-f-], 12+ chars)")
    return pod_uid


def sysctl(netns: str, key: str, value: str | int) -> Step:
    return Step(netns, f"{SYSCTL}{key}={value}")


# --------------------------------------------------------------------------- pure plans


def plan_node(net: NodeNetwork, *, have_netns: bool = False, have_link: bool = False) -> list[Step]:
    """Commands that bring the node network to its desired state. With `have_*` set the
    plan only re-asserts addresses, link state, routes and sysctls (all idempotent), so
    re-running it on a healthy node is cheap and harmless."""
    ns, host = net.netns, net.host_link
    steps: list[Step] = []
    if not have_netns:
        steps.append(Step(None, links.netns_add(ns)))
    if not have_link:
        steps.append(Step(None, links.veth_pair(host, NODE_IF, peer_netns=ns, queues=1)))
    steps += [
        Step(None, links.addr_add(host, str(net.host_cidr), replace=True)),
        Step(None, links.link_up(host)),
        Step(None, links.route("replace", str(net.pod_cidr), via=str(net.node_ip), dev=host)),
        *(
            Step(None, links.route("replace", cidr, via=str(net.node_ip), dev=host))
            for cidr in net.extra_host_routes
        ),
        *(
            Step(None, links.route("replace", cidr, kind="unreachable",
                                   metric=net.guard_metric))
            for cidr in net.guard_ranges
        ),
        Step(ns, links.link_up("lo")),
        Step(ns, links.addr_add("lo", f"{GATEWAY}/32", replace=True)),
        Step(ns, links.addr_add(NODE_IF, str(net.node_cidr), replace=True)),
        Step(ns, links.link_up(NODE_IF)),
        sysctl(ns, links.FORWARDING_KEY, 1),
    ]
    return steps


# Parsed once per network: every pod's plan asks for these (a frozen, slotted dataclass
# cannot cache them itself).
@functools.lru_cache(maxsize=64)
def _pod_cidr(pod_network: str, node_index: int) -> IPv4Network:
    base = IPv4Network(pod_network).network_address
    return IPv4Network(f"{base + node_index * 256}/24")


@functools.lru_cache(maxsize=64)
def _node_cidr(node_network: str, node_index: int) -> IPv4Interface:
    net = IPv4Network(node_network)
    return IPv4Interface(f"{net.network_address + node_index + 2}/{net.prefixlen}")


def _pod_ip(net: NodeNetwork, ip: IPv4Address | str) -> IPv4Address:
    addr = IPv4Address(ip)
    if addr not in net.pod_cidr:
        raise ValueError(f"pod IP {addr} is outside the node's podCIDR {net.pod_cidr}")
    return addr


def plan_pod(
    net: NodeNetwork, pod_uid: str, ip: IPv4Address | str, *, existing: bool = False
) -> list[Step]:
    """Commands that give pod `pod_uid` its network namespace, veth and routes. With
    `existing`, only the idempotent part: for adopting a sandbox made before a restart."""
    addr = _pod_ip(net, ip)
    pod, node, vp = net.pod_netns(pod_uid), net.netns, net.pod_veth(pod_uid)
    steps: list[Step] = []
    if not existing:
        steps += [
            Step(None, links.netns_add(pod)),
            Step(node, links.veth_pair(vp, POD_IF, peer_netns=pod, queues=1)),
        ]
    steps += [
        Step(node, links.link_up(vp)),
        Step(node, links.route("replace", f"{addr}/32", dev=vp)),
        Step(pod, links.link_up("lo")),
        Step(pod, links.addr_add(POD_IF, f"{addr}/32", replace=existing)),
        Step(pod, links.link_up(POD_IF)),
        Step(
            pod,
            links.route(
                "replace" if existing else "add",
                "default",
                via=str(GATEWAY),
                dev=POD_IF,
                onlink=True,
            ),
        ),
    ]
    return steps


def plan_pod_delete(net: NodeNetwork, pod_uid: str) -> list[Step]:
    """Both, independent of each other: deleting the node-side veth kills its peer and the
    /32 route even if a process still holds the pod namespace open; dropping the name
    lets the kernel free the namespace once nothing holds it."""
    return [
        Step(net.netns, links.link_del(net.pod_veth(pod_uid))),
        Step(None, links.netns_del(net.pod_netns(pod_uid))),
    ]


def plan_teardown(
    net: NodeNetwork, *, existing_netns: Iterable[str], have_link: bool
) -> list[Step]:
    """Everything `plan_node`/`plan_pod` made that still exists, removed in one host batch.
    The host routes go with the host link; pod veths go with the node namespace."""
    existing = set(existing_netns)
    steps: list[Step] = []
    if have_link:
        steps.append(Step(None, links.link_del(net.host_link)))
    if net.netns in existing:
        steps.append(Step(None, links.netns_del(net.netns)))
    steps += [Step(None, links.netns_del(ns)) for ns in sorted(pod_netns_of(net, existing))]
    return steps


def pod_netns_of(net: NodeNetwork, names: Iterable[str]) -> dict[str, str]:
    """Which of `names` are pod namespaces of this cluster → their UID prefix. The exact
    12-character suffix keeps cluster `a` from claiming the pods of cluster `a-b`."""
    pattern = re.compile(re.escape(net.pod_netns_prefix) + r"([0-9a-f-]{12})$")
    found = {}
    for name in names:
        m = pattern.match(name)
        if m and name != net.netns:
            found[name] = m.group(1)
    return found


def render(plan: Sequence[Step]) -> list[str]:
    """The plan as shell commands a person would type (logs, docs, `podnet trace`)."""
    out = []
    for s in plan:
        if s.command.startswith(SYSCTL):
            prefix = f"ip netns exec {s.netns} " if s.netns else ""
            out.append(prefix + s.command)
        else:
            out.append(f"ip -n {s.netns} {s.command}" if s.netns else f"ip {s.command}")
    return out


# --------------------------------------------------------------------------- apply


# Carries out whole-rtnl plans: namespace name, lines per group (nshelper.NetnsHelper's
# run_groups in the agent; a thread of this process by default).
GroupRunner = Callable[[Sequence[tuple[str | None, list[str]]]], Awaitable[None]]


async def apply(plan: Sequence[Step], runner: GroupRunner | None = None) -> None:
    """Run a plan in order: each run of consecutive `ip` lines for one namespace is one
    `ip -batch` process; sysctls are written in-process. Stops at the first failure.

    A plan that rtnetlink can carry out whole (a pod sandbox's) goes as one job to
    `runner` (the agent's namespace helper process) or else to the namespace pool. Three
    hand-offs per pod (host, node, pod namespace), each waiting for a free thread and
    then for the event loop to send the next, made a sandbox take 74 ms (median) in a
    100-pod burst."""

    def key(s: Step) -> tuple[str | None, bool]:
        return s.netns, s.command.startswith(SYSCTL)

    groups = [(ns, is_sysctl, list(group))
              for (ns, is_sysctl), group in itertools.groupby(plan, key=key)]
    if all(not is_sysctl and rtnl.supported([s.command for s in steps])
           for _, is_sysctl, steps in groups):
        whole = [(ns, [s.command for s in steps]) for ns, _, steps in groups]
        if runner is not None:
            await runner(whole)
        else:
            await in_pool(rtnl.run_groups, whole)
        return
    for ns, is_sysctl, steps in groups:
        if not is_sysctl:
            lines = [s.command for s in steps]
            if rtnl.supported(lines):
                # The pod sandbox's lines, over netlink: no fork of the agent per batch.
                await in_pool(rtnl.run_lines, ns, lines)
            else:
                await ip_batch(lines, ns)
            continue
        for s in steps:
            name, _, value = s.command[len(SYSCTL) :].partition("=")
            if ns is None:
                raise ValueError("host sysctls are not podnet's to change")
            await asysctl_in_netns(ns, name, value)


def _host_link_exists(name: str) -> bool:
    # The agent runs in the host namespace, so its /sys shows the host's links.
    return Path("/sys/class/net", name).exists()


async def ensure_node(net: NodeNetwork) -> None:
    """Make the node network exist and be right; cheap and harmless when it already is.
    A half-made node (a host link whose node namespace is gone) is repaired."""
    netnsdir.ensure_tmpfs()
    have_netns = netns_exists(net.netns)
    have_link = _host_link_exists(net.host_link)
    if have_link and not have_netns:
        await _ignore_missing(ip_batch([links.link_del(net.host_link)]))
        have_link = False
    try:
        await apply(plan_node(net, have_netns=have_netns, have_link=have_link))
    except KernelError:
        if not have_link:
            raise
        # The host link is not joined to this node namespace's eth0 (a namespace made
        # again under the same name): relink once.
        await _ignore_missing(ip_batch([links.link_del(net.host_link)]))
        await apply(plan_node(net, have_netns=True, have_link=False))


async def teardown_node(net: NodeNetwork) -> None:
    """Remove the node namespace, the host link (and with it the host routes) and every
    pod namespace of this cluster, whatever state they are in. Safe to repeat."""
    plan = plan_teardown(
        net, existing_netns=list_netns(), have_link=_host_link_exists(net.host_link)
    )
    try:
        await apply(plan)
    except KernelError:
        # Something vanished under us (or refused): finish one by one, skipping the gone.
        for step in plan:
            await _ignore_missing(ip_batch([step.command]))
    for cidr in net.guard_ranges:
        await _ignore_missing(ip_batch([links.route("del", cidr, kind="unreachable",
                                                    metric=net.guard_metric)]))
    netnsdir.release_tmpfs()  # when no other cluster has names there


async def list_pod_networks(net: NodeNetwork) -> dict[str, str]:
    """Pod namespaces of this cluster on this machine → pod UID prefix (for finding
    orphans after a restart). Assumes one node per cluster per machine."""
    return pod_netns_of(net, list_netns())


async def create_pod_network(net: NodeNetwork, pod_uid: str, ip: IPv4Address | str,
                             runner: GroupRunner | None = None) -> PodNetwork:
    """Give the pod its namespace, veth, address and routes. A namespace that already
    exists with this IP is adopted (its state re-asserted); anything else under the pod's
    names is cleared and rebuilt. On failure nothing half-made is left behind."""
    addr = _pod_ip(net, ip)
    result = PodNetwork(net.pod_netns(pod_uid), addr, net.pod_veth(pod_uid))
    if netns_exists(result.netns):
        if await _pod_address(result.netns) == addr:
            try:
                await apply(plan_pod(net, pod_uid, addr, existing=True), runner)
                return result
            except KernelError:
                pass  # the node side is gone or wrong: rebuild below
        await delete_pod_network(net, pod_uid)
    try:
        await apply(plan_pod(net, pod_uid, addr), runner)
    except KernelError as e:
        await delete_pod_network(net, pod_uid)
        if not e.exists:
            raise
        # A stale node-side veth (its namespace held open by an old process): the delete
        # above removed it; try once more.
        try:
            await apply(plan_pod(net, pod_uid, addr), runner)
        except KernelError:
            await delete_pod_network(net, pod_uid)
            raise
    return result


async def delete_pod_network(net: NodeNetwork, pod_uid: str) -> None:
    """Remove the pod's veth, route and namespace; nothing to remove is fine."""
    # Each step on its own (the veth may be gone while the name remains, or the reverse),
    # and both at once: a veth delete waits out an RCU grace period (~20 ms) that the
    # name removal need not queue behind.
    steps = [
        _ignore_missing(in_pool(rtnl.run_lines, step.netns, [step.command], kind=WAIT))
        for step in plan_pod_delete(net, pod_uid)
        if netns_exists(step.netns or net.pod_netns(pod_uid))
    ]
    await asyncio.gather(*steps)


async def _pod_address(pod_netns: str) -> IPv4Address | None:
    """The IPv4 address on the pod's eth0, if it has one."""
    done = await run("ip", "-n", pod_netns, "-4", "-o", "addr", "show", "dev", POD_IF, check=False)
    for line in done.stdout.splitlines():
        parts = line.split()
        if "inet" in parts:
            return IPv4Interface(parts[parts.index("inet") + 1]).ip
    return None


async def _ignore_missing(aw: Awaitable[object]) -> None:
    try:
        await aw
    except KernelError as e:
        if not e.not_found:
            raise
