"""The API server's half of log / exec / attach / port-forward: relay to the node agent.

kube-apiserver does the same with its UpgradeAwareHandler: it finds the pod's node,
opens a connection to the kubelet and copies bytes. Here:

- `log` is an HTTP relay of `GET {agent}/containerLogs/{ns}/{pod}/{container}?...`,
  streamed chunk by chunk (so `kubectl logs -f` follows);
- `exec`, `attach`, `portforward` accept kubectl's websocket with the subprotocol the
  agent chose from the ones kubectl offered (`v5.channel.k8s.io`, `v4.channel.k8s.io`,
  `SPDY/3.1+portforward.k8s.io`) and copy messages both ways unchanged until one side
  closes. The agent is dialled first, so an unreachable agent or its refusal
  (container not found, ...) reaches kubectl as an HTTP Status, not as a dead stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import ssl
from typing import Any
from urllib.parse import quote

import aiohttp
from aiohttp import WSMsgType, hdrs, web

from podnet.api import errors
from podnet.apiserver.request import RequestInfo

log = logging.getLogger("podnet.apiserver")

SUBPROTOCOLS = ("v5.channel.k8s.io", "v4.channel.k8s.io", "SPDY/3.1+portforward.k8s.io")
CONNECT_TIMEOUT = 10.0
# The agent's Status for a refused upgrade, JSON on one line (see `_refusal`).
STATUS_HEADER = "X-Podnet-Stream-Status"
_AGENT_PATH = {"exec": "exec", "attach": "attach", "portforward": "portForward"}
# Query parameters kubectl sends that mean nothing to the agent.
_DROP = ("container", "pretty")


def _container(request: web.Request, info: RequestInfo, pod: dict[str, Any]) -> str:
    """The container asked for, or the pod's only one; the apiserver's wording otherwise."""
    spec = pod.get("spec") or {}
    names = [c.get("name", "") for c in spec.get("containers") or []]
    init = [c.get("name", "") for c in spec.get("initContainers") or []]
    eph = [c.get("name", "") for c in spec.get("ephemeralContainers") or []]
    wanted = request.query.get("container", "")
    if wanted:
        if wanted not in names + init + eph:
            raise errors.bad_request(
                f"container {wanted} is not valid for pod {info.name}")
        return wanted
    if len(names) == 1:
        return str(names[0])
    default = ((pod.get("metadata") or {}).get("annotations") or {}).get(
        "kubectl.kubernetes.io/default-container")
    if default in names:
        return str(default)
    raise errors.bad_request(
        f"a container name must be specified for pod {info.name}, choose one of: "
        f"[{' '.join(names)}]" + (f" or one of the init containers: [{' '.join(init)}]"
                                  if init else ""))


def _agent_query(request: web.Request) -> list[tuple[str, str]]:
    return [(k, v) for k, v in request.query.items() if k not in _DROP]


def _why(exc: BaseException) -> str:
    """Go's wording for a failed dial, which users search for."""
    if isinstance(exc, aiohttp.ClientConnectorError):
        err = exc.os_error
        text = os.strerror(err.errno).lower() if err.errno else str(err)
        return f"dial tcp {exc.host}:{exc.port}: connect: {text}"
    if isinstance(exc, TimeoutError):
        return "i/o timeout"
    return str(exc) or type(exc).__name__


def _dial_error(exc: BaseException) -> errors.StatusError:
    return errors.StatusError(f"error dialing backend: {_why(exc)}", 500, "InternalError")


def _relay_status(status: int, body: bytes, ctype: str) -> web.Response:
    """The agent's refusal, passed on as a Status (wrapped if the agent sent plain text)."""
    try:
        doc = json.loads(body)
        if isinstance(doc, dict) and doc.get("kind") == "Status":
            return web.Response(status=status, body=body, content_type="application/json")
    except ValueError:
        pass
    reason = {400: "BadRequest", 404: "NotFound", 403: "Forbidden"}.get(status, "InternalError")
    message = body.decode(errors="replace").strip() or f"node agent answered {status}"
    err = errors.StatusError(message, status, reason)
    return web.Response(status=status, body=json.dumps(err.to_status()).encode(),
                        content_type="application/json")


async def proxy_pod_stream(request: web.Request, info: RequestInfo, pod: dict[str, Any],
                           agent_url: str, ssl_ctx: ssl.SSLContext | bool | None
                           ) -> web.StreamResponse:
    """Serve pods/{log,exec,attach,portforward} by relaying to the agent at `agent_url`
    (e.g. `https://10.250.0.2:10250`)."""
    sub = info.subresource
    phase = (pod.get("status") or {}).get("phase")
    base = agent_url.rstrip("/")
    ns, name = quote(info.namespace, safe=""), quote(info.name, safe="")
    if sub == "portforward":
        url = f"{base}/portForward/{ns}/{name}"
        return await _relay_websocket(request, url, _agent_query(request), ssl_ctx,
                                      SUBPROTOCOLS[2])
    container = _container(request, info, pod)
    cq = quote(container, safe="")
    if sub == "log":
        return await _relay_log(request, f"{base}/containerLogs/{ns}/{name}/{cq}",
                                _agent_query(request), ssl_ctx)
    if sub in ("exec", "attach"):
        if phase in ("Succeeded", "Failed"):
            raise errors.bad_request(f"cannot {sub} into a container in a completed pod; "
                                     f"current phase is {phase}")
        url = f"{base}/{_AGENT_PATH[sub]}/{ns}/{name}/{cq}"
        return await _relay_websocket(request, url, _agent_query(request), ssl_ctx,
                                      SUBPROTOCOLS[0])
    raise errors.StatusError("the server could not find the requested resource", 404,
                             "NotFound")


def _session() -> aiohttp.ClientSession:
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=CONNECT_TIMEOUT,
                                    connect=CONNECT_TIMEOUT)
    return aiohttp.ClientSession(timeout=timeout, auto_decompress=False)


async def _relay_log(request: web.Request, url: str, query: list[tuple[str, str]],
                     ssl_ctx: ssl.SSLContext | bool | None) -> web.StreamResponse:
    async with _session() as session:
        try:
            upstream = await session.get(url, params=query, ssl=_ssl(ssl_ctx))
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            raise errors.StatusError(f'Get "{url}": {_why(exc)}', 500,
                                     "InternalError") from exc
        async with upstream:
            if upstream.status != 200:
                return _relay_status(upstream.status, await upstream.read(),
                                     upstream.headers.get(hdrs.CONTENT_TYPE, ""))
            resp = web.StreamResponse(status=200, headers={
                hdrs.CONTENT_TYPE: upstream.headers.get(hdrs.CONTENT_TYPE, "text/plain")})
            resp.enable_chunked_encoding()
            await resp.prepare(request)
            try:
                async for chunk in upstream.content.iter_any():
                    await resp.write(chunk)
            except (TimeoutError, aiohttp.ClientError, ConnectionError):
                return resp  # either end went away mid-stream; nothing more to say
            with contextlib.suppress(ConnectionError):
                await resp.write_eof()
            return resp


def _ssl(ctx: ssl.SSLContext | bool | None) -> ssl.SSLContext | bool:
    return True if ctx is None else ctx


def _offered(request: web.Request) -> list[str]:
    raw = ",".join(request.headers.getall(hdrs.SEC_WEBSOCKET_PROTOCOL, []))
    return [p.strip() for p in raw.split(",") if p.strip()]


async def _relay_websocket(request: web.Request, url: str, query: list[tuple[str, str]],
                           ssl_ctx: ssl.SSLContext | bool | None,
                           default_protocol: str) -> web.StreamResponse:
    is_ws = request.headers.get(hdrs.UPGRADE, "").lower() == "websocket"
    # An SPDY upgrade (kubectl's fallback) still dials the agent, so that kubectl prints
    # why the agent cannot serve rather than a protocol complaint.
    offered = [p for p in _offered(request) if p in SUBPROTOCOLS] if is_ws else \
        [default_protocol]
    if not offered:
        raise errors.bad_request(
            f"none of the requested subprotocols {_offered(request)} is supported; "
            f"use one of {list(SUBPROTOCOLS)}")
    session = _session()
    try:
        try:
            upstream = await session.ws_connect(
                url, params=query, protocols=offered, ssl=_ssl(ssl_ctx), autoping=True,
                max_msg_size=0, compress=0)
        except aiohttp.WSServerHandshakeError as exc:
            raise _refusal(exc) from exc
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            raise _dial_error(exc) from exc
        if not is_ws:
            await upstream.close()
            raise errors.bad_request(
                "Upgrade request required: podnet serves exec, attach and port-forward "
                "over websockets (kubectl 1.30+ uses them by default)")
        chosen = upstream.protocol
        if chosen not in offered:
            await upstream.close()
            raise errors.StatusError(f"node agent chose subprotocol {chosen!r}, which was "
                                     "not offered", 502, "InternalError")
        downstream = web.WebSocketResponse(protocols=(chosen,), compress=False,
                                           max_msg_size=0, autoping=True)
        await downstream.prepare(request)
        await _pipe(downstream, upstream)
        return downstream
    finally:
        await session.close()


def _refusal(exc: aiohttp.WSServerHandshakeError) -> errors.StatusError:
    """The agent refused the upgrade. aiohttp drops the body of a failed handshake, so
    the agent repeats its Status in a header (`STATUS_HEADER`); a foreign agent's
    refusal gets a generic message."""
    raw = exc.headers.get(STATUS_HEADER, "") if exc.headers else ""
    try:
        doc = json.loads(raw) if raw else {}
    except ValueError:
        doc = {}
    if isinstance(doc, dict) and doc.get("message"):
        return errors.StatusError(str(doc["message"]), int(doc.get("code") or exc.status),
                                  str(doc.get("reason") or "InternalError"))
    return errors.StatusError(f"node agent refused the upgrade: {exc.status} {exc.message}",
                              exc.status if exc.status >= 400 else 502, "InternalError")


async def _pipe(down: web.WebSocketResponse, up: aiohttp.ClientWebSocketResponse) -> None:
    """Copy messages both ways until either side closes; then close the other."""

    async def client_to_agent() -> None:
        async for msg in down:
            if msg.type == WSMsgType.BINARY:
                await up.send_bytes(msg.data)
            elif msg.type == WSMsgType.TEXT:
                await up.send_str(msg.data)
            else:
                break

    async def agent_to_client() -> None:
        async for msg in up:
            if msg.type == WSMsgType.BINARY:
                await down.send_bytes(msg.data)
            elif msg.type == WSMsgType.TEXT:
                await down.send_str(msg.data)
            else:
                break

    tasks = [asyncio.create_task(client_to_agent()), asyncio.create_task(agent_to_client())]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    code = up.close_code if up.closed and up.close_code else 1000
    with contextlib.suppress(Exception):
        await up.close()
    with contextlib.suppress(Exception):
        await down.close(code=code)
