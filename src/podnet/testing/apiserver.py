"""An in-process API server for tests: memory store, plain HTTP on a random loopback
port, and two static tokens (an admin in system:masters and an ordinary user)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from aiohttp import ClientSession
from aiohttp.test_utils import TestServer

from podnet.apiserver.app import ApiServer, ServerConfig
from podnet.apiserver.authn import Authenticator, UserInfo
from podnet.store.memory import MemoryStore
from podnet.util.clock import Clock, SystemClock

ADMIN_TOKEN = "admin-token"
USER_TOKEN = "user-token"
ADMIN = UserInfo("admin", groups=("system:masters", "system:authenticated"))
USER = UserInfo("jane", groups=("system:authenticated",))


class InProcessApi:
    """`await api.get("/api/v1/namespaces")` etc. with the admin token by default."""

    def __init__(self, server: ApiServer, base: str, session: ClientSession) -> None:
        self.server = server
        self.base = base
        self.session = session

    async def call(self, method: str, path: str, body: Any = None, *,
                   token: str | None = ADMIN_TOKEN, content_type: str = "application/json",
                   headers: dict[str, str] | None = None,
                   raw: bytes | None = None) -> tuple[int, Any, dict[str, str]]:
        hdrs = {"Content-Type": content_type, **(headers or {})}
        if token:
            hdrs["Authorization"] = f"Bearer {token}"
        import json as _json

        data = raw if raw is not None else (_json.dumps(body).encode() if body is not None
                                            else None)
        async with self.session.request(method, self.base + path, data=data,
                                        headers=hdrs) as resp:
            text = await resp.read()
            try:
                decoded: Any = _json.loads(text) if text else None
            except ValueError:
                decoded = text.decode(errors="replace")
            return resp.status, decoded, dict(resp.headers)

    async def get(self, path: str, **kw: Any) -> tuple[int, Any, dict[str, str]]:
        return await self.call("GET", path, **kw)

    async def post(self, path: str, body: Any, **kw: Any) -> tuple[int, Any, dict[str, str]]:
        return await self.call("POST", path, body, **kw)

    async def put(self, path: str, body: Any, **kw: Any) -> tuple[int, Any, dict[str, str]]:
        return await self.call("PUT", path, body, **kw)

    async def patch(self, path: str, body: Any, patch_type: str = "merge",
                    **kw: Any) -> tuple[int, Any, dict[str, str]]:
        ct = {"merge": "application/merge-patch+json",
              "strategic": "application/strategic-merge-patch+json",
              "json": "application/json-patch+json",
              "apply": "application/apply-patch+yaml"}[patch_type]
        return await self.call("PATCH", path, body, content_type=ct, **kw)

    async def delete(self, path: str, body: Any = None,
                     **kw: Any) -> tuple[int, Any, dict[str, str]]:
        return await self.call("DELETE", path, body, **kw)


@asynccontextmanager
async def running_api(clock: Clock | None = None, store: Any = None,
                      authorization: bool = True,
                      token_issuer: Any = None) -> AsyncIterator[InProcessApi]:
    """`token_issuer` (an authn.TokenIssuer) enables TokenRequest and ServiceAccount JWTs."""
    server = ApiServer(
        store or MemoryStore(),
        ServerConfig(authorization=authorization),
        clock=clock or SystemClock(),
        authenticator=Authenticator(static_tokens={ADMIN_TOKEN: ADMIN, USER_TOKEN: USER},
                                    token_issuer=token_issuer),
        token_issuer=token_issuer,
    )
    await server.open()
    test_server = TestServer(server.build_app(), host="127.0.0.1")
    await test_server.start_server()
    session = ClientSession()
    try:
        yield InProcessApi(server, str(test_server.make_url("")).rstrip("/"), session)
    finally:
        await session.close()
        await test_server.close()
        await server.stop()
