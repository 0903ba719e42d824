"""Services → the desired nftables table `ip podnet-proxy` of one node, and the libnftables
JSON commands that create it (`full`) or move the kernel from one ruleset to the next
(`diff`). Pure: no I/O, no clock, no globals (STYLE.md §1). docs/nftables.md describes
every table, chain, map, set and priority made here.

A `Ruleset` is a small typed IR, not rule text: `render_rule` turns it into libnftables
JSON and `podnet.proxy.tracer` walks it, so the packets the kernel sees and the answers
`podnet trace` gives come from one model (DESIGN.md principle 5).

Per packet the work does not grow with the number of Services: a new connection costs one
hash lookup in a verdict map (`service-ips` for cluster, external and load-balancer IPs,
`service-nodeports` on the node IP), then one `numgen` choice inside the service's chain.
Chain names come from a hash of (namespace, name, port name, protocol) — plus the
endpoint for endpoint chains — so a change touches only the chains it concerns.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network
from types import MappingProxyType
from typing import Any, Literal, TypeAlias

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
SERVICES = "services"
REJECT_UNSERVED = "reject-unserved"
REJECT = "reject-service"
MARK_MASQ = "mark-for-masquerade"

IP_PORT_KEY = ("ip daddr", "meta l4proto", "th dport")
PORT_KEY = ("meta l4proto", "th dport")


# --------------------------------------------------------------------------- the IR


@dataclass(frozen=True, slots=True)
class Match:
    """`<field> [!=] <value>`; field is `ip saddr`, `ip daddr` or `meta l4proto`; value an
    address, a prefix (`10.96.0.0/12`), a protocol (`tcp`) or a set (`@aff-…`)."""

    field: str
    value: str
    negate: bool = False


@dataclass(frozen=True, slots=True)
class HasMark:
    """`meta mark & bits == bits`."""

    bits: int


@dataclass(frozen=True, slots=True)
class Verdict:
    kind: Literal["goto", "jump", "accept", "drop", "return"]
    target: str = ""

    def __str__(self) -> str:
        return f"{self.kind} {self.target}" if self.target else self.kind


@dataclass(frozen=True, slots=True)
class Lookup:
    """`<keys joined by .> vmap @<map>`."""

    keys: tuple[str, ...]
    map: str


@dataclass(frozen=True, slots=True)
class Numgen:
    """`numgen random mod N vmap { 0 : goto t0, … }`: an even random choice."""

    targets: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Dnat:
    ip: str
    port: int


@dataclass(frozen=True, slots=True)
class SetMark:
    """`meta mark set meta mark | bits` (or `^ bits` to clear a bit known to be set)."""

    bits: int
    op: Literal["|", "^"] = "|"


@dataclass(frozen=True, slots=True)
class Masquerade:
    pass


@dataclass(frozen=True, slots=True)
class Reject:
    kind: Literal["tcp reset", "port-unreachable"]


@dataclass(frozen=True, slots=True)
class Remember:
    """`update @<set> { ip saddr }`: refresh this client in an affinity set."""

    set: str


Expr: TypeAlias = (
    Match | HasMark | Verdict | Lookup | Numgen | Dnat | SetMark | Masquerade | Reject | Remember
)
Key: TypeAlias = tuple[str | int, ...]


@dataclass(frozen=True, slots=True)
class Rule:
    exprs: tuple[Expr, ...]
    comment: str | None = None


@dataclass(frozen=True, slots=True)
class Hook:
    type: Literal["nat", "filter"]
    hook: Literal["prerouting", "output", "postrouting"]
    priority: int


@dataclass(frozen=True, slots=True)
class Chain:
    name: str
    rules: tuple[Rule, ...]
    hook: Hook | None = None


@dataclass(frozen=True, slots=True)
class SetDef:
    """A named set (`map` None) or verdict map (`map` "verdict"). Immutable once created:
    a different definition gets a different name (the affinity timeout is in the hash)."""

    name: str
    type: tuple[str, ...]
    map: str | None = None
    timeout: int | None = None  # seconds; sets with a timeout are updated from the packet path


@dataclass(frozen=True, slots=True)
class Ruleset:
    """The whole table, as the kernel should hold it. `elements` holds the static content
    of maps (key tuple → verdict); affinity sets are filled by packets, not by us."""

    chains: Mapping[str, Chain]
    sets: Mapping[str, SetDef]
    elements: Mapping[str, Mapping[Key, Verdict]]
    labels: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))


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


def _dispatch(port: ServicePort, eps: Sequence[Endpoint]) -> list[Rule]:
    """Rules that send a new connection to one of `eps` (remembered first, if sticky)."""
    if not eps:
        return [Rule((Verdict("drop"),), "no local endpoints")]
    targets = tuple(_endpoint_chain(port, e) for e in eps)
    rules = []
    timeout = port.session_affinity_timeout
    if timeout is not None:
        rules += [
            Rule((Match("ip saddr", "@" + _affinity_set(port, e, timeout)), Verdict("goto", t)))
            for e, t in zip(eps, targets, strict=True)
        ]
    if len(targets) == 1:
        rules.append(Rule((Verdict("goto", targets[0]),), port.label))
    else:
        rules.append(Rule((Numgen(targets),), port.label))
    return rules


def _static(node: NodeInfo) -> tuple[list[Chain], list[SetDef]]:
    masq_rule = Rule((HasMark(MASQ_BIT), SetMark(MASQ_BIT, "^"), Masquerade()))
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
        Chain("filter-prerouting", (Rule((Verdict("jump", REJECT_UNSERVED),)),),
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
    ]
    return chains, sets


def build(
    ports: Iterable[ServicePort],
    endpoints_by_port: Mapping[tuple[str, str, str, str], Sequence[Endpoint]],
    node: NodeInfo,
) -> Ruleset:
    """The table for `ports`, whose endpoints (all of them, with their conditions, as
    `views.endpoints_for` gives them) are looked up by `ServicePort.key`.

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
    chains, sets = _static(node)
    by_name: dict[str, Chain] = {c.name: c for c in chains}
    set_defs: dict[str, SetDef] = {s.name: s for s in sets}
    elements: dict[str, dict[Key, Verdict]] = {s.name: {} for s in sets}
    labels: dict[str, str] = {}
    reject = Verdict("goto", REJECT)
    pod_cidr = node.pod_cidr
    for port in sorted(ports, key=lambda p: p.key):
        if port.cluster_ip is None:
            continue
        proto = port.protocol.lower()
        all_eps = endpoints_by_port.get(port.key, ())
        cluster_wide = usable(all_eps)
        external_ips = (*port.external_ips, *port.lb_ips)
        if not cluster_wide:
            for ip in (port.cluster_ip, *external_ips):
                elements[NO_ENDPOINT_IPS][(ip, proto, port.port)] = reject
            if port.node_port:
                elements[NO_ENDPOINT_NODEPORTS][(proto, port.node_port)] = reject
            continue
        local = usable(all_eps, node.node_name)
        internal = local if port.internal_local else cluster_wide
        h = chain_suffix(port)
        svc = "svc-" + h
        labels[svc] = port.label
        svc_rules = [Rule((Match("ip saddr", pod_cidr, negate=True), Verdict("jump", MARK_MASQ)))]
        svc_rules += _dispatch(port, internal)
        by_name[svc] = Chain(svc, tuple(svc_rules))
        elements[SERVICE_IPS][(port.cluster_ip, proto, port.port)] = Verdict("goto", svc)
        used = list(internal)
        if external_ips or port.node_port:
            ext = "ext-" + h
            labels[ext] = port.label + " (external)"
            if port.external_local:
                ext_rules = [Rule((Match("ip saddr", pod_cidr), Verdict("goto", svc)),
                                  "pods get cluster behaviour")]
                ext_rules += _dispatch(port, local)
                used += local
            elif port.internal_local:
                ext_rules = [Rule((Verdict("jump", MARK_MASQ),)), *_dispatch(port, cluster_wide)]
                used += cluster_wide
            else:
                ext_rules = [Rule((Verdict("jump", MARK_MASQ),)), Rule((Verdict("goto", svc),))]
            by_name[ext] = Chain(ext, tuple(ext_rules))
            for ip in external_ips:
                elements[SERVICE_IPS][(ip, proto, port.port)] = Verdict("goto", ext)
            if port.node_port:
                elements[SERVICE_NODEPORTS][(proto, port.node_port)] = Verdict("goto", ext)
        for ep in used:
            name = _endpoint_chain(port, ep)
            if name in by_name:
                continue
            rules = [Rule((Match("ip saddr", ep.ip), Verdict("jump", MARK_MASQ)), "hairpin")]
            timeout = port.session_affinity_timeout
            if timeout is not None:
                aff = _affinity_set(port, ep, timeout)
                set_defs[aff] = SetDef(aff, ("ipv4_addr",), timeout=timeout)
                rules.append(Rule((Remember(aff),)))
            rules.append(Rule((Match("meta l4proto", proto), Dnat(ep.ip, ep.port)),
                              f"{port.label} -> {ep.address}"))
            by_name[name] = Chain(name, tuple(rules))
    return Ruleset(
        MappingProxyType(by_name),
        MappingProxyType(set_defs),
        MappingProxyType({k: MappingProxyType(v) for k, v in elements.items()}),
        MappingProxyType(labels),
    )


# --------------------------------------------------------------------------- JSON


def _addr(value: str) -> Any:
    if value.startswith("@"):
        return value
    if "/" in value:
        net = IPv4Network(value)
        return {"prefix": {"addr": str(net.network_address), "len": net.prefixlen}}
    IPv4Address(value)  # reject anything that is not an address before it reaches nft
    return value


def _field(name: str) -> dict[str, Any]:
    if name == "meta l4proto":
        return {"meta": {"key": "l4proto"}}
    proto, _, fld = name.partition(" ")
    return {"payload": {"protocol": proto, "field": fld}}


def _verdict(v: Verdict) -> dict[str, Any]:
    if v.target:
        return {v.kind: {"target": v.target}}
    return {v.kind: None}


def _mark() -> dict[str, Any]:
    return {"meta": {"key": "mark"}}


def render_expr(e: Expr) -> dict[str, Any]:
    """One IR expression as a libnftables JSON statement."""
    if isinstance(e, Match):
        right = e.value if e.field == "meta l4proto" else _addr(e.value)
        return {"match": {"op": "!=" if e.negate else "==", "left": _field(e.field),
                          "right": right}}
    if isinstance(e, HasMark):
        return {"match": {"op": "==", "left": {"&": [_mark(), e.bits]}, "right": e.bits}}
    if isinstance(e, Verdict):
        return _verdict(e)
    if isinstance(e, Lookup):
        keys = [_field(k) for k in e.keys]
        return {"vmap": {"key": {"concat": keys}, "data": "@" + e.map}}
    if isinstance(e, Numgen):
        elems = [[i, {"goto": {"target": t}}] for i, t in enumerate(e.targets)]
        gen = {"numgen": {"mode": "random", "mod": len(e.targets), "offset": 0}}
        return {"vmap": {"key": gen, "data": {"set": elems}}}
    if isinstance(e, Dnat):
        return {"dnat": {"addr": e.ip, "port": e.port}}
    if isinstance(e, SetMark):
        return {"mangle": {"key": _mark(), "value": {e.op: [_mark(), e.bits]}}}
    if isinstance(e, Masquerade):
        return {"masquerade": {"flags": ["fully-random"]}}
    if isinstance(e, Reject):
        if e.kind == "tcp reset":
            return {"reject": {"type": "tcp reset"}}
        return {"reject": {"type": "icmp", "expr": "port-unreachable"}}
    if isinstance(e, Remember):
        elem = {"payload": {"protocol": "ip", "field": "saddr"}}
        return {"set": {"op": "update", "elem": elem, "set": "@" + e.set}}
    raise TypeError(f"unknown expression {e!r}")


def _where() -> dict[str, str]:
    return {"family": FAMILY, "table": TABLE}


def render_rule(chain: str, rule: Rule) -> dict[str, Any]:
    body: dict[str, Any] = {**_where(), "chain": chain,
                            "expr": [render_expr(e) for e in rule.exprs]}
    if rule.comment:
        body["comment"] = rule.comment[:128]
    return {"rule": body}


def _chain_obj(chain: Chain) -> dict[str, Any]:
    body: dict[str, Any] = {"family": FAMILY, "table": TABLE, "name": chain.name}
    if chain.hook is not None:
        body.update(type=chain.hook.type, hook=chain.hook.hook, prio=chain.hook.priority,
                    policy="accept")
    return {"chain": body}


def _set_obj(s: SetDef) -> dict[str, Any]:
    body: dict[str, Any] = {"family": FAMILY, "table": TABLE, "name": s.name,
                            "type": list(s.type) if len(s.type) > 1 else s.type[0]}
    if s.map is not None:
        body["map"] = s.map
        return {"map": body}
    if s.timeout is not None:
        body["flags"] = ["timeout"]
        body["timeout"] = s.timeout
    return {"set": body}


def _elem_key(key: Key) -> Any:
    return {"concat": list(key)} if len(key) > 1 else key[0]


def _elements(s: SetDef, items: Iterable[tuple[Key, Verdict]]) -> dict[str, Any]:
    elem = [[_elem_key(k), _verdict(v)] for k, v in items]
    return {"element": {**_where(), "name": s.name, "elem": elem}}


def _element_keys(s: SetDef, keys: Iterable[Key]) -> dict[str, Any]:
    return {"element": {**_where(), "name": s.name, "elem": [_elem_key(k) for k in keys]}}


def full(rs: Ruleset) -> list[dict[str, Any]]:
    """Commands that replace whatever table is there by `rs`, in one transaction (the
    `add table` makes the `delete` safe when there is none yet)."""
    table = {"table": {"family": FAMILY, "name": TABLE}}
    cmds: list[dict[str, Any]] = [{"add": table}, {"delete": table}, {"add": table}]
    cmds += [{"add": _set_obj(s)} for s in rs.sets.values()]
    cmds += [{"add": _chain_obj(c)} for c in rs.chains.values()]
    for c in rs.chains.values():
        cmds += [{"add": render_rule(c.name, r)} for r in c.rules]
    for name, items in rs.elements.items():
        if items:
            cmds.append({"add": _elements(rs.sets[name], items.items())})
    return cmds


def diff(before: Ruleset, after: Ruleset) -> list[dict[str, Any]]:
    """Commands that turn `before` into `after` in one transaction. Their number follows
    the size of the change, not of the ruleset: one endpoint more or less is one endpoint
    chain added or removed, one service chain rewritten, and nothing else.

    Order matters inside the transaction: new sets and chains exist before anything
    refers to them; references (map elements, rules) go before what they referred to."""
    cmds: list[dict[str, Any]] = []
    new_sets = [s for n, s in after.sets.items() if n not in before.sets]
    for n, s in after.sets.items():
        old = before.sets.get(n)
        if old is not None and old != s:
            raise ValueError(f"set {n} changed definition; sets are immutable by name")
    cmds += [{"add": _set_obj(s)} for s in new_sets]
    new_chains = [c for n, c in after.chains.items() if n not in before.chains]
    cmds += [{"add": _chain_obj(c)} for c in new_chains]
    # Map elements that go or change go first: they may point at chains deleted below.
    added: dict[str, list[tuple[Key, Verdict]]] = {}
    for name, items in after.elements.items():
        old_items = before.elements.get(name, {})
        gone = [k for k, v in old_items.items() if items.get(k) != v]
        if gone:
            cmds.append({"delete": _element_keys(before.sets[name], gone)})
        added[name] = [(k, v) for k, v in items.items() if old_items.get(k) != v]
    changed = [
        c for n, c in after.chains.items()
        if n in before.chains and before.chains[n].rules != c.rules
    ]
    for c in changed:
        if c.hook != before.chains[c.name].hook:
            raise ValueError(f"base chain {c.name} changed its hook")
        cmds.append({"flush": _chain_obj(c)})
    for c in (*new_chains, *changed):
        cmds += [{"add": render_rule(c.name, r)} for r in c.rules]
    for name, items_ in added.items():
        if items_:
            cmds.append({"add": _elements(after.sets[name], items_)})
    gone_chains = [c for n, c in before.chains.items() if n not in after.chains]
    # Flush all first: a chain may only be deleted once no rule jumps to it.
    cmds += [{"flush": _chain_obj(c)} for c in gone_chains]
    cmds += [{"delete": _chain_obj(c)} for c in gone_chains]
    cmds += [{"delete": _set_obj(s)} for n, s in before.sets.items() if n not in after.sets]
    return cmds


def statement_count(cmds: Sequence[Mapping[str, Any]]) -> int:
    """How many kernel objects a command list touches (each element counts once)."""
    n = 0
    for c in cmds:
        body = next(iter(c.values()))
        elem = body.get("element") if isinstance(body, dict) else None
        n += len(elem["elem"]) if elem else 1
    return n
