"""Pod IP allocation from the node's podCIDR, kept in a state file across agent restarts.

`Pool` is the pure core (no I/O); `Ipam` adds one atomic JSON file. Addresses are handed
out next-fit (after the last one given, wrapping), like the CNI host-local plugin, so a
freed IP is not handed straight to the next pod while Services and conntrack may still
remember it; an IP is never given out while its pod holds it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path
from typing import Any

from podnet.util import jsonutil
from podnet.util.files import write_file

STATE_VERSION = 1


class IpamError(Exception):
    """The allocation request cannot be met (bad state file, address out of range, …)."""


class PoolExhausted(IpamError):
    """Every usable address in the pod CIDR is allocated."""


class Pool:
    """Allocations in one IPv4 pod CIDR. Skips the network address, the first host
    (`.1`, reserved for a gateway) and the broadcast address."""

    def __init__(
        self,
        cidr: IPv4Network | str,
        allocations: Mapping[str, IPv4Address] | None = None,
        last: IPv4Address | None = None,
    ) -> None:
        self.cidr = IPv4Network(cidr)
        self._first = int(self.cidr.network_address) + 2
        self._last_usable = int(self.cidr.broadcast_address) - 1
        if self._first > self._last_usable:
            raise IpamError(f"pod CIDR {self.cidr} is too small to hold any pod")
        self._by_uid: dict[str, IPv4Address] = {}
        self._by_ip: dict[IPv4Address, str] = {}
        # uid → the address as text: the whole pool is written on every allocation, and
        # ipaddress works out str() (and hash()) digit by digit each time.
        self._text: dict[str, str] = {}
        for uid, ip in (allocations or {}).items():
            self.claim(uid, ip)
        self.last = last

    @property
    def capacity(self) -> int:
        return self._last_usable - self._first + 1

    def usable(self, ip: IPv4Address) -> bool:
        return self._first <= int(ip) <= self._last_usable

    def allocate(self, uid: str) -> IPv4Address:
        """The IP of pod `uid`: its existing one, or the next free address."""
        if uid in self._by_uid:
            return self._by_uid[uid]
        if len(self._by_ip) >= self.capacity:
            raise PoolExhausted(
                f"no free pod IP in {self.cidr}: all {self.capacity} usable addresses are "
                f"allocated (delete pods, or give the node a larger podCIDR)"
            )
        start = (
            int(self.last) + 1 if self.last is not None and self.usable(self.last) else self._first
        )
        n = self.capacity
        for i in range(n):
            candidate = IPv4Address(self._first + (start - self._first + i) % n)
            if candidate not in self._by_ip:
                self._take(uid, candidate)
                return candidate
        raise AssertionError("unreachable: a free address was counted but not found")

    def claim(self, uid: str, ip: IPv4Address | str) -> IPv4Address:
        """Record that `uid` already has `ip` (adopting a pod that exists in the kernel)."""
        addr = IPv4Address(ip)
        if not self.usable(addr):
            raise IpamError(f"{addr} is not a usable pod IP in {self.cidr}")
        owner = self._by_ip.get(addr)
        if owner is not None and owner != uid:
            raise IpamError(f"{addr} is already allocated to pod {owner}")
        held = self._by_uid.get(uid)
        if held is not None and held != addr:
            raise IpamError(f"pod {uid} already has {held}, not {addr}")
        self._by_uid[uid] = addr
        self._by_ip[addr] = uid
        self._text[uid] = str(addr)
        return addr

    def _take(self, uid: str, ip: IPv4Address) -> None:
        self._by_uid[uid] = ip
        self._by_ip[ip] = uid
        self._text[uid] = str(ip)
        self.last = ip

    def release(self, uid: str) -> IPv4Address | None:
        """Free the IP of `uid`; None if it had none (releasing twice is harmless)."""
        ip = self._by_uid.pop(uid, None)
        if ip is not None:
            del self._by_ip[ip]
            del self._text[uid]
        return ip

    def get(self, uid: str) -> IPv4Address | None:
        return self._by_uid.get(uid)

    def in_use(self) -> dict[str, IPv4Address]:
        return dict(self._by_uid)

    def to_json(self) -> dict[str, Any]:
        return {
            "version": STATE_VERSION,
            "cidr": str(self.cidr),
            "last": str(self.last) if self.last is not None else None,
            "allocations": {uid: self._text[uid] for uid in sorted(self._text)},
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Pool:
        if data.get("version") != STATE_VERSION:
            raise IpamError(f"unsupported IPAM state version {data.get('version')!r}")
        last = data.get("last")
        allocs = {str(k): IPv4Address(v) for k, v in dict(data.get("allocations", {})).items()}
        return cls(IPv4Network(data["cidr"]), allocs, IPv4Address(last) if last else None)


class Ipam:
    """A Pool persisted to `state_file` after every change (write a temporary file, then
    rename over the old one, so a crash leaves the old or the new state, never half).

    No fsync: the file must survive the agent being killed (the page cache does that);
    after a power loss every pod network namespace is gone anyway. Blocking but tiny:
    callers on the event loop may call it directly or through their executor."""

    def __init__(self, pod_cidr: str | IPv4Network, state_file: Path | str | None) -> None:
        self.state_file = Path(state_file) if state_file is not None else None
        if self.state_file is not None:
            # Made once here, not before every save: saves are on a pod's start path.
            self.state_file.parent.mkdir(parents=True, exist_ok=True)
        cidr = IPv4Network(pod_cidr)
        if self.state_file is not None and self.state_file.exists():
            try:
                pool = Pool.from_json(json.loads(self.state_file.read_text()))
            except (ValueError, KeyError, TypeError) as e:
                raise IpamError(f"cannot read IPAM state {self.state_file}: {e}") from e
            if pool.cidr != cidr:
                raise IpamError(
                    f"IPAM state {self.state_file} is for {pool.cidr}, not {cidr}: the "
                    f"node's podCIDR changed; delete the file once no pod uses it"
                )
            self.pool = pool
        else:
            self.pool = Pool(cidr)

    @property
    def pod_cidr(self) -> IPv4Network:
        return self.pool.cidr

    def allocate(self, pod_uid: str) -> IPv4Address:
        """The pod's IP (the same one on every call until released)."""
        before = self.pool.get(pod_uid)
        ip = self.pool.allocate(pod_uid)
        if before is None:
            self._save()
        return ip

    def claim(self, pod_uid: str, ip: IPv4Address | str) -> IPv4Address:
        """Adopt an address a pod already has in the kernel."""
        before = self.pool.get(pod_uid)
        addr = self.pool.claim(pod_uid, ip)
        if before is None:
            self._save()
        return addr

    def release(self, pod_uid: str) -> IPv4Address | None:
        ip = self.pool.release(pod_uid)
        if ip is not None:
            self._save()
        return ip

    def retain(self, pod_uids: Iterable[str]) -> dict[str, IPv4Address]:
        """Release every allocation whose pod is not in `pod_uids` (garbage collection
        after a restart); returns what was released."""
        keep = set(pod_uids)
        freed = {uid: ip for uid, ip in self.pool.in_use().items() if uid not in keep}
        for uid in freed:
            self.pool.release(uid)
        if freed:
            self._save()
        return freed

    def ip_of(self, pod_uid: str) -> IPv4Address | None:
        return self.pool.get(pod_uid)

    def in_use(self) -> dict[str, IPv4Address]:
        """pod uid → IP for every allocation."""
        return self.pool.in_use()

    def _save(self) -> None:
        if self.state_file is None:
            return
        # This whole record is written on every allocation and release.
        write_file(self.state_file, jsonutil.dumps(self.pool.to_json()) + b"\n", atomic=True)
