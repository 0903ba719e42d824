"""The Zone as the answering process sees it: owner names → pre-encoded answers (pure).

The feeder (`DnsServer`, beside the informers) keeps the record table (`records.Zone`);
the answering process (`worker.py`) keeps only what this module encodes from it, one
table value per owner name (the value formats are described in `worker.py`). After a
change, only the owner names the Zone reports dirty are encoded again and sent.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from podnet.dns.records import AAAA, CNAME, NS, PTR, SOA, SRV, TXT, A, Answer, Zone
from podnet.dns.wire import entry, name_to_wire, records_wire
from podnet.dns.worker import ASK_FEEDER, ENT

# Every type a cluster zone can hold: a CNAME owner gets its chained answer for each of
# them, and under key 0 the one for any other type (the CNAME, then NODATA).
_ZONE_TYPES = (A, AAAA, CNAME, NS, PTR, SOA, SRV, TXT)
_OTHER = 65280  # a private-use type (RFC 6895) that no record here has

Value = bytes | dict[int, bytes]


def value(zone: Zone, name: str) -> Value | None:
    """What the answering process stores for `name` (None: nothing, the name is gone)."""
    types = zone.types_at(name)
    if not types:
        return ENT if zone.is_ent(name) else None
    try:
        wire = name_to_wire(name)
    except ValueError:
        return ASK_FEEDER  # not encodable as asked: the feeder's slow path decides

    def enc(qtype: int, asked: int | None = None) -> bytes:
        answer = zone.lookup(name, qtype if asked is None else asked)
        assert isinstance(answer, Answer)
        return entry(wire, qtype, answer)

    if CNAME in types:
        first = zone.lookup(name, A)
        if first is None or first.chase is not None:
            return ASK_FEEDER  # the target is outside the cluster: resolved upstream
        chained = {t: enc(t) for t in _ZONE_TYPES}
        chained[0] = enc(0, _OTHER)
        return chained
    if len(types) == 1:
        return enc(types[0])
    return {t: enc(t) for t in types}


def changes(zone: Zone, names: Iterable[str]) -> list[tuple[bytes, Value | None]]:
    """(name wire, value or None to delete) for each name; unencodable names skipped."""
    out: list[tuple[bytes, Value | None]] = []
    for name in names:
        try:
            key = name_to_wire(name).lower()
        except ValueError:
            continue
        out.append((key, value(zone, name)))
    return out


def all_names(zone: Zone) -> list[str]:
    """Every name the answering process needs an entry for: owners and empty non-terminals."""
    return list(dict.fromkeys([*zone.names(), *zone.ent_names()]))


def config(zone: Zone) -> dict[str, Any]:
    """Zone-wide constants: the origin, the SOA authority sections, TTL and pod mode."""
    return {"origin": name_to_wire(zone.origin).lower(),
            "soa": records_wire((zone.soa,)),
            "soa4": records_wire((zone.reverse_soa("in-addr.arpa."),)),
            "soa6": records_wire((zone.reverse_soa("ip6.arpa."),)),
            "ttl": zone.ttl, "pods": zone.pods_mode}


__all__ = ["Value", "all_names", "changes", "config", "value"]
