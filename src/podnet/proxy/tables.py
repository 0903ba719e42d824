"""What the kernel's `ip podnet-proxy` table holds, kept one service port at a time, and
the nft commands that move it. Pure: a model in memory, no I/O (the proxier applies).

`update({port key: new piece or None})` changes the model and returns the commands for
exactly that change: a one-endpoint change is a handful of element statements whatever
the cluster size, because every piece is independent (`ruleset.piece`). What pieces
share is counted here: the dispatch chains `cluster-<N>`, `external-<N>`, `local-<N>`
(created with their first user, deleted with their last) and map keys two pieces both
claim (two Services given the same external IP and port, which Kubernetes does not
prevent): the last writer's value holds until every claimant is gone.

`reset()` starts over (the first sync replaces whatever a previous run left, stale chains
included) and `load(pieces)` gives the cold sync as a series of bounded transactions,
each complete for the ports in it, so no single transaction grows with the cluster.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass

from podnet.proxy import render
from podnet.proxy.ir import (
    Chain,
    Key,
    Piece,
    PortKey,
    Ruleset,
    SetDef,
    Value,
)
from podnet.proxy.ruleset import (
    CLUSTER_PREFIX,
    NodeInfo,
    assemble,
    shared_chain,
    static,
)

BATCH = 1000  # service ports per cold-sync transaction: ~0.1 s of kernel work each


@dataclass(frozen=True, slots=True)
class Command:
    """One nft command line and how many kernel objects it touches."""

    text: str
    statements: int = 1


Script = list[Command]


def text(script: Sequence[Command]) -> str:
    """The script as `nft -f` input."""
    return "\n".join(c.text for c in script) + "\n"


def texts(scripts: Iterable[Script], counts: list[int] | None = None) -> Iterator[str]:
    """Each script as text, lazily (see `nft.apply_each`); appends each one's statement
    count to `counts` if given."""
    for script in scripts:
        if counts is not None:
            counts.append(statement_count(script))
        yield text(script)


def statement_count(script: Sequence[Command]) -> int:
    return sum(c.statements for c in script)


def _chain_commands(chains: Iterable[Chain]) -> Script:
    return [Command(render.rule(c.name, r)) for c in chains for r in c.rules]


def _element_commands(verb: str, by_map: Mapping[str, list[tuple[Key, Value]]]) -> Script:
    out: Script = []
    for name, items in by_map.items():
        if not items:
            continue
        if verb == "add":
            out.append(Command(render.add_elements(name, items), len(items)))
        else:
            out.append(Command(render.delete_elements(name, (k for k, _ in items)),
                               len(items)))
    return out


class Tables:
    """The model of the proxy's table (see the module docstring)."""

    def __init__(self, node: NodeInfo) -> None:
        self.node = node
        self.pieces: dict[PortKey, Piece] = {}
        self._shared: Counter[str] = Counter()
        # (map, key) → data; a second claim on the same slot only counts in _extra.
        self._values: dict[tuple[str, Key], Value] = {}
        self._extra: Counter[tuple[str, Key]] = Counter()

    def reset(self) -> Script:
        """Forget everything; commands that replace whatever table is there by the
        static one (`add table` first makes the `delete` safe when there is none)."""
        self.pieces.clear()
        self._shared.clear()
        self._values.clear()
        self._extra.clear()
        base = static(self.node)
        script = [Command(render.table("add")), Command(render.table("delete")),
                  Command(render.table("add"))]
        script += [Command(render.set_decl(s)) for s in base.sets.values()]
        script += [Command(render.chain(c)) for c in base.chains.values()]
        script += _chain_commands(base.chains.values())
        return script

    def load(self, pieces: Iterable[Piece], batch: int = BATCH) -> Iterator[Script]:
        """`reset()` and then every piece, as scripts to apply in order: the first is
        the static table, each further one `batch` ports complete."""
        yield self.reset()
        chunk: dict[PortKey, Piece | None] = {}
        for pc in pieces:
            chunk[pc.key] = pc
            if len(chunk) >= batch:
                yield self.update(chunk)
                chunk = {}
        if chunk:
            yield self.update(chunk)

    def ruleset(self) -> Ruleset:
        return assemble(self.node, self.pieces.values())

    def update(self, changes: Mapping[PortKey, Piece | None]) -> Script:
        """Replace the pieces of these ports (None: the port is gone); the commands that
        make the kernel follow, in an order nft accepts in one transaction: what is
        referred to exists before references to it, and goes after them."""
        old_chains: dict[str, Chain] = {}
        new_chains: dict[str, Chain] = {}
        old_sets: dict[str, SetDef] = {}
        new_sets: dict[str, SetDef] = {}
        shared_before = set(self._shared)
        values, extra = self._values, self._extra
        gone_slots: dict[tuple[str, Key], Value] = {}
        new_slots: dict[tuple[str, Key], Value] = {}
        olds: list[Piece] = []
        news: list[Piece] = []
        for key, new in changes.items():
            old = self.pieces.get(key)
            if old == new:
                continue
            if old is not None:
                olds.append(old)
                del self.pieces[key]
            if new is not None:
                news.append(new)
                self.pieces[key] = new
        # Removals first, then additions: a slot both lost and regained with the same
        # data is no change at all.
        for old in olds:
            old_chains.update((c.name, c) for c in old.chains)
            old_sets.update((s.name, s) for s in old.sets)
            self._shared.subtract(old.shared)
            for name, k, _ in old.elements:
                slot = (name, k)
                if extra.get(slot):
                    extra[slot] -= 1
                    if not extra[slot]:
                        del extra[slot]
                    continue
                gone_slots.setdefault(slot, values.pop(slot))
                new_slots.pop(slot, None)
        for new in news:
            new_chains.update((c.name, c) for c in new.chains)
            new_sets.update((s.name, s) for s in new.sets)
            self._shared.update(new.shared)
            for name, k, value in new.elements:
                slot = (name, k)
                if slot in values:
                    extra[slot] += 1
                    if values[slot] == value:
                        continue
                    gone_slots.setdefault(slot, values[slot])  # last writer wins
                values[slot] = value
                new_slots[slot] = value
        self._shared = +self._shared  # drop names no piece uses any more
        shared_after = set(self._shared)
        # Shared chains: `cluster-<N>` first, since `external-<N>` jumps to it.
        born = [shared_chain(n, self.node) for n in
                sorted(shared_after - shared_before, key=lambda n: not n.startswith(
                    CLUSTER_PREFIX))]
        dead = [shared_chain(n, self.node) for n in shared_before - shared_after]
        for name, s in new_sets.items():
            if name in old_sets and old_sets[name] != s:
                raise ValueError(f"set {name} changed definition; sets are immutable by name")
        script: Script = [Command(render.set_decl(s)) for n, s in new_sets.items()
                          if n not in old_sets]
        created = [*born, *(c for n, c in new_chains.items() if n not in old_chains)]
        changed = [c for n, c in new_chains.items()
                   if n in old_chains and old_chains[n].rules != c.rules]
        script += [Command(render.chain(c)) for c in created]
        script += [Command(render.chain(c, "flush")) for c in changed]
        script += _chain_commands([*created, *changed])
        gone_items: dict[str, list[tuple[Key, Value]]] = {}
        new_items: dict[str, list[tuple[Key, Value]]] = {}
        for slot, was in gone_slots.items():
            if slot in new_slots and new_slots[slot] == was:
                del new_slots[slot]  # lost and regained unchanged
                continue
            gone_items.setdefault(slot[0], []).append((slot[1], was))
        for (name, k), now in new_slots.items():
            new_items.setdefault(name, []).append((k, now))
        # Elements that go or change first: they may point at chains deleted below.
        script += _element_commands("delete", gone_items)
        script += _element_commands("add", new_items)
        gone = [*dead, *(c for n, c in old_chains.items() if n not in new_chains)]
        # Flush all first: a chain may only be deleted once no rule jumps to it.
        script += [Command(render.chain(c, "flush")) for c in gone]
        script += [Command(render.chain(c, "delete")) for c in gone]
        script += [Command(render.set_decl(s, "delete")) for n, s in old_sets.items()
                   if n not in new_sets]
        return script
