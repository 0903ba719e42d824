"""The query log: the last N questions, who asked, what we answered, how long it took.

The server appends one raw tuple per query (no formatting on the hot path); reading the
log decodes them. `podnet` shows it; `trace` uses it to explain search-path expansion
(with ndots:5 one lookup of an outside name costs several queries, each visible here).
"""

from __future__ import annotations

import json
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
        self._ring: deque[RawEntry] = deque(maxlen=capacity)
        self.append = self._ring.append  # the server's hot path calls this directly
        self.extend = self._ring.extend  # batches the answering process sends
        # Receipt times are monotonic; one offset turns them into wall-clock times.
        self._offset = wall() - mono_ns() / 1e9

    def __len__(self) -> int:
        return len(self._ring)

    def clear(self) -> None:
        self._ring.clear()

    def entries(self, pod_for_ip: Callable[[str], tuple[str, str] | None] | None = None
                ) -> list[QueryLogEntry]:
        out = []
        for t, (ip, port), name, qtype, rcode, lat, transport in list(self._ring):
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
