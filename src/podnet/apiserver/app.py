"""The API server: aiohttp application, middleware (errors, authn, authz) and wiring.

`ApiServer` owns the store, the storage layer, PKI and the HTTP sites. Everything it
serves is described by the resource `Registry`; handlers live in `handlers.py`,
subresources in `subresources.py`, reviews in `reviews.py`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from podnet.api import errors
from podnet.api.resources import Registry, ResourceType
from podnet.apiserver import bootstrap, crds, discovery, openapi
from podnet.apiserver import request as reqinfo
from podnet.apiserver.authn import Authenticator, UserInfo
from podnet.apiserver.authz import Authorizer
from podnet.apiserver.handlers import USER_KEY, ResourceHandler, json_response
from podnet.apiserver.storage import Storage, WriteOptions
from podnet.store.base import Store
from podnet.util import jsonutil
from podnet.util.clock import Clock, SystemClock, rfc3339

log = logging.getLogger("podnet.apiserver")

VERSION_INFO = {
    "major": "1",
    "minor": "32",
    "gitVersion": "v1.32.0-podnet",
    "gitCommit": "podnet",
    "gitTreeState": "clean",
    "buildDate": "2026-11-27T00:00:00Z",
    "goVersion": "go1.23.0",
    "compiler": "gc",
    "platform": "linux/amd64",
}

# Paths anyone may read without credentials (RBAC's system:public-info-viewer also
# allows them; this list keeps health probes working even before RBAC is bootstrapped).
_PUBLIC = ("/healthz", "/livez", "/readyz", "/version")


@dataclass
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 6443
    extra_hosts: tuple[str, ...] = ()  # more addresses to listen on (the node link)
    service_cidr: str = "10.96.0.0/12"
    node_port_range: tuple[int, int] = (30000, 32767)
    authorization: bool = True  # RBAC on; off only for in-process unit tests
    bootstrap: bool = True


@dataclass
class RequestContext:
    user: UserInfo
    info: reqinfo.RequestInfo


@dataclass
class ApiServer:
    store: Store
    config: ServerConfig = field(default_factory=ServerConfig)
    clock: Clock = field(default_factory=SystemClock)
    authenticator: Authenticator = field(default_factory=Authenticator)
    ssl_context: ssl.SSLContext | None = None
    # Set when ServiceAccount tokens can be issued (TokenRequest); see subresources.
    token_issuer: Any = None
    registry: Registry = field(default_factory=Registry.builtin)
    ready: bool = False
    # Serves pods/{log,exec,attach,portforward} by relaying to the pod's node agent:
    # async fn(request, info, pod) -> response. Set by whoever knows the agents.
    node_proxy: Any = None

    def __post_init__(self) -> None:
        from podnet.apiserver.services import ServiceAllocations

        self.storage = Storage(
            self.store,
            self.registry,
            self.clock,
            ServiceAllocations.create(self.config.service_cidr, self.config.node_port_range),
        )
        self.authorizer = Authorizer(enabled=self.config.authorization)
        self.handler = ResourceHandler(self.storage, self.clock)
        self.storage.hooks.append(self._on_write)
        self._runner: web.AppRunner | None = None
        self._openapi_cache: dict[str, Any] = {}
        self._background: set[asyncio.Task[None]] = set()
        self._extra: set[str] = set()
        self.started_at = 0.0
        from podnet.apiserver import reviews, subresources

        subresources.install(self)
        reviews.install(self)

    # ---- lifecycle ------------------------------------------------------------------
    async def start(self) -> None:
        """Open the store, load state, bootstrap defaults, then listen."""
        await self.open()
        await self.listen()

    async def open(self) -> None:
        """Everything but the sockets (in-process tests serve `build_app()` themselves)."""
        self.started_at = time.monotonic()
        await self.store.start()
        await self.storage.start()
        await self._load_dynamic_state()
        if self.config.bootstrap:
            await bootstrap.run(self)
        self.ready = True

    async def listen(self) -> None:
        app = self.build_app()
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False,
                                     shutdown_timeout=1.0)
        await self._runner.setup()
        for host in (self.config.host, *self.config.extra_hosts):
            site = web.TCPSite(self._runner, host, self.config.port,
                               ssl_context=self.ssl_context, reuse_address=True)
            await site.start()
        log.info("component=apiserver event=listening host=%s port=%s", self.config.host,
                 self.config.port)

    async def listen_also(self, host: str) -> None:
        """Serve on one more address (the host end of the node link, once it exists)."""
        if self._runner is None or host in self._extra:
            return
        site = web.TCPSite(self._runner, host, self.config.port,
                           ssl_context=self.ssl_context, reuse_address=True)
        await site.start()
        self._extra.add(host)

    async def stop(self) -> None:
        self.ready = False
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        await self.store.close()

    async def _load_dynamic_state(self) -> None:
        crd_rt = self.registry.get("apiextensions.k8s.io", "v1", "customresourcedefinitions")
        assert crd_rt is not None
        listed = await self.store.list(crd_rt.key_prefix())
        for kv in listed.items:
            crd = jsonutil.loads(kv.value)
            self._register_crd(crd)
        await self.authorizer.load(self.storage)

    def _register_crd(self, crd: dict[str, Any]) -> None:
        crds.register(self.registry, crd)
        self.handler.crd_columns.update(crds.printer_columns(crd))
        self._openapi_cache.clear()

    async def _on_write(self, rt: ResourceType, event: str, obj: dict[str, Any]) -> None:
        if rt.group == "rbac.authorization.k8s.io":
            self.authorizer.observe(rt.kind, event, obj)
        elif rt.group == "apiextensions.k8s.io" and rt.kind == "CustomResourceDefinition":
            if event == "DELETED":
                crds.unregister(self.registry, obj)
                self._openapi_cache.clear()
                return
            self._register_crd(obj)
            # Scheduled, not awaited: we are inside the write that triggered them.
            meta = obj["metadata"]
            if meta.get("deletionTimestamp"):
                if crds.CLEANUP_FINALIZER in (meta.get("finalizers") or []):
                    self._spawn(self._cleanup_crd(rt, obj))
                return
            if crds.CLEANUP_FINALIZER not in (meta.get("finalizers") or []):
                self._spawn(self.storage.modify(
                    rt, None, meta["name"], crds.add_cleanup_finalizer,
                    WriteOptions(field_manager="apiextensions-apiserver")))
            status = obj.get("status") or {}
            if not any(c.get("type") == "Established" and c.get("status") == "True"
                       for c in status.get("conditions") or []):
                now = rfc3339(self.clock.now())

                def establish(live: dict[str, Any]) -> dict[str, Any]:
                    live["status"] = crds.established_status(live, now)
                    return live

                self._spawn(self.storage.modify(
                    rt, None, meta["name"], establish, WriteOptions(
                        subresource="status", field_manager="apiextensions-apiserver")))

    async def _cleanup_crd(self, crd_rt: ResourceType, crd: dict[str, Any]) -> None:
        """Delete every custom resource of a CRD being deleted, then let the CRD go
        (the customresourcecleanup finalizer of apiextensions-apiserver)."""
        types = crds.resource_types(crd)
        if types:
            listed = await self.store.list(types[0].key_prefix())
            for kv in listed.items:
                obj = jsonutil.loads(kv.value)
                m = obj.get("metadata") or {}
                rt = types[0]
                with contextlib.suppress(errors.StatusError):
                    if m.get("finalizers"):
                        await self.storage.modify(
                            rt, m.get("namespace"), m["name"],
                            crds.drop_finalizers, WriteOptions(field_manager="podnet"))
                    await self.storage.delete(rt, m.get("namespace"), m["name"])
        await self.storage.modify(crd_rt, None, crd["metadata"]["name"],
                                  crds.remove_cleanup_finalizer,
                                  WriteOptions(field_manager="apiextensions-apiserver"))

    def _spawn(self, aw: Awaitable[Any]) -> None:
        """Run follow-up work after the current write; errors are the Status kind only."""

        async def quiet() -> None:
            with contextlib.suppress(errors.StatusError):
                await aw

        task = asyncio.get_running_loop().create_task(quiet())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # ---- HTTP -----------------------------------------------------------------------
    def build_app(self) -> web.Application:
        app = web.Application(middlewares=[self._middleware], client_max_size=4 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        return app

    @web.middleware
    async def _middleware(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        try:
            return await handler(request)
        except errors.StatusError as err:
            return json_response(err.to_status(), err.code)
        except web.HTTPException:
            raise
        except (ConnectionResetError, asyncio.CancelledError):
            raise
        except Exception as exc:  # every unexpected failure still answers a Status
            log.exception("component=apiserver event=internal-error path=%s", request.path)
            failure = errors.internal(f"{type(exc).__name__}: {exc}")
            return json_response(failure.to_status(), 500)

    async def _user(self, request: web.Request) -> UserInfo:
        peercert = None
        if request.transport is not None:
            peercert = request.transport.get_extra_info("peercert")
        user = await self.authenticator.authenticate_request(
            peercert, request.headers.get("Authorization")
        )
        if user is None:
            raise errors.unauthorized()
        if request.headers.get("Impersonate-User") or request.headers.get("Impersonate-Group"):
            return self._impersonate(user, request)
        return user

    def _impersonate(self, user: UserInfo, request: web.Request) -> UserInfo:
        """`kubectl --as/--as-group`: allowed when RBAC lets `user` impersonate each part."""
        from podnet.api import rbac

        name = request.headers.get("Impersonate-User", "")
        groups = tuple(request.headers.getall("Impersonate-Group", []))
        if not name:
            raise errors.bad_request(
                "requested impersonation of groups without a user; a user is required")
        checks: list[rbac.Attributes] = []
        sa_ns = ""
        if name.startswith("system:serviceaccount:") and name.count(":") == 3:
            _, _, sa_ns, sa_name = name.split(":")
            checks.append(rbac.Attributes(user=user, verb="impersonate", namespace=sa_ns,
                                          resource="serviceaccounts", name=sa_name))
        else:
            checks.append(rbac.Attributes(user=user, verb="impersonate", resource="users",
                                          name=name))
        checks.extend(rbac.Attributes(user=user, verb="impersonate", resource="groups",
                                      name=g) for g in groups)
        for attrs in checks:
            if not self.authorizer.check(attrs).allowed:
                raise errors.forbidden(
                    f'{attrs.resource} "{attrs.name}" is forbidden: User "{user.name}" cannot '
                    f'impersonate resource "{attrs.resource}" in API group "" at the cluster '
                    f"scope", attrs.resource, attrs.name)
        all_groups = list(groups)
        if sa_ns:
            all_groups += ["system:serviceaccounts", f"system:serviceaccounts:{sa_ns}"]
        if name != "system:anonymous" and "system:authenticated" not in all_groups:
            all_groups.append("system:authenticated")
        return UserInfo(name, request.headers.get("Impersonate-Uid", ""), tuple(all_groups))

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        if len(path) > 1 and path.endswith("/"):
            path = path.rstrip("/")
        info = reqinfo.parse(request.method, path, dict(request.query))
        user = await self._user(request)
        request[USER_KEY] = user
        if not (path in _PUBLIC or path.startswith(_PUBLIC)):
            decision = self.authorizer.authorize(user, info)
            if not decision.allowed:
                raise errors.forbidden(decision.message, info.resource, info.name, info.group)
        if info.resource_request:
            return await self.handler.handle(request, info)
        return await self._non_resource(request, path)

    async def _non_resource(self, request: web.Request, path: str) -> web.StreamResponse:
        if request.method not in ("GET", "HEAD"):
            raise errors.method_not_allowed(
                "the server does not allow this method on the requested resource")
        accept = request.headers.get("Accept", "")
        if path == "/version":
            return json_response(VERSION_INFO)
        if path in ("/healthz", "/livez", "/readyz"):
            if path == "/readyz" and not self.ready:
                return web.Response(status=500, text="[-]ready failed\nreadyz check failed")
            if "verbose" in request.query:
                return web.Response(text=f"[+]ping ok\n[+]etcd ok\n{path[1:]} check passed\n")
            return web.Response(text="ok")
        if path == "/api":
            if discovery.wants_aggregated(accept):
                ct = discovery.aggregated_content_type(accept)
                return json_response(discovery.aggregated(self.registry, core=True,
                                                          content_type=ct), content_type=ct)
            host = f"{self.config.host}:{self.config.port}"
            return json_response(discovery.api_versions(host))
        if path == "/apis":
            if discovery.wants_aggregated(accept):
                ct = discovery.aggregated_content_type(accept)
                return json_response(discovery.aggregated(self.registry, core=False,
                                                          content_type=ct), content_type=ct)
            return json_response(discovery.api_group_list(self.registry))
        parts = path.strip("/").split("/")
        if parts[0] == "api" and len(parts) == 2:
            doc = discovery.api_resource_list(self.registry, "", parts[1])
            if doc is not None:
                return json_response(doc)
        if parts[0] == "apis" and len(parts) == 2:
            gdoc = discovery.api_group(self.registry, parts[1])
            if gdoc is not None:
                return json_response(gdoc)
        if parts[0] == "apis" and len(parts) == 3:
            doc = discovery.api_resource_list(self.registry, parts[1], parts[2])
            if doc is not None:
                return json_response(doc)
        if path == "/openapi/v3":
            return json_response(self._openapi("", lambda: openapi.root(self.registry)))
        if path.startswith("/openapi/v3/"):
            gv = path[len("/openapi/v3/"):]
            segs = gv.split("/")
            group, version = ("", segs[1]) if segs[0] == "api" and len(segs) == 2 else (
                (segs[1], segs[2]) if segs[0] == "apis" and len(segs) == 3 else ("", ""))
            if version and self.registry.in_group_version(group, version):
                return json_response(self._openapi(gv, lambda: openapi.group_version_doc(
                    self.registry, group, version)))
        raise errors.StatusError(
            "the server could not find the requested resource", 404, "NotFound")

    def _openapi(self, key: str, build: Callable[[], Any]) -> Any:
        doc = self._openapi_cache.get(key)
        if doc is None:
            doc = build()
            self._openapi_cache[key] = doc
        return doc


def data_path(state_dir: Path) -> Path:
    return state_dir / "data"
