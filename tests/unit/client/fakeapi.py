"""A tiny fake Kubernetes API for client tests: one resource (pods), list with paging,
scripted watch streams, 410 on a compacted resourceVersion, and Status error bodies."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer

PODS = "/api/v1/namespaces/default/pods"


def pod(name: str, rv: int, **labels: str) -> dict[str, Any]:
    return {
        "metadata": {
            "name": name,
            "namespace": "default",
            "resourceVersion": str(rv),
            "uid": f"uid-{name}",
            "labels": labels,
        }
    }


def status(code: int, reason: str, message: str, **details: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }
    if details:
        body["details"] = details
    return body


@dataclass
class FakeApi:
    pods: dict[str, dict[str, Any]] = field(default_factory=dict)
    rv: int = 10
    compacted_below: int = 0  # watches from an older resourceVersion get 410
    expired_as_event: bool = True  # 410 inside the stream (as Kubernetes does) or as HTTP
    watch_failures: int = 0  # answer this many watches with 500 first
    one_write: bool = False  # send a watch's events as one chunk
    streams: asyncio.Queue[list[dict[str, Any]] | None] = field(default_factory=asyncio.Queue)
    requests: list[tuple[str, str, dict[str, str], Any]] = field(default_factory=list)
    server: TestServer | None = None
    auth: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        assert self.server is not None
        return str(self.server.make_url("")).rstrip("/")

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self.handle)
        self.server = TestServer(app)
        await self.server.start_server()

    async def close(self) -> None:
        if self.server is not None:
            await self.server.close()

    def script_watch(self, *events: dict[str, Any]) -> None:
        """The next watch request streams these events, then the server ends it."""
        self.streams.put_nowait(list(events))

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.json() if request.can_read_body else None
        params = dict(request.query)
        self.requests.append((request.method, request.path, params, body))
        self.auth.append(request.headers.get("Authorization", ""))
        if request.path == "/boom":
            return web.Response(status=502, text="bad gateway")
        if request.path == "/api/v1/namespaces/default/pods/missing":
            return web.json_response(
                status(404, "NotFound", 'pods "missing" not found', name="missing", kind="pods"),
                status=404,
            )
        if request.path == "/api/v1/namespaces/default/pods/bad":
            return web.json_response(
                status(
                    422, "Invalid", 'Pod "bad" is invalid: spec: Required value',
                    name="bad", kind="Pod",
                    causes=[{"reason": "FieldValueRequired", "field": "spec",
                             "message": "Required value"}],
                ),
                status=422,
            )
        if request.path != PODS and not request.path.startswith(PODS + "/"):
            return web.json_response(status(404, "NotFound", "the server could not find it"),
                                     status=404)
        if request.method == "GET" and request.path == PODS:
            if params.get("watch") == "true":
                return await self.watch(request, params)
            return self.list(params)
        name = request.path.rsplit("/", 1)[-1]
        if request.method == "GET":
            if name not in self.pods:
                return web.json_response(status(404, "NotFound", f'pods "{name}" not found'),
                                         status=404)
            return web.json_response(self.pods[name])
        if request.method == "POST":
            assert body is not None
            self.rv += 1
            body["metadata"]["resourceVersion"] = str(self.rv)
            self.pods[body["metadata"]["name"]] = body
            return web.json_response(body, status=201)
        if request.method in ("PUT", "PATCH"):
            if request.method == "PUT" and body["metadata"].get("resourceVersion") != (
                self.pods.get(name, {}).get("metadata", {}).get("resourceVersion")
            ):
                return web.json_response(
                    status(409, "Conflict", f'Operation cannot be fulfilled on pods "{name}": '
                           "the object has been modified", name=name, kind="pods"),
                    status=409,
                )
            self.rv += 1
            obj = body if request.method == "PUT" else {**self.pods[name], **body}
            obj["metadata"]["resourceVersion"] = str(self.rv)
            self.pods[name] = obj
            return web.json_response(obj)
        if request.method == "DELETE":
            obj = self.pods.pop(name)
            return web.json_response(obj)
        return web.Response(status=405)

    def list(self, params: dict[str, str]) -> web.Response:
        names = sorted(self.pods)
        start = int(params.get("continue") or 0)
        limit = int(params.get("limit") or len(names) or 1)
        page = names[start : start + limit]
        nxt = start + limit
        meta: dict[str, Any] = {"resourceVersion": str(self.rv)}
        if nxt < len(names):
            meta["continue"] = str(nxt)
        # Items on the wire have no kind/apiVersion, as in Kubernetes.
        return web.json_response(
            {"kind": "PodList", "apiVersion": "v1", "metadata": meta,
             "items": [self.pods[n] for n in page]}
        )

    async def watch(self, request: web.Request, params: dict[str, str]) -> web.StreamResponse:
        if self.watch_failures > 0:
            self.watch_failures -= 1
            return web.json_response(status(500, "InternalError", "etcd is sad"), status=500)
        rv = int(params.get("resourceVersion") or 0)
        if rv < self.compacted_below:
            expired = status(410, "Expired", f"too old resource version: {rv} ({self.rv})")
            if not self.expired_as_event:
                return web.json_response(expired, status=410)
            events = [{"type": "ERROR", "object": expired}]
        else:
            script = await self.streams.get()
            if script is None:
                return web.Response(status=200)
            events = script
        resp = web.StreamResponse()
        resp.content_type = "application/json"
        await resp.prepare(request)
        if self.one_write:  # every event in one chunk, as a server sends a burst
            await resp.write(b"".join(json.dumps(e).encode() + b"\n" for e in events))
        for event in [] if self.one_write else events:
            # Write half-lines too, to prove the client reassembles lines across chunks.
            data = json.dumps(event).encode() + b"\n"
            await resp.write(data[:7])
            await resp.write(data[7:])
        await resp.write_eof()
        return resp
