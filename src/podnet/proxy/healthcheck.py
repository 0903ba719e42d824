"""healthCheckNodePort: how an external load balancer learns which nodes have endpoints.

For every Service with externalTrafficPolicy Local the node answers HTTP on
<node IP>:<healthCheckNodePort>: 200 when this node has a ready endpoint for it, 503
when not, with kube-proxy's JSON body. Listening sockets are made inside the node's
network namespace (the node IP lives there) and served by this process's event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import socket
from collections.abc import Mapping
from dataclasses import dataclass

from podnet.kernel.netns import in_netns


@dataclass(frozen=True, slots=True)
class Target:
    namespace: str
    name: str
    local_endpoints: int


def response(target: Target) -> bytes:
    """The full HTTP response kube-proxy's health server gives (pure)."""
    body = json.dumps({"service": {"namespace": target.namespace, "name": target.name},
                       "localEndpoints": target.local_endpoints,
                       "serviceProxyHealthy": True}).encode()
    status = "200 OK" if target.local_endpoints > 0 else "503 Service Unavailable"
    return (f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\n"
            f"X-Content-Type-Options: nosniff\r\nContent-Length: {len(body)}\r\n"
            "Connection: close\r\n\r\n").encode() + body


class HealthServers:
    def __init__(self, netns: str, node_ip: str) -> None:
        self.netns = netns
        self.node_ip = node_ip
        self.targets: dict[int, Target] = {}
        self.servers: dict[int, asyncio.Server] = {}

    def _listen(self, port: int) -> socket.socket:
        def make() -> socket.socket:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((self.node_ip, port))
            s.listen(64)
            s.setblocking(False)
            return s

        return in_netns(self.netns, make)

    async def update(self, wanted: Mapping[int, Target]) -> None:
        """Serve exactly these ports (port → what it reports)."""
        self.targets = dict(wanted)
        for port in [p for p in self.servers if p not in wanted]:
            server = self.servers.pop(port)
            server.close()
            with contextlib.suppress(Exception):
                await server.wait_closed()
        for port in wanted:
            if port in self.servers:
                continue
            sock = await asyncio.to_thread(self._listen, port)
            self.servers[port] = await asyncio.start_server(
                functools.partial(self._serve, port), sock=sock)

    async def _serve(self, port: int, reader: asyncio.StreamReader,
                     writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            target = self.targets.get(port)
            if target is not None:
                writer.write(response(target))
                await writer.drain()
        writer.close()

    async def close(self) -> None:
        await self.update({})
