"""Forwarding names outside the cluster zone to upstream resolvers.

Each upstream is tried in order over UDP with a short timeout (and again over TCP when
its answer is truncated and the client asked over TCP); an ICMP "port unreachable" moves on at
once. Every query has one overall deadline, so with no upstream reachable the client gets
a SERVFAIL within `deadline` seconds, never a hang. Each forwarded query uses a fresh
socket (random source port) and a fresh random ID, checked with the question on return.
"""

from __future__ import annotations

import asyncio
import ipaddress
import secrets
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

Upstream = tuple[str, int]

RESOLV_CONF = ("/etc/resolv.conf", "/run/systemd/resolve/resolv.conf")


def default_upstreams(paths: Iterable[str] = RESOLV_CONF,
                      exclude: Iterable[str] = ()) -> list[Upstream]:
    """The host's nameservers, minus loopback ones (a local stub would loop back to us).

    The first file that yields any usable server wins; systemd-resolved's stub
    (127.0.0.53) is loopback, so its real upstreams are read from its own resolv.conf.
    """
    skip = set(exclude)
    for path in paths:
        try:
            text = Path(path).read_text()
        except OSError:
            continue
        found: list[Upstream] = []
        for line in text.splitlines():
            parts = line.split()
            if len(parts) < 2 or parts[0] != "nameserver":
                continue
            host = parts[1].split("%", 1)[0]
            try:
                ip = ipaddress.ip_address(host)
            except ValueError:
                continue
            if ip.is_loopback or ip.is_unspecified or host in skip:
                continue
            found.append((host, 53))
        if found:
            return found
    return []


class _Answer(asyncio.DatagramProtocol):
    def __init__(self, want_id: bytes, question: bytes) -> None:
        self.want_id = want_id
        self.question = question
        self.done: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

    def datagram_received(self, data: bytes, addr: object) -> None:
        # Ignore anything that is not the answer to this exact question.
        if (not self.done.done() and data[:2] == self.want_id and len(data) >= 12
                and data[2] & 0x80 and data[12:12 + len(self.question)].lower()
                == self.question.lower()):
            self.done.set_result(data)

    def error_received(self, exc: Exception) -> None:
        if not self.done.done():
            self.done.set_exception(exc)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_exception(exc or ConnectionError("closed"))


class Forwarder:
    """Sends a client's query to the first upstream that answers; None when none does."""

    def __init__(self, upstreams: Sequence[Upstream], timeout: float = 0.5,
                 deadline: float = 1.8) -> None:
        self.upstreams = list(upstreams)
        self.timeout = timeout
        self.deadline = deadline

    async def query(self, data: bytes, qend: int, tcp: bool = False) -> bytes | None:
        """Forward `data` (its question ends at `qend`); the answer carries the client's ID.

        Always UDP first (upstreams need not serve TCP); with `tcp` (the client asked over
        TCP, so it can take any size) a truncated answer is fetched again over TCP.
        """
        if not self.upstreams:
            return None
        start = time.monotonic()
        question = data[12:qend]
        for host, port in self.upstreams:
            left = self.deadline - (time.monotonic() - start)
            if left <= 0:
                break
            qid = secrets.token_bytes(2)
            msg = qid + data[2:]
            try:
                answer = await self._udp(host, port, msg, qid, question,
                                         min(self.timeout, left))
                if answer[2] & 0x02 and tcp:  # truncated: ask the same upstream over TCP
                    left = self.deadline - (time.monotonic() - start)
                    answer = await asyncio.wait_for(self._tcp(host, port, msg),
                                                    max(left, 0.01))
            except (OSError, TimeoutError, asyncio.IncompleteReadError, ValueError):
                continue
            if answer[:2] != qid:
                continue
            return data[:2] + answer[2:]
        return None

    async def _udp(self, host: str, port: int, msg: bytes, qid: bytes, question: bytes,
                   timeout: float) -> bytes:
        loop = asyncio.get_running_loop()
        transport, proto = await loop.create_datagram_endpoint(
            lambda: _Answer(qid, question), remote_addr=(host, port))
        try:
            transport.sendto(msg)
            return await asyncio.wait_for(asyncio.shield(proto.done), timeout)
        finally:
            transport.close()
            if not proto.done.done():
                proto.done.cancel()
            elif not proto.done.cancelled():
                proto.done.exception()  # retrieved: no "never retrieved" warning

    async def _tcp(self, host: str, port: int, msg: bytes) -> bytes:
        reader, writer = await asyncio.open_connection(host, port)
        try:
            writer.write(len(msg).to_bytes(2, "big") + msg)
            await writer.drain()
            size = int.from_bytes(await reader.readexactly(2), "big")
            return await reader.readexactly(size)
        finally:
            writer.close()
