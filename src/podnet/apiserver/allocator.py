"""ClusterIP and NodePort allocation, with the apiserver's own error wording.

The allocation tables live in memory and are rebuilt from the stored Services at
start, so the store stays the only truth (as the real apiserver's repair loop does).
"""

from __future__ import annotations

import ipaddress
import random
from collections.abc import Iterable
from dataclasses import dataclass, field


class AllocationError(Exception):
    """`detail` completes `Invalid value: X: <detail>`."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


@dataclass
class IPAllocator:
    """Allocates addresses from a CIDR; the network and broadcast addresses are never used.

    `reserved` addresses (e.g. 10.96.0.10 for kube-dns) are skipped by random
    allocation but may be requested explicitly, as Kubernetes' lower band is.
    """

    cidr: ipaddress.IPv4Network
    reserved: frozenset[ipaddress.IPv4Address] = frozenset()
    used: set[ipaddress.IPv4Address] = field(default_factory=set)
    rng: random.Random = field(default_factory=random.Random)

    @classmethod
    def from_cidr(cls, cidr: str, reserved: Iterable[str] = ()) -> IPAllocator:
        return cls(
            ipaddress.IPv4Network(cidr),
            frozenset(ipaddress.IPv4Address(r) for r in reserved),
        )

    def contains(self, ip: str) -> bool:
        try:
            return ipaddress.IPv4Address(ip) in self.cidr
        except ValueError:
            return False

    def allocate(self, ip: str | None = None) -> str:
        if ip:
            addr = ipaddress.IPv4Address(ip)
            if addr not in self.cidr or addr in (
                self.cidr.network_address,
                self.cidr.broadcast_address,
            ):
                raise AllocationError(
                    f"failed to allocate IP {ip}: the provided IP ({ip}) is not in the valid"
                    f" range. The range of valid IPs is {self.cidr}"
                )
            if addr in self.used:
                raise AllocationError(
                    f"failed to allocate IP {ip}: provided IP is already allocated"
                )
            self.used.add(addr)
            return ip
        size = self.cidr.num_addresses
        base = int(self.cidr.network_address)
        start = self.rng.randrange(1, size - 1)
        for off in range(size - 2):
            candidate = ipaddress.IPv4Address(base + 1 + (start - 1 + off) % (size - 2))
            if candidate not in self.used and candidate not in self.reserved:
                self.used.add(candidate)
                return str(candidate)
        raise AllocationError(
            f"failed to allocate a serviceIP: range is full ({self.cidr})"
        )

    def mark(self, ip: str) -> None:
        """Record an address found in the store at start (no checks)."""
        if self.contains(ip):
            self.used.add(ipaddress.IPv4Address(ip))

    def release(self, ip: str) -> None:
        if self.contains(ip):
            self.used.discard(ipaddress.IPv4Address(ip))


@dataclass
class PortAllocator:
    """NodePorts from a range (default 30000-32767)."""

    low: int = 30000
    high: int = 32767
    used: set[int] = field(default_factory=set)
    rng: random.Random = field(default_factory=random.Random)

    def allocate(self, port: int | None = None) -> int:
        if port:
            if not self.low <= port <= self.high:
                raise AllocationError(
                    "provided port is not in the valid range. The range of valid ports is "
                    f"{self.low}-{self.high}"
                )
            if port in self.used:
                raise AllocationError("provided port is already allocated")
            self.used.add(port)
            return port
        span = self.high - self.low + 1
        start = self.rng.randrange(span)
        for off in range(span):
            candidate = self.low + (start + off) % span
            if candidate not in self.used:
                self.used.add(candidate)
                return candidate
        raise AllocationError("range is full")

    def mark(self, port: int) -> None:
        if self.low <= port <= self.high:
            self.used.add(port)

    def release(self, port: int) -> None:
        self.used.discard(port)
