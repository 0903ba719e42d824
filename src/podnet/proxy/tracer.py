"""Walk the first packet of a connection through a `Ruleset`, as the kernel would, and say
what happens to it and why. Pure. Unit tests state intent as packet walks over `build()`
(STYLE.md §4); `podnet trace` shows the same walk to users.

The model: a packet from a pod, the host or another node arrives on `iif` (any interface
name) and meets the `prerouting` base chains in priority order; one made in the node
namespace itself (`iif="local"`) meets the `output` ones. Then the `postrouting` ones. NAT
statements and `reject` end their base chain (the kernel's verdict for a nat expression
is accept); `drop` and `reject` end the packet. `numgen` branches: the trace then holds
one outcome per endpoint it can choose. Affinity sets are taken as empty (a client seen
for the first time); the walk notes where the client would be remembered.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from ipaddress import IPv4Address, IPv4Network

from podnet.proxy.ir import (
    Chain,
    Dnat,
    DnatMap,
    Hairpin,
    HasMark,
    Lookup,
    Masquerade,
    Match,
    Numgen,
    Reject,
    Remember,
    Rule,
    Ruleset,
    SetMark,
    Target,
    Verdict,
)

LOCAL = "local"
_MAX_DEPTH = 32  # the kernel allows 16 jumps deep; twice that means a loop in our IR


@dataclass(frozen=True, slots=True)
class Packet:
    src: str
    dst: str
    dport: int
    proto: str = "tcp"
    iif: str = "eth0"
    mark: int = 0
    dnat: str | None = None
    masquerade: bool = False


@dataclass(frozen=True, slots=True)
class Outcome:
    verdict: str  # "dnat 10.244.0.7:9376", "dnat … masquerade", "reject", "drop", "accept"
    path: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Trace:
    outcomes: tuple[Outcome, ...]

    @property
    def verdicts(self) -> frozenset[str]:
        return frozenset(o.verdict for o in self.outcomes)

    @property
    def verdict(self) -> str:
        """The one verdict, or `one of: a | b` when the rules choose at random."""
        vs = sorted(self.verdicts)
        return vs[0] if len(vs) == 1 else "one of: " + " | ".join(vs)


@dataclass(frozen=True, slots=True)
class _State:
    pkt: Packet
    path: tuple[str, ...]
    end: str  # "return" (fell off the chain), "accept", "drop", "reject"


def _field(p: Packet, name: str) -> str | int:
    if name == "ip saddr":
        return p.src
    if name == "ip daddr":
        return p.dnat.rsplit(":", 1)[0] if p.dnat else p.dst
    if name == "meta l4proto":
        return p.proto
    if name == "th dport":
        return int(p.dnat.rsplit(":", 1)[1]) if p.dnat else p.dport
    raise ValueError(f"unknown field {name}")


def _matches(p: Packet, m: Match) -> bool:
    got = _field(p, m.field)
    if m.value.startswith("@"):
        hit = False  # affinity sets: a first-time client is in none of them
    elif m.field == "meta l4proto":
        hit = got == m.value
    elif "/" in m.value:
        hit = IPv4Address(str(got)) in IPv4Network(m.value)
    else:
        hit = got == m.value
    return hit != m.negate


class _Walker:
    def __init__(self, rs: Ruleset):
        self.rs = rs

    def label(self, chain: str) -> str:
        extra = self.rs.labels.get(chain)
        return f"{chain} ({extra})" if extra else chain

    def chain(self, name: str, s: _State, depth: int) -> list[_State]:
        if depth > _MAX_DEPTH:
            raise RecursionError(f"chain {name}: jumps nest deeper than {_MAX_DEPTH}")
        return self.rules(self.rs.chains[name], 0, s, depth)

    def rules(self, chain: Chain, start: int, s: _State, depth: int) -> list[_State]:
        for i in range(start, len(chain.rules)):
            results = self.rule(chain, chain.rules[i], s, depth)
            if results is None:
                continue  # no match: next rule
            out: list[_State] = []
            for r in results:
                if r.end == "continue":
                    out += self.rules(chain, i + 1, replace(r, end="return"), depth)
                else:
                    out.append(r)
            return out
        return [replace(s, end="return")]

    def rule(self, chain: Chain, rule: Rule, s: _State, depth: int) -> list[_State] | None:
        """None when the rule does not match; else the states after it, with `end`
        "continue" for states that go on to the next rule of this chain."""
        p, path = s.pkt, s.path
        where = chain.name
        for e in rule.exprs:
            if isinstance(e, Match):
                if not _matches(p, e):
                    return None
            elif isinstance(e, HasMark):
                if p.mark & e.bits != e.bits:
                    return None
            elif isinstance(e, SetMark):
                p = replace(p, mark=p.mark | e.bits if e.op == "|" else p.mark ^ e.bits)
                if e.op == "|":
                    path += (f"{where}: mark for masquerade",)
            elif isinstance(e, Remember):
                path += (f"{where}: remember client {p.src} in {e.set}",)
            elif isinstance(e, Dnat):
                path += (f"{where}: dnat to {e.ip}:{e.port}",)
                return [_State(replace(p, dnat=f"{e.ip}:{e.port}"), path, "accept")]
            elif isinstance(e, Masquerade):
                path += (f"{where}: masquerade",)
                return [_State(replace(p, masquerade=True), path, "accept")]
            elif isinstance(e, Reject):
                path += (f"{where}: reject ({e.kind})",)
                return [_State(p, path, "reject")]
            elif isinstance(e, Verdict):
                return self.verdict(where, e, _State(p, path, ""), depth)
            elif isinstance(e, Hairpin):
                # One /32 route per pod: the route back out of the packet's own interface
                # exists exactly when DNAT chose the sender itself.
                if not p.dnat or p.dnat.rsplit(":", 1)[0] != p.src:
                    return None
            elif isinstance(e, DnatMap):
                key = tuple(_field(p, k) for k in ("ip daddr", "meta l4proto", "th dport"))
                chosen: list[_State] = []
                for i in range(e.mod):
                    found = self.rs.elements.get(e.map, {}).get((*key, i))
                    if not isinstance(found, Target):
                        continue  # no element: the kernel drops the packet (nat fails)
                    addr = f"{found.ip}:{found.port}"
                    step = (*path, f"{where}: random {i}/{e.mod} -> dnat to {addr}")
                    chosen.append(_State(replace(p, dnat=addr), step, "accept"))
                return chosen or [_State(p, (*path, f"{where}: {e.map} miss"), "drop")]
            elif isinstance(e, Lookup):
                key = tuple(_field(p, k) for k in e.keys)
                hit = self.rs.elements.get(e.map, {}).get(key)
                shown = " . ".join(map(str, key))
                if not isinstance(hit, Verdict):
                    return None  # a vmap miss lets the rule fall through
                label = self.rs.labels.get(f"{e.map}[{shown}]")
                about = f" ({label})" if label else ""
                path += (f"{where}: {e.map}[{shown}]{about} -> {hit}",)
                return self.verdict(where, hit, _State(p, path, ""), depth)
            elif isinstance(e, Numgen):
                out: list[_State] = []
                n = len(e.targets)
                for i, target in enumerate(e.targets):
                    step = (*path, f"{where}: random {i}/{n} -> goto {self.label(target)}")
                    out += self.verdict(where, Verdict("goto", target), _State(p, step, ""),
                                        depth, quiet=True)
                return out
            else:  # pragma: no cover - the IR is closed
                raise TypeError(f"unknown expression {e!r}")
        return [_State(p, path, "continue")]

    def verdict(
        self, where: str, v: Verdict, s: _State, depth: int, quiet: bool = False
    ) -> list[_State]:
        if v.kind in ("accept", "drop"):
            return [replace(s, path=(*s.path, f"{where}: {v.kind}"), end=v.kind)]
        if v.kind == "return":
            return [replace(s, end="return")]
        path = s.path if quiet else (*s.path, f"{where}: {v.kind} {self.label(v.target)}")
        if v.target not in self.rs.chains:
            raise KeyError(f"{where}: {v.kind} to missing chain {v.target}")
        results = self.chain(v.target, replace(s, path=path), depth + 1)
        if v.kind == "goto":
            return results  # a goto's "return" returns from this chain too
        return [replace(r, end="continue") if r.end == "return" else r for r in results]


def _base_chains(rs: Ruleset, hook: str) -> list[Chain]:
    found = [c for c in rs.chains.values() if c.hook is not None and c.hook.hook == hook]
    return sorted(found, key=lambda c: c.hook.priority if c.hook else 0)


def _run_hook(w: _Walker, rs: Ruleset, hook: str, states: list[_State]) -> list[_State]:
    for chain in _base_chains(rs, hook):
        nxt: list[_State] = []
        for s in states:
            if s.end in ("drop", "reject"):
                nxt.append(s)
                continue
            # NAT chains see only the first packet; a connection is NATed at most once
            # per direction, which the model gets by skipping nat chains once NATed.
            if chain.hook and chain.hook.type == "nat" and (
                (hook != "postrouting" and s.pkt.dnat) or s.pkt.masquerade
            ):
                nxt.append(s)
                continue
            nxt += w.chain(chain.name, replace(s, end=""), 0)
        states = nxt
    return states


def trace(
    rs: Ruleset, src: str, dst: str, dport: int, proto: str = "tcp", iif: str = "eth0"
) -> Trace:
    """What the node does with the first packet `src` → `dst:dport` arriving on `iif`
    (`"local"`: sent from the node namespace itself)."""
    w = _Walker(rs)
    first = _State(Packet(src, dst, dport, proto.lower(), iif), (), "")
    states = _run_hook(w, rs, "output" if iif == LOCAL else "prerouting", [first])
    states = _run_hook(w, rs, "postrouting", states)
    outcomes = []
    for s in states:
        if s.end in ("drop", "reject"):
            verdict = s.end
        elif s.pkt.dnat:
            verdict = f"dnat {s.pkt.dnat}" + (" masquerade" if s.pkt.masquerade else "")
        else:
            verdict = "masquerade" if s.pkt.masquerade else "accept"
        outcomes.append(Outcome(verdict, s.path))
    return Trace(tuple(outcomes))
