"""The query log: the last N questions, who asked, what we answered, how long it took.

The server appends one raw tuple per query it answers itself (no formatting on the hot
path); the answering process sends its entries in batches, kept as the bytes they came in
(`add_batch`, no decoding on arrival); reading the log decodes and orders them. `podnet`
shows it; `trace` uses it to explain search-path expansion (with ndots:5 one lookup of an
outside name costs several queries, each visible here).
"""

from __future__ import annotations

import json
import marshal
import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass

from podnet.dns.records import RCODE_NAMES, TYPE_NAMES

# (monotonic ns at receipt, (ip, port), qname wire lower case, qtype, rcode, latency ns,
#  transport "udp" | "tcp")
RawEntry = tuple[int, tuple[str, int], bytes, int, int, int, str]


@dataclass(frozen=True, slots=True)
class QueryLogEntry:
    time: float  # unix seconds
    source: str  # "ip:port"
    pod: str  # "namespace/name" when the source is a known pod, else ""
    name: str
    type: str
    rcode: str
    latency_us: float
    transport: str


def _wire_name(wire: bytes) -> str:
    labels = []
    off = 0
    while off < len(wire) and wire[off]:
        n = wire[off]
        labels.append(wire[off + 1:off + 1 + n].decode("latin-1"))
        off += 1 + n
    return ".".join(labels) + "."


class QueryLog:
    """A ring buffer of the last `capacity` queries."""

    def __init__(self, capacity: int = 10_000, *,
                 wall: Callable[[], float] = time.time,
                 mono_ns: Callable[[], int] = time.perf_counter_ns) -> None:
        self.capacity = capacity
        self._ring: deque[RawEntry] = deque(maxlen=capacity)
        self.append = self._ring.append  # the server's hot path calls this directly
        self._batches: deque[tuple[int, bytes]] = deque()  # (entries, marshal of them)
        self._batched = 0
        # Receipt times are monotonic; one offset turns them into wall-clock times.
        self._offset = wall() - mono_ns() / 1e9

    def __len__(self) -> int:
        return min(self.capacity, len(self._ring) + self._batched)

    def clear(self) -> None:
        self._ring.clear()
        self._batches.clear()
        self._batched = 0

    def add_batch(self, count: int, blob: bytes) -> None:
        """`count` entries, `marshal`led by the answering process as (t0, address, query
        message, rcode, latency, transport); the oldest batches go once the rest still
        hold `capacity` entries."""
        self._batches.append((count, blob))
        self._batched += count
        while self._batches and self._batched - self._batches[0][0] >= self.capacity:
            self._batched -= self._batches.popleft()[0]

    def _raw(self) -> list[RawEntry]:
        out = list(self._ring)
        for _, blob in list(self._batches):
            for t0, addr, query, rcode, lat, transport in marshal.loads(blob):
                z = query.find(0, 12)
                out.append((t0, addr, query[12:z + 1].lower(),
                            int.from_bytes(query[z + 1:z + 3], "big"), rcode, lat, transport))
        out.sort(key=lambda e: e[0])
        return out[-self.capacity:]

    def entries(self, pod_for_ip: Callable[[str], tuple[str, str] | None] | None = None
                ) -> list[QueryLogEntry]:
        out = []
        for t, (ip, port, *_), name, qtype, rcode, lat, transport in self._raw():
            pod = pod_for_ip(ip) if pod_for_ip is not None else None
            out.append(QueryLogEntry(
                time=round(self._offset + t / 1e9, 6), source=f"{ip}:{port}",
                pod=f"{pod[0]}/{pod[1]}" if pod else "", name=_wire_name(name),
                type=TYPE_NAMES.get(qtype, str(qtype)), rcode=RCODE_NAMES.get(rcode, str(rcode)),
                latency_us=round(lat / 1000, 1), transport=transport))
        return out

    def export_jsonl(self, pod_for_ip: Callable[[str], tuple[str, str] | None] | None = None
                     ) -> str:
        """One JSON object per line, oldest first."""
        return "".join(json.dumps(asdict(e)) + "\n" for e in self.entries(pod_for_ip))
