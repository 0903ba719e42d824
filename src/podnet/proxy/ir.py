"""The proxy's model of an nftables table: a small typed IR of rules, chains, sets and
map elements, and the `Piece` one service port adds to it. Pure data, no behaviour:
`ruleset` builds it, `tables` diffs it, `render` prints it as nft syntax and `tracer`
walks packets through it (DESIGN.md principle 5: one model, two uses)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal, TypeAlias

PortKey: TypeAlias = tuple[str, str, str, str]  # ServicePort.key: ns, name, port name, proto


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
class Hairpin:
    """`ct state new ct status dnat fib daddr . iif oif exists`: the first packet of a
    connection that DNAT sends back out of the interface it came in on — with one /32
    route per pod, that is an endpoint reaching itself through its Service. (nft cannot
    compare source and destination directly; the route lookup answers the same question
    without a per-endpoint element.)"""


@dataclass(frozen=True, slots=True)
class Numgen:
    """`numgen random mod N vmap { 0 : goto t0, … }`: an even random choice."""

    targets: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Dnat:
    ip: str
    port: int


@dataclass(frozen=True, slots=True)
class DnatMap:
    """`ct mark set numgen random mod N dnat ip to ip daddr . meta l4proto . th dport .
    ct mark map @<map>`: an even random choice among the N endpoints the map holds for
    this address. The choice goes through the conntrack mark because nft 1.0 cannot
    declare a map keyed by numgen that it can still add elements to later (its `typeof`
    does not survive the round trip through the kernel); the nat chains see only a
    connection's first packet, so the mark is written once per connection."""

    map: str
    mod: int


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
    Match | HasMark | Verdict | Lookup | Hairpin | Numgen | Dnat | DnatMap | SetMark
    | Masquerade | Reject | Remember
)
Key: TypeAlias = tuple[str | int, ...]


@dataclass(frozen=True, slots=True)
class Target:
    """The data of a `service-endpoints` / `local-endpoints` element: `ip . port`."""

    ip: str
    port: int


# A map element's data: a verdict (vmaps), an endpoint (DNAT maps), None (plain sets).
Value: TypeAlias = Verdict | Target | None


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
    """A named set (`map` None) or map (`map` "verdict" or a data type). Immutable once
    created: a different definition gets a different name (the affinity timeout is in
    the hash)."""

    name: str
    type: tuple[str, ...]
    map: str | None = None
    timeout: int | None = None  # seconds; sets with a timeout are updated from the packet path


@dataclass(frozen=True, slots=True)
class Ruleset:
    """The whole table, as the kernel should hold it. `elements` holds the static content
    of maps and sets (key tuple → data); affinity sets are filled by packets, not by us."""

    chains: Mapping[str, Chain]
    sets: Mapping[str, SetDef]
    elements: Mapping[str, Mapping[Key, Value]]
    labels: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))


@dataclass(frozen=True, slots=True)
class Piece:
    """What one service port adds to the table. `chains` and `sets` are its own (named
    after its hash, so no other piece has them); `shared` names the shared dispatch
    chains it points at; `elements` are (map or set, key, data). Two pieces may add the
    same map key (two Services given one external IP and port): `tables.Tables` counts."""

    key: PortKey
    label: str  # `ns/name:port/proto`, for trace
    elements: tuple[tuple[str, Key, Value], ...]
    shared: frozenset[str] = frozenset()
    chains: tuple[Chain, ...] = ()
    sets: tuple[SetDef, ...] = ()
    labels: tuple[tuple[str, str], ...] = ()
