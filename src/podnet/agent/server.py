"""The agent's HTTPS endpoint (the kubelet's :10250 role): logs, exec, attach, port-forward.

Only the API server talks to it: it presents a client certificate signed by the
cluster CA, which this server requires.
"""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path
from typing import TYPE_CHECKING

from aiohttp import web

from podnet.agent import images
from podnet.agent.agent import host_program
from podnet.agent.runtime import ExecError
from podnet.agent.streams import Connect, ExecProcess, ExecRequest, StreamError
from podnet.agent.streams.logs import LogFile
from podnet.agent.streams.server import add_routes
from podnet.kernel import netns as kns

if TYPE_CHECKING:
    from podnet.agent.agent import Agent, PodRecord


def server_ssl_context(cert: Path, key: Path, ca_pem: bytes) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(str(cert), str(key))
    ctx.load_verify_locations(cadata=ca_pem.decode())
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx


class AgentServer:
    def __init__(self, agent: Agent, ssl_context: ssl.SSLContext | None, host: str,
                 port: int) -> None:
        self.agent = agent
        self.ssl_context = ssl_context
        self.host = host
        self.port = port
        self._runner: web.AppRunner | None = None

    def _running(self, uid: str, container: str) -> bool:
        state = self.agent.runtime.state(uid, container)
        return state is not None and state.running

    def _record(self, namespace: str, pod: str) -> PodRecord:
        for rec in self.agent.records.values():
            if rec.namespace == namespace and rec.name == pod and rec.netns:
                return rec
        raise StreamError(f'pod "{pod}" not found on this node', 404, "NotFound")

    async def _exec(self, req: ExecRequest) -> ExecProcess:
        rec = self._record(req.namespace, req.pod)
        if not self._running(rec.uid, req.container):
            raise StreamError(
                f'container "{req.container}" in pod "{req.pod}" is not running', 400,
                "BadRequest")
        if not req.command:
            try:
                return self.agent.runtime.attach(rec.uid, req.container, stdin=req.stdin)
            except ExecError as err:
                raise StreamError(str(err), 400, "BadRequest") from None
        argv = list(images.exec_argv(self.agent.image_of(rec.uid, req.container),
                                     req.command, host_program))
        proc: ExecProcess = await self.agent.runtime.exec(rec.uid, req.container, argv,
                                                          tty=req.tty, stdin=req.stdin)
        return proc

    async def _connect(self, namespace: str, pod: str) -> Connect:
        rec = self._record(namespace, pod)

        async def connect(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
            sock = await kns.aconnect_in_netns(rec.netns, "127.0.0.1", port, 5.0)
            return await asyncio.open_connection(sock=sock)

        return connect

    async def _log(self, namespace: str, pod: str, container: str) -> LogFile:
        rec = self._record(namespace, pod)
        path = self.agent.runtime.ensure_log(rec.uid, container)
        if path is None:
            raise StreamError(
                f'container "{container}" in pod "{pod}" is waiting to start: '
                "ContainerCreating", 400, "BadRequest")
        return LogFile(path, lambda: self._running(rec.uid, container))

    async def start(self) -> None:
        app = web.Application()
        add_routes(app, self._exec, self._connect, self._log)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False,
                                     shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, ssl_context=self.ssl_context,
                           reuse_address=True)
        await site.start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
