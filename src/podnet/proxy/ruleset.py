"""Services → the desired nftables table `ip podnet-proxy` of one node, in the IR of
`podnet.proxy.ir`. Pure: no I/O, no clock, no globals (STYLE.md §1). docs/nftables.md
describes every table, chain, map, set and priority made here.

The table is built from independent *pieces*, one per service port (`piece`): the map
elements, and for the rare ports that need them (ClientIP affinity, externalTrafficPolicy
Local) their own chains and sets. Everything else is shared: a plain service port owns no
chain at all, only map elements — its address points at the shared chain `cluster-<N>`
(N = its number of endpoints), which picks `numgen random mod N` and DNATs through one
map, `service-endpoints`, keyed by (address, protocol, port, choice). So a service costs
the kernel 1 + N elements and no rules, a change to it touches only its own elements, and
`podnet.proxy.tables` can program the kernel one piece at a time.

A `Ruleset` (the whole table) is what `podnet.proxy.tracer` walks, so the packets the
kernel sees and the answers `podnet trace` gives come from one model (DESIGN.md
principle 5). `podnet.proxy.render` turns the IR into nft's text syntax.

Per packet the work does not grow with the number of Services: a new connection costs one
hash lookup in a verdict map (`service-ips`, or `service-nodeports` on the node IP), one
`numgen` and one hash lookup in `service-endpoints`; after DNAT one route lookup (hairpin).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

from podnet.proxy.ir import (
    Chain,
    Dnat,
    DnatMap,
    Hairpin,
    HasMark,
    Hook,
    Key,
    Lookup,
    Masquerade,
    Match,
    Numgen,
    Piece,
    PortKey,
    Reject,
    Remember,
    Rule,
    Ruleset,
    SetDef,
    SetMark,
    Target,
    Value,
    Verdict,
)
from podnet.proxy.views import Endpoint, ServicePort, usable

FAMILY = "ip"
TABLE = "podnet-proxy"
MASQ_BIT = 0x4000  # the packet mark bit that asks nat-postrouting to masquerade

# Base-chain priorities (see docs/nftables.md). DNAT happens at dstnat (-100); the
# reject chains run just after it (-90), when a served packet already carries its
# endpoint's address, so whatever still points into a service range was not served.
PRIO_DSTNAT = -100
PRIO_REJECT = -90
PRIO_SRCNAT = 100

SERVICE_IPS = "service-ips"
SERVICE_NODEPORTS = "service-nodeports"
NO_ENDPOINT_IPS = "no-endpoint-services"
NO_ENDPOINT_NODEPORTS = "no-endpoint-nodeports"
SERVICE_ENDPOINTS = "service-endpoints"
LOCAL_ENDPOINTS = "local-endpoints"
SERVICES = "services"
REJECT_UNSERVED = "reject-unserved"
REJECT = "reject-service"
MARK_MASQ = "mark-for-masquerade"

IP_PORT_KEY = ("ip daddr", "meta l4proto", "th dport")
PORT_KEY = ("meta l4proto", "th dport")
# Shared dispatch chains, one per endpoint count in use (see `shared_chain`).
CLUSTER_PREFIX = "cluster-"
EXTERNAL_PREFIX = "external-"
LOCAL_PREFIX = "local-"

IPV4_TEXT = re.compile(r"(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}")


@dataclass(frozen=True, slots=True)
class NodeInfo:
    node_ip: str
    node_name: str
    service_cidr: str = "10.96.0.0/12"
    pod_cidr: str = "10.244.0.0/16"  # the cluster's pod range: sources that need no SNAT
    lb_cidr: str | None = "10.251.0.0/24"



# --------------------------------------------------------------------------- build


def _hash(*parts: object) -> str:
    return hashlib.sha256("\0".join(map(str, parts)).encode()).hexdigest()[:12]


def chain_suffix(port: ServicePort) -> str:
    return _hash(*port.key)


def _endpoint_chain(port: ServicePort, ep: Endpoint) -> str:
    return "ep-" + _hash(*port.key, ep.ip, ep.port)


def _affinity_set(port: ServicePort, ep: Endpoint, timeout: int) -> str:
    return "aff-" + _hash(*port.key, ep.ip, ep.port, timeout)


def shared_chain(name: str, node: NodeInfo) -> Chain:
    """The shared dispatch chain called `name`:
    - `cluster-<N>`: SNAT sources outside the pod range, then DNAT to one of the N
      endpoints `service-endpoints` holds for the packet's address;
    - `external-<N>`: SNAT always (externalTrafficPolicy Cluster), then `cluster-<N>`;
    - `local-<N>`: DNAT to one of N endpoints in `local-endpoints`, no SNAT (policy
      Local keeps the client's address)."""
    kind, _, count = name.rpartition("-")
    n = int(count)
    if kind + "-" == CLUSTER_PREFIX:
        return Chain(name, (
            Rule((Match("ip saddr", node.pod_cidr, negate=True), Verdict("jump", MARK_MASQ))),
            Rule((DnatMap(SERVICE_ENDPOINTS, n),)),
        ))
    if kind + "-" == EXTERNAL_PREFIX:
        return Chain(name, (Rule((Verdict("jump", MARK_MASQ),)),
                            Rule((Verdict("goto", CLUSTER_PREFIX + count),))))
    if kind + "-" == LOCAL_PREFIX:
        return Chain(name, (Rule((DnatMap(LOCAL_ENDPOINTS, n),)),))
    raise ValueError(f"not a shared chain: {name}")


def _static(node: NodeInfo) -> tuple[list[Chain], list[SetDef]]:
    masq_rule = Rule((HasMark(MASQ_BIT), SetMark(MASQ_BIT, "^"), Masquerade()))
    # After DNAT (this runs at -90): an endpoint that reached itself must be masqueraded,
    # or its reply would skip the node and never be un-NATed.
    hairpin_rule = Rule((Hairpin(), Verdict("jump", MARK_MASQ)), "hairpin")
    unserved = [
        Rule((Lookup(IP_PORT_KEY, NO_ENDPOINT_IPS),)),
        Rule((Match("ip daddr", node.node_ip), Lookup(PORT_KEY, NO_ENDPOINT_NODEPORTS))),
        Rule((Match("ip daddr", node.service_cidr), Verdict("goto", REJECT)),
             "service range, no such service port"),
    ]
    if node.lb_cidr:
        unserved.append(
            Rule((Match("ip daddr", node.lb_cidr), Verdict("goto", REJECT)),
                 "load-balancer range, no such service port")
        )
    chains = [
        Chain("nat-prerouting", (Rule((Verdict("jump", SERVICES),)),),
              Hook("nat", "prerouting", PRIO_DSTNAT)),
        Chain("nat-output", (Rule((Verdict("jump", SERVICES),)),),
              Hook("nat", "output", PRIO_DSTNAT)),
        Chain("nat-postrouting", (masq_rule,), Hook("nat", "postrouting", PRIO_SRCNAT)),
        Chain("filter-prerouting", (hairpin_rule, Rule((Verdict("jump", REJECT_UNSERVED),))),
              Hook("filter", "prerouting", PRIO_REJECT)),
        Chain("filter-output", (Rule((Verdict("jump", REJECT_UNSERVED),)),),
              Hook("filter", "output", PRIO_REJECT)),
        Chain(SERVICES, (
            Rule((Lookup(IP_PORT_KEY, SERVICE_IPS),)),
            Rule((Match("ip daddr", node.node_ip), Lookup(PORT_KEY, SERVICE_NODEPORTS))),
        )),
        Chain(REJECT_UNSERVED, tuple(unserved)),
        Chain(REJECT, (
            Rule((Match("meta l4proto", "tcp"), Reject("tcp reset"))),
            Rule((Reject("port-unreachable"),)),
        )),
        Chain(MARK_MASQ, (Rule((SetMark(MASQ_BIT),)),)),
    ]
    ip_port = ("ipv4_addr", "inet_proto", "inet_service")
    port_only = ("inet_proto", "inet_service")
    sets = [
        SetDef(SERVICE_IPS, ip_port, "verdict"),
        SetDef(SERVICE_NODEPORTS, port_only, "verdict"),
        SetDef(NO_ENDPOINT_IPS, ip_port, "verdict"),
        SetDef(NO_ENDPOINT_NODEPORTS, port_only, "verdict"),
        SetDef(SERVICE_ENDPOINTS, (*ip_port, "mark"), "ipv4_addr . inet_service"),
        SetDef(LOCAL_ENDPOINTS, (*ip_port, "mark"), "ipv4_addr . inet_service"),
    ]
    return chains, sets


def static(node: NodeInfo) -> Ruleset:
    """The table with no service in it: base chains, the fixed chains, maps and sets."""
    chains, sets = _static(node)
    return Ruleset(
        MappingProxyType({c.name: c for c in chains}),
        MappingProxyType({s.name: s for s in sets}),
        MappingProxyType({s.name: MappingProxyType({}) for s in sets}),
    )


def _choice(
    elems: list[tuple[str, Key, Value]], emap: str, prefix: str,
    addrs: Sequence[tuple[str, str, int]], eps: Sequence[Endpoint],
) -> tuple[Verdict, str | None]:
    """Where a packet to one of `addrs` goes to pick among `eps` through `emap`: the
    verdict for the address maps and the shared chain it names (None: drop)."""
    if not eps:
        return Verdict("drop"), None
    targets = [Target(e.ip, e.port) for e in eps]
    for ip, proto, port in addrs:
        elems += [(emap, (ip, proto, port, i), t) for i, t in enumerate(targets)]
    chain = prefix + str(len(eps))
    return Verdict("goto", chain), chain


def _dispatch(port: ServicePort, eps: Sequence[Endpoint]) -> list[Rule]:
    """Affinity ports: rules that send a new connection to one of `eps` through their
    endpoint chains, remembered clients first."""
    if not eps:
        return [Rule((Verdict("drop"),), "no local endpoints")]
    targets = tuple(_endpoint_chain(port, e) for e in eps)
    timeout = port.session_affinity_timeout
    assert timeout is not None
    rules = [
        Rule((Match("ip saddr", "@" + _affinity_set(port, e, timeout)), Verdict("goto", t)))
        for e, t in zip(eps, targets, strict=True)
    ]
    if len(targets) == 1:
        rules.append(Rule((Verdict("goto", targets[0]),), port.label))
    else:
        rules.append(Rule((Numgen(targets),), port.label))
    return rules


def _sticky(port: ServicePort, internal: Sequence[Endpoint], cluster_wide: Sequence[Endpoint],
            local: Sequence[Endpoint], node: NodeInfo, proto: str,
            elems: list[tuple[str, Key, Value]]) -> Piece:
    """A ClientIP-affinity port: its own chains, one per endpoint, each remembering the
    client in a timeout set (rare; worth the extra chains)."""
    h = chain_suffix(port)
    svc = "svc-" + h
    timeout = port.session_affinity_timeout
    assert timeout is not None
    labels = [(svc, port.label)]
    chains = [Chain(svc, (
        Rule((Match("ip saddr", node.pod_cidr, negate=True), Verdict("jump", MARK_MASQ))),
        *_dispatch(port, internal),
    ))]
    elems.append((SERVICE_IPS, (str(port.cluster_ip), proto, port.port), Verdict("goto", svc)))
    used = list(internal)
    external_ips = (*port.external_ips, *port.lb_ips)
    if external_ips or port.node_port:
        ext = "ext-" + h
        labels.append((ext, port.label + " (external)"))
        if port.external_local:
            ext_rules = [Rule((Match("ip saddr", node.pod_cidr), Verdict("goto", svc)),
                              "pods get cluster behaviour"), *_dispatch(port, local)]
            used += local
        elif port.internal_local:
            ext_rules = [Rule((Verdict("jump", MARK_MASQ),)), *_dispatch(port, cluster_wide)]
            used += cluster_wide
        else:
            ext_rules = [Rule((Verdict("jump", MARK_MASQ),)), Rule((Verdict("goto", svc),))]
        chains.append(Chain(ext, tuple(ext_rules)))
        for ip in external_ips:
            elems.append((SERVICE_IPS, (ip, proto, port.port), Verdict("goto", ext)))
        if port.node_port:
            elems.append((SERVICE_NODEPORTS, (proto, port.node_port), Verdict("goto", ext)))
    sets: dict[str, SetDef] = {}
    seen: set[str] = set()
    for ep in used:
        name = _endpoint_chain(port, ep)
        if name in seen:
            continue
        seen.add(name)
        aff = _affinity_set(port, ep, timeout)
        sets[aff] = SetDef(aff, ("ipv4_addr",), timeout=timeout)
        chains.append(Chain(name, (
            Rule((Remember(aff),)),
            Rule((Match("meta l4proto", proto), Dnat(ep.ip, ep.port)),
                 f"{port.label} -> {ep.address}"),
        )))
    return Piece(port.key, port.label, tuple(elems), frozenset(), tuple(chains),
                 tuple(sets.values()), tuple(labels))


def element_label(name: str, key: Key) -> str:
    """How trace shows a map entry (`service-ips[10.96.0.20 . tcp . 80]`); the labels of
    address entries name their service port, since shared chains cannot."""
    return f"{name}[{' . '.join(map(str, key))}]"


_ADDRESS_MAPS = frozenset({SERVICE_IPS, SERVICE_NODEPORTS, NO_ENDPOINT_IPS,
                           NO_ENDPOINT_NODEPORTS})


def _checked(port: ServicePort, endpoints: Sequence[Endpoint]) -> None:
    """Addresses become nft syntax unquoted: anything that is not dotted IPv4 stops here
    (views already drop such addresses; this guards every other way in)."""
    for value in (port.cluster_ip, *port.external_ips, *port.lb_ips):
        if value is not None and IPV4_TEXT.fullmatch(value) is None:
            raise ValueError(f"{port.label}: not an IPv4 address: {value!r}")
    for e in endpoints:
        if IPV4_TEXT.fullmatch(e.ip) is None:
            raise ValueError(f"{port.label}: endpoint {e.ip!r} is not an IPv4 address")


def piece(port: ServicePort, endpoints: Sequence[Endpoint], node: NodeInfo) -> Piece:
    """What `port`, with these endpoints (all of them, with their conditions, as
    `views.endpoints_for` gives them), adds to the table.

    Kubernetes' rules, as applied here:
    - traffic goes to ready endpoints, else to serving-and-terminating ones;
    - no usable endpoint at all: cluster, external and load-balancer IPs and the NodePort
      are rejected at once (TCP reset / ICMP port-unreachable);
    - internalTrafficPolicy Local: cluster traffic only to this node's endpoints, dropped
      when there are none here; externalTrafficPolicy Local: the same for NodePort,
      externalIP and load-balancer traffic from outside the pod range, without SNAT
      (the client's address is preserved); pods reaching those addresses are treated as
      cluster traffic, as kube-proxy does;
    - SNAT (masquerade) for cluster-IP traffic from outside the pod range, for external
      traffic under policy Cluster, and for hairpin (an endpoint reaching itself).
    """
    _checked(port, endpoints)
    elems: list[tuple[str, Key, Value]] = []
    proto = port.protocol.lower()
    external_ips = (*port.external_ips, *port.lb_ips)
    cluster_wide = usable(endpoints)
    if port.cluster_ip is None:
        return Piece(port.key, port.label, ())
    if not cluster_wide:
        reject = Verdict("goto", REJECT)
        for ip in (port.cluster_ip, *external_ips):
            elems.append((NO_ENDPOINT_IPS, (ip, proto, port.port), reject))
        if port.node_port:
            elems.append((NO_ENDPOINT_NODEPORTS, (proto, port.node_port), reject))
        return Piece(port.key, port.label, tuple(elems))
    local = (usable(endpoints, node.node_name)
             if port.internal_local or port.external_local else [])
    internal = local if port.internal_local else cluster_wide
    # Only an endpoint on this node can reach itself through this node's rules.
    if port.session_affinity_timeout is not None:
        return _sticky(port, internal, cluster_wide, local, node, proto, elems)
    shared: set[str] = set()
    addr = (port.cluster_ip, proto, port.port)
    verdict, chain = _choice(elems, SERVICE_ENDPOINTS, CLUSTER_PREFIX, [addr], internal)
    elems.append((SERVICE_IPS, addr, verdict))
    shared |= {chain} if chain else set()
    outside = [(ip, proto, port.port) for ip in external_ips]
    if port.node_port:
        outside.append((node.node_ip, proto, port.node_port))
    if not outside:
        return Piece(port.key, port.label, tuple(elems), frozenset(shared))
    chains: tuple[Chain, ...] = ()
    labels: tuple[tuple[str, str], ...] = ()
    if port.external_local:
        # Pods reaching an external address get what the ClusterIP gives them; everyone
        # else gets this node's endpoints, unmasqueraded: a chain of this port's own.
        ext = "ext-" + chain_suffix(port)
        to_cluster, c1 = _choice(elems, SERVICE_ENDPOINTS, CLUSTER_PREFIX, outside, internal)
        to_local, c2 = _choice(elems, LOCAL_ENDPOINTS, LOCAL_PREFIX, outside, local)
        shared |= {c for c in (c1, c2) if c}
        chains = (Chain(ext, (
            Rule((Match("ip saddr", node.pod_cidr), to_cluster), "pods get cluster behaviour"),
            Rule((to_local,), port.label + " (external, local endpoints)"),
        )),)
        labels = ((ext, port.label + " (external)"),)
        verdict = Verdict("goto", ext)
    else:
        # externalTrafficPolicy Cluster: every endpoint, whatever internalTrafficPolicy says.
        _, c1 = _choice(elems, SERVICE_ENDPOINTS, CLUSTER_PREFIX, outside, cluster_wide)
        verdict = Verdict("goto", EXTERNAL_PREFIX + str(len(cluster_wide)))
        shared |= {verdict.target, str(c1)}
    for ip, _, _ in outside[:len(external_ips)]:
        elems.append((SERVICE_IPS, (ip, proto, port.port), verdict))
    if port.node_port:
        elems.append((SERVICE_NODEPORTS, (proto, port.node_port), verdict))
    return Piece(port.key, port.label, tuple(elems), frozenset(shared), chains, (), labels)


def assemble(node: NodeInfo, pieces: Iterable[Piece]) -> Ruleset:
    """The whole table: the static part, every piece, and the shared chains they use."""
    base = static(node)
    chains = dict(base.chains)
    sets = dict(base.sets)
    elements: dict[str, dict[Key, Value]] = {name: {} for name in sets}
    labels: dict[str, str] = {}
    shared: set[str] = set()
    for pc in pieces:
        chains.update((c.name, c) for c in pc.chains)
        sets.update((s.name, s) for s in pc.sets)
        for name, key, value in pc.elements:
            elements.setdefault(name, {})[key] = value
            if name in _ADDRESS_MAPS:
                labels[element_label(name, key)] = pc.label
        shared |= pc.shared
        labels.update(pc.labels)
    for name in sorted(shared):
        chains[name] = shared_chain(name, node)
    for name in sets:
        elements.setdefault(name, {})
    return Ruleset(
        MappingProxyType(chains),
        MappingProxyType(sets),
        MappingProxyType({k: MappingProxyType(v) for k, v in elements.items()}),
        MappingProxyType(labels),
    )


def build(
    ports: Iterable[ServicePort],
    endpoints_by_port: Mapping[PortKey, Sequence[Endpoint]],
    node: NodeInfo,
) -> Ruleset:
    """The whole table for `ports`, whose endpoints are looked up by `ServicePort.key`
    (the model `tracer` walks; the proxier programs the same pieces one by one)."""
    return assemble(node, (piece(p, endpoints_by_port.get(p.key, ()), node)
                           for p in sorted(ports, key=lambda p: p.key)))
