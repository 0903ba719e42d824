"""Async Kubernetes REST client over aiohttp.

Speaks the standard Kubernetes REST API (the same one kubectl and client-go speak), so it
works against podnet's API server and against a real cluster alike. Resources are
addressed by `podnet.api.resources.ResourceType`; objects are raw JSON dicts, because raw
API JSON is the truth (DESIGN.md, principle 4) and callers convert to views themselves.

Errors come back as `podnet.api.errors.StatusError`, rebuilt from the server's `Status`
body, so `err.code == 409` / `err.reason == "Conflict"` work the same on both sides.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import ssl
import tempfile
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any, Literal, NamedTuple

import aiohttp
import yaml

from podnet.api.errors import Cause, StatusError
from podnet.api.resources import ResourceType
from podnet.util import jsonutil

JSON = dict[str, Any]
PatchType = Literal["merge", "strategic", "json", "apply"]

PATCH_CONTENT_TYPES: Mapping[str, str] = {
    "merge": "application/merge-patch+json",
    "strategic": "application/strategic-merge-patch+json",
    "json": "application/json-patch+json",
    "apply": "application/apply-patch+yaml",
}

# Reasons Kubernetes uses for each code, for error bodies that are not a Status
# (a proxy in between, a crashed handler): callers can still branch on `reason`.
_REASON_BY_CODE: Mapping[int, str] = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    406: "NotAcceptable",
    409: "Conflict",
    410: "Expired",
    413: "RequestEntityTooLarge",
    415: "UnsupportedMediaType",
    422: "Invalid",
    429: "TooManyRequests",
    500: "InternalError",
    503: "ServiceUnavailable",
    504: "Timeout",
}

SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
KEEPALIVE_SECONDS = 60.0


class ListResult(NamedTuple):
    """One page of a list: unpacks as `(items, resource_version, continue_)`."""

    items: list[JSON]
    resource_version: str
    continue_: str


class WatchEvent(NamedTuple):
    """One watch event: `type` is ADDED, MODIFIED, DELETED or BOOKMARK."""

    type: str
    object: JSON


def resource_path(
    rt: ResourceType,
    namespace: str | None = None,
    name: str | None = None,
    subresource: str | None = None,
) -> str:
    """The URL path of a collection, object or subresource, as Kubernetes lays it out."""
    base = f"/api/{rt.version}" if not rt.group else f"/apis/{rt.group}/{rt.version}"
    if rt.namespaced and namespace:
        base += f"/namespaces/{namespace}"
    base += f"/{rt.plural}"
    if name:
        base += f"/{name}"
        if subresource:
            base += f"/{subresource}"
    return base


def status_error_from_body(code: int, body: bytes | str, http_reason: str = "") -> StatusError:
    """Rebuild the server's `StatusError` from a response body.

    A proper `Status` body gives back code, reason, message, details and causes; anything
    else falls back to the Kubernetes reason for the HTTP code, so callers branching on
    `reason` still do the right thing.
    """
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    try:
        data = json.loads(text) if text else None
    except ValueError:
        data = None
    if isinstance(data, dict) and data.get("kind") == "Status":
        return status_error_from_status(data, code)
    message = text.strip() or http_reason or f"the server responded with status {code}"
    return StatusError(message, code, _REASON_BY_CODE.get(code, "Unknown"))


def status_error_from_status(status: Mapping[str, Any], code: int = 0) -> StatusError:
    """A `StatusError` from a `Status` object (an error body or a watch ERROR event)."""
    details = status.get("details") or {}
    causes = [
        Cause(str(c.get("reason", "")), str(c.get("field", "")), str(c.get("message", "")))
        for c in details.get("causes") or []
    ]
    real_code = int(status.get("code") or code or 500)
    return StatusError(
        str(status.get("message", "")),
        real_code,
        str(status.get("reason") or _REASON_BY_CODE.get(real_code, "Unknown")),
        name=str(details.get("name", "")),
        group=str(details.get("group", "")),
        kind=str(details.get("kind", "")),
        causes=causes,
        retry_after=int(details.get("retryAfterSeconds") or 0),
    )


def _params(**kwargs: Any) -> dict[str, str]:
    """Query parameters with None dropped and booleans spelled as Kubernetes expects."""
    out: dict[str, str] = {}
    for key, value in kwargs.items():
        if value is None or value == "":
            continue
        out[key] = ("true" if value else "false") if isinstance(value, bool) else str(value)
    return out


class ApiClient:
    """A small typed client for the Kubernetes REST API.

    The aiohttp session is created lazily on first use (no loop needed at construction)
    and closed by `close()` or `async with`. Pass `session` to share one or to inject an
    in-process transport in tests.
    """

    def __init__(
        self,
        base_url: str,
        ssl_context: ssl.SSLContext | None = None,
        token: str | None = None,
        *,
        session: aiohttp.ClientSession | None = None,
        request_timeout: float = 60.0,
        user_agent: str = "podnet/0.1",
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.ssl_context = ssl_context
        self.token = token
        self._session = session
        self._owns_session = session is None
        self._timeout = aiohttp.ClientTimeout(total=request_timeout)
        self._user_agent = user_agent

    # -- construction helpers -------------------------------------------------------

    @classmethod
    def from_kubeconfig(cls, path: str | os.PathLike[str], context: str | None = None) -> ApiClient:
        """A client for the current (or named) context of a kubeconfig file.

        Supports server, certificate-authority(-data), insecure-skip-tls-verify,
        client-certificate/key(-data), token and tokenFile. Exec and auth-provider
        plugins are not supported.
        """
        path = Path(path)
        config = yaml.safe_load(path.read_text()) or {}
        base = path.parent
        ctx_name = context or config.get("current-context")
        ctx = _named(config.get("contexts"), ctx_name, "context")
        cluster = _named(config.get("clusters"), ctx.get("cluster"), "cluster")
        user = _named(config.get("users"), ctx.get("user"), "user") if ctx.get("user") else {}
        server = str(cluster.get("server", ""))
        if not server:
            raise ValueError(f"kubeconfig {path}: cluster {ctx.get('cluster')!r} has no server")
        ssl_context: ssl.SSLContext | None = None
        if server.startswith("https"):
            ssl_context = _ssl_context(cluster, user, base)
        token = user.get("token")
        if not token and user.get("tokenFile"):
            token = (base / str(user["tokenFile"])).read_text().strip()
        return cls(server, ssl_context, str(token) if token else None)

    @classmethod
    def in_cluster(cls, env: Mapping[str, str], sa_dir: str = SERVICE_ACCOUNT_DIR) -> ApiClient:
        """A client for code running inside a pod, from the ServiceAccount mount."""
        host = env["KUBERNETES_SERVICE_HOST"]
        port = env.get("KUBERNETES_SERVICE_PORT", "443")
        ctx = ssl.create_default_context(cafile=os.path.join(sa_dir, "ca.crt"))
        token = Path(sa_dir, "token").read_text().strip()
        return cls(f"https://{host}:{port}", ctx, token)

    # -- lifecycle ------------------------------------------------------------------

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            # No context means the system trust store (ssl=True), never "don't verify".
            ssl_arg: ssl.SSLContext | bool = self.ssl_context if self.ssl_context else True
            # Idle connections live 60 s (client-go keeps them 90 s; the API server closes
            # its side after 75 s): a component's next burst finds them open.
            connector = aiohttp.TCPConnector(ssl=ssl_arg, keepalive_timeout=KEEPALIVE_SECONDS)
            self._session = aiohttp.ClientSession(connector=connector)
            self._owns_session = True
        return self._session

    async def warm(self, connections: int) -> None:
        """Open `connections` keep-alive connections now, TLS handshakes included.

        HTTP/1.1 carries one request per connection at a time, so a component that sends
        N requests at once (the scheduler's bindings, the agent's status updates) needs N
        connections; opened in its first burst, their handshakes cost the API server and
        the component about 1 ms each right when pods are waiting. (client-go multiplexes
        one HTTP/2 connection instead.) Failures are ignored: this is only a head start.
        """
        async def one() -> None:
            with contextlib.suppress(Exception):
                await self.request("GET", "/version")

        await asyncio.gather(*(one() for _ in range(connections)))

    async def close(self) -> None:
        if self._session is not None and self._owns_session and not self._session.closed:
            await self._session.close()

    async def __aenter__(self) -> ApiClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- raw requests ---------------------------------------------------------------

    def _headers(self, content_type: str | None = None) -> dict[str, str]:
        headers = {"Accept": "application/json", "User-Agent": self._user_agent}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        if content_type:
            headers["Content-Type"] = content_type
        return headers

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        body: Any = None,
        content_type: str = "application/json",
    ) -> JSON:
        """Send one request and return the decoded JSON body; raise `StatusError` on >= 400."""
        data = None if body is None else jsonutil.dumps(body)
        session = self._get_session()
        async with session.request(
            method,
            self.base_url + path,
            params=params,
            data=data,
            headers=self._headers(content_type if data is not None else None),
            timeout=self._timeout,
        ) as resp:
            raw = await resp.read()
            if resp.status >= 400:
                raise status_error_from_body(resp.status, raw, resp.reason or "")
            if not raw:
                return {}
            result = jsonutil.loads(raw)
            if not isinstance(result, dict):
                raise StatusError(f"unexpected response body for {method} {path}", 500)
            return result

    async def get_path(self, path: str, params: Mapping[str, str] | None = None) -> JSON:
        """GET any path (discovery, /version, ...) and decode it."""
        return await self.request("GET", path, params=params)

    # -- typed verbs ----------------------------------------------------------------

    async def get(
        self,
        rt: ResourceType,
        name: str,
        namespace: str | None = None,
        *,
        subresource: str | None = None,
    ) -> JSON:
        return await self.request("GET", resource_path(rt, namespace, name, subresource))

    async def list(
        self,
        rt: ResourceType,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
        limit: int | None = None,
        continue_: str | None = None,
        resource_version: str | None = None,
    ) -> ListResult:
        """One page of a list; pass the returned `continue_` back to get the next."""
        params = _params(
            labelSelector=label_selector,
            fieldSelector=field_selector,
            limit=limit,
            resourceVersion=resource_version,
            **{"continue": continue_},
        )
        data = await self.request("GET", resource_path(rt, namespace), params=params)
        meta = data.get("metadata") or {}
        items = [_with_type(item, rt) for item in data.get("items") or []]
        return ListResult(
            items, str(meta.get("resourceVersion", "")), str(meta.get("continue", ""))
        )

    async def list_all(
        self,
        rt: ResourceType,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
        page_size: int = 500,
    ) -> ListResult:
        """Every page of a list, concatenated; the resourceVersion is the first page's
        (continue tokens keep the whole list consistent at that revision)."""
        items: list[JSON] = []
        first = await self.list(
            rt, namespace, label_selector=label_selector, field_selector=field_selector,
            limit=page_size,
        )
        items.extend(first.items)
        token = first.continue_
        while token:
            page = await self.list(
                rt, namespace, label_selector=label_selector, field_selector=field_selector,
                limit=page_size, continue_=token,
            )
            items.extend(page.items)
            token = page.continue_
        return ListResult(items, first.resource_version, "")

    async def create(
        self,
        rt: ResourceType,
        obj: Mapping[str, Any],
        namespace: str | None = None,
        *,
        field_manager: str | None = None,
    ) -> JSON:
        ns = namespace or _namespace_of(obj)
        return await self.request(
            "POST",
            resource_path(rt, ns),
            params=_params(fieldManager=field_manager),
            body=obj,
        )

    async def update(
        self,
        rt: ResourceType,
        obj: Mapping[str, Any],
        *,
        subresource: str | None = None,
        field_manager: str | None = None,
    ) -> JSON:
        """PUT the whole object; its metadata.resourceVersion makes it a compare-and-swap."""
        meta = obj.get("metadata") or {}
        path = resource_path(rt, meta.get("namespace"), meta["name"], subresource)
        return await self.request(
            "PUT", path, params=_params(fieldManager=field_manager), body=obj
        )

    async def update_status(self, rt: ResourceType, obj: Mapping[str, Any]) -> JSON:
        return await self.update(rt, obj, subresource="status")

    async def patch(
        self,
        rt: ResourceType,
        name: str,
        patch: Any,
        namespace: str | None = None,
        *,
        patch_type: PatchType = "merge",
        subresource: str | None = None,
        field_manager: str | None = None,
        force: bool | None = None,
    ) -> JSON:
        if patch_type == "apply" and not field_manager:
            raise ValueError("server-side apply needs a field_manager")
        return await self.request(
            "PATCH",
            resource_path(rt, namespace, name, subresource),
            params=_params(fieldManager=field_manager, force=force),
            body=patch,
            content_type=PATCH_CONTENT_TYPES[patch_type],
        )

    async def delete(
        self,
        rt: ResourceType,
        name: str,
        namespace: str | None = None,
        *,
        propagation_policy: Literal["Background", "Foreground", "Orphan"] | None = None,
        grace_period: int | None = None,
        preconditions: Mapping[str, str] | None = None,
    ) -> JSON:
        """Delete one object; returns what the server returns (the object or a Status)."""
        options: JSON = {"kind": "DeleteOptions", "apiVersion": "v1"}
        if propagation_policy:
            options["propagationPolicy"] = propagation_policy
        if grace_period is not None:
            options["gracePeriodSeconds"] = grace_period
        if preconditions:
            options["preconditions"] = dict(preconditions)
        return await self.request(
            "DELETE", resource_path(rt, namespace, name), body=options
        )

    async def watch(
        self,
        rt: ResourceType,
        namespace: str | None = None,
        *,
        resource_version: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        timeout_seconds: int | None = None,
        allow_bookmarks: bool = True,
    ) -> AsyncIterator[WatchEvent]:
        """Stream watch events until the server ends the watch.

        BOOKMARK events are yielded too (their object carries only a resourceVersion), so
        a caller can resume from them. An ERROR event is raised as `StatusError` (410
        Expired when `resource_version` is too old: re-list and watch again).
        """
        params = _params(
            watch=True,
            resourceVersion=resource_version,
            labelSelector=label_selector,
            fieldSelector=field_selector,
            timeoutSeconds=timeout_seconds,
            allowWatchBookmarks=allow_bookmarks or None,
        )
        # No total timeout: a watch is long-lived. A read timeout a little past the
        # server's own timeout notices a dead connection.
        read = None if timeout_seconds is None else timeout_seconds + 30
        timeout = aiohttp.ClientTimeout(total=None, sock_read=read)
        session = self._get_session()
        async with session.get(
            self.base_url + resource_path(rt, namespace),
            params=params,
            headers=self._headers(),
            timeout=timeout,
        ) as resp:
            if resp.status >= 400:
                raise status_error_from_body(resp.status, await resp.read(), resp.reason or "")
            buffer = b""
            # Lines are split by hand: aiohttp's readline caps line length, and a single
            # object (a big ConfigMap) can exceed it.
            async for chunk in resp.content.iter_any():
                buffer += chunk
                if b"\n" not in chunk:
                    continue
                # All complete lines at once: splitting one line off at a time copies
                # the rest of a chunk per event, quadratic in a burst's batched events.
                *lines, buffer = buffer.split(b"\n")
                for line in lines:
                    event = _decode_event(line, rt)
                    if event is not None:
                        yield event
            event = _decode_event(buffer, rt)
            if event is not None:
                yield event


def _decode_event(line: bytes, rt: ResourceType) -> WatchEvent | None:
    line = line.strip()
    if not line:
        return None
    data = jsonutil.loads(line)
    etype = str(data.get("type", ""))
    obj = data.get("object") or {}
    if etype == "ERROR":
        raise status_error_from_status(obj, 500)
    if etype != "BOOKMARK":
        obj = _with_type(obj, rt)
    return WatchEvent(etype, obj)


def _with_type(obj: JSON, rt: ResourceType) -> JSON:
    """List items come without apiVersion/kind on the wire; put them back."""
    if "kind" not in obj:
        obj["kind"] = rt.kind
    if "apiVersion" not in obj:
        obj["apiVersion"] = rt.api_version
    return obj


def _namespace_of(obj: Mapping[str, Any]) -> str | None:
    meta = obj.get("metadata") or {}
    ns = meta.get("namespace")
    return str(ns) if ns else None


def _named(entries: Any, name: Any, what: str) -> JSON:
    for entry in entries or []:
        if entry.get("name") == name:
            inner = entry.get(what) or {}
            return dict(inner)
    raise ValueError(f"kubeconfig has no {what} named {name!r}")


def _ssl_context(cluster: Mapping[str, Any], user: Mapping[str, Any], base: Path) -> ssl.SSLContext:
    import base64

    if cluster.get("insecure-skip-tls-verify"):
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    elif cluster.get("certificate-authority-data"):
        pem = base64.b64decode(str(cluster["certificate-authority-data"])).decode()
        ctx = ssl.create_default_context(cadata=pem)
    elif cluster.get("certificate-authority"):
        ctx = ssl.create_default_context(cafile=str(base / str(cluster["certificate-authority"])))
    else:
        ctx = ssl.create_default_context()
    cert = _pem(user, "client-certificate", base)
    key = _pem(user, "client-key", base)
    if cert and key:
        # ssl only loads key pairs from files; keep them on disk just long enough.
        with tempfile.TemporaryDirectory() as tmp:
            cert_file = Path(tmp, "cert.pem")
            key_file = Path(tmp, "key.pem")
            cert_file.write_bytes(cert)
            key_file.write_bytes(key)
            key_file.chmod(0o600)
            ctx.load_cert_chain(str(cert_file), str(key_file))
    return ctx


def _pem(user: Mapping[str, Any], field: str, base: Path) -> bytes | None:
    import base64

    if user.get(field + "-data"):
        return base64.b64decode(str(user[field + "-data"]))
    if user.get(field):
        return (base / str(user[field])).read_bytes()
    return None
