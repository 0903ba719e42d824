"""The agent's streaming routes, shaped like the kubelet's (:10250):

    GET /containerLogs/{namespace}/{pod}/{container}?follow=&tailLines=&...
    GET /exec/{namespace}/{pod}/{container}?command=..&command=..&stdin=&stdout=&tty=
    GET /attach/{namespace}/{pod}/{container}?stdin=&stdout=&tty=
    GET /portForward/{namespace}/{pod}

exec, attach and portForward are websocket upgrades. The resolvers, supplied by the
agent, find the pod and container; a `StreamError` they raise becomes the HTTP answer
(a Status JSON), before any upgrade, as the kubelet answers "container not found".
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable

from aiohttp import hdrs, web

from podnet.agent.streams import (
    Connect,
    ExecProcess,
    ExecRequest,
    StreamError,
    portforward,
    remotecommand,
)
from podnet.agent.streams import logs as logs_mod

log = logging.getLogger("podnet.agent.streams")

ResolveExec = Callable[[ExecRequest], Awaitable[ExecProcess]]
ResolveConnect = Callable[[str, str], Awaitable[Connect]]  # (namespace, pod) -> connect

MAX_WS_MESSAGE = 0  # no limit: stdin and port-forward data arrive in large messages


# A refused upgrade repeats its Status here: websocket clients (the API server's relay)
# often cannot read the body of a failed handshake.
STATUS_HEADER = "X-Podnet-Stream-Status"


def error_response(err: StreamError) -> web.Response:
    doc = json.dumps(err.to_status())
    return web.Response(status=err.code, body=doc.encode(), content_type="application/json",
                        headers={STATUS_HEADER: doc})


def _flag(request: web.Request, name: str, default: bool = False) -> bool:
    raw = request.query.get(name)
    if raw is None:
        return default
    return raw.lower() in ("1", "true")


def _offered(request: web.Request) -> list[str]:
    raw = ",".join(request.headers.getall(hdrs.SEC_WEBSOCKET_PROTOCOL, []))
    return [p.strip() for p in raw.split(",") if p.strip()]


def _require_upgrade(request: web.Request, protocols: tuple[str, ...]) -> None:
    if request.headers.get(hdrs.UPGRADE, "").lower() != "websocket":
        raise StreamError("Upgrade request required", 400, "BadRequest")
    if not any(p in protocols for p in _offered(request)):
        raise StreamError(f"none of the offered subprotocols {_offered(request)} is "
                          f"supported; use one of {list(protocols)}", 400, "BadRequest")


def add_routes(app: web.Application, resolve_exec: ResolveExec,
               resolve_connect: ResolveConnect,
               resolve_log_path: logs_mod.ResolveLog) -> None:
    """Mount the streaming endpoints on the agent's app."""

    async def container_logs(request: web.Request) -> web.StreamResponse:
        m = request.match_info
        try:
            target = await resolve_log_path(m["namespace"], m["pod"], m["container"])
            return await logs_mod.stream_logs(request, target, m["container"], m["pod"])
        except StreamError as err:
            return error_response(err)

    async def exec_or_attach(request: web.Request, attach: bool) -> web.StreamResponse:
        m = request.match_info
        command = () if attach else tuple(request.query.getall("command", []))
        req = ExecRequest(
            namespace=m["namespace"], pod=m["pod"], container=m["container"],
            command=command, stdin=_flag(request, "input") or _flag(request, "stdin"),
            stdout=_flag(request, "output") or _flag(request, "stdout", True),
            stderr=_flag(request, "error") or _flag(request, "stderr", True),
            tty=_flag(request, "tty"))
        try:
            _require_upgrade(request, remotecommand.PROTOCOLS)
            if not attach and not command:
                raise StreamError("you must specify at least 1 command", 400, "BadRequest")
            process = await resolve_exec(req)
        except StreamError as err:
            return error_response(err)
        ws = web.WebSocketResponse(protocols=remotecommand.PROTOCOLS, compress=False,
                                   max_msg_size=MAX_WS_MESSAGE, autoping=True)
        try:
            await ws.prepare(request)
        except BaseException:
            process.kill()
            raise
        code = await remotecommand.serve(ws, process, command, attach=attach)
        log.info("component=agent event=%s pod=%s/%s container=%s exit=%s",
                 "attach" if attach else "exec", req.namespace, req.pod, req.container, code)
        return ws

    async def exec_handler(request: web.Request) -> web.StreamResponse:
        return await exec_or_attach(request, attach=False)

    async def attach_handler(request: web.Request) -> web.StreamResponse:
        return await exec_or_attach(request, attach=True)

    async def port_forward(request: web.Request) -> web.StreamResponse:
        m = request.match_info
        try:
            _require_upgrade(request, (portforward.PROTOCOL,))
            connect = await resolve_connect(m["namespace"], m["pod"])
        except StreamError as err:
            return error_response(err)
        ws = web.WebSocketResponse(protocols=(portforward.PROTOCOL,), compress=False,
                                   max_msg_size=MAX_WS_MESSAGE, autoping=True)
        await ws.prepare(request)
        await portforward.serve(ws, connect, pod=f"{m['namespace']}/{m['pod']}")
        return ws

    app.router.add_get("/containerLogs/{namespace}/{pod}/{container}", container_logs)
    app.router.add_get("/exec/{namespace}/{pod}/{container}", exec_handler)
    app.router.add_post("/exec/{namespace}/{pod}/{container}", exec_handler)
    app.router.add_get("/attach/{namespace}/{pod}/{container}", attach_handler)
    app.router.add_post("/attach/{namespace}/{pod}/{container}", attach_handler)
    app.router.add_get("/portForward/{namespace}/{pod}", port_forward)
    app.router.add_post("/portForward/{namespace}/{pod}", port_forward)
