"""HTTP handlers for resource requests: parse, authorize, call storage, render.

One entry point, `ResourceHandler.handle`, dispatches on the parsed `RequestInfo`.
Errors are raised as `StatusError` and rendered by the middleware in `app.py`.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from aiohttp import web

from podnet.api import errors, selectors, tables
from podnet.api import patch as api_patch
from podnet.api.resources import VIRTUAL_KINDS, ResourceType
from podnet.apiserver import negotiate, semantics, watchstream
from podnet.apiserver.authn import UserInfo
from podnet.apiserver.request import RequestInfo
from podnet.apiserver.storage import DeleteOptions, Storage, WriteOptions, matches_all
from podnet.util import jsonutil
from podnet.util.clock import Clock

MAX_BODY = 3 * 1024 * 1024  # kube-apiserver's default request body limit (3 MiB)
# The authenticated (or impersonated) user of a request, set by the middleware.
USER_KEY: web.RequestKey[UserInfo] = web.RequestKey("user", UserInfo)


def json_response(data: Any, status: int = 200, content_type: str = "application/json",
                  warnings: list[str] | None = None) -> web.Response:
    headers = {}
    if warnings:
        # Go's strconv.Quote of each text, as the apiserver writes warnings.
        headers["Warning"] = ", ".join(
            '299 - "' + w.replace("\\", "\\\\").replace('"', '\\"') + '"' for w in warnings)
    return web.Response(body=jsonutil.dumps(data), status=status, content_type=None,
                        headers={"Content-Type": content_type, **headers})


async def read_all(request: web.Request) -> bytes:
    """The whole body, or 413 past kube-apiserver's limit (aiohttp's `read(n)` may return
    less than n bytes, so never use it to read a body)."""
    if request.content_length and request.content_length > MAX_BODY:
        raise errors.too_large(f"Request entity too large: limit is {MAX_BODY}")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.content.iter_any():
        size += len(chunk)
        if size > MAX_BODY:
            raise errors.too_large(f"Request entity too large: limit is {MAX_BODY}")
        chunks.append(chunk)
    return b"".join(chunks)


def query_bool(q: Any, name: str) -> bool:
    return str(q.get(name, "")).lower() in ("true", "1")


def write_options(q: Any, subresource: str = "") -> WriteOptions:
    dry = q.getall("dryRun", []) if hasattr(q, "getall") else []
    fv = q.get("fieldValidation") or "Warn"  # the default since Kubernetes 1.23
    if fv not in ("Strict", "Warn", "Ignore"):
        raise errors.bad_request(
            f"fieldValidation parameter unsupported: {fv}. Valid values are Strict, Warn, Ignore"
        )
    if dry and any(d != "All" for d in dry):
        raise errors.bad_request(
            f"dryRun: Unsupported value: {dry[0]!r}: supported values: \"All\""
        )
    return WriteOptions(
        dry_run=bool(dry),
        field_manager=q.get("fieldManager", ""),
        field_validation=fv,
        subresource=subresource,
        force=query_bool(q, "force"),
    )


class ResourceHandler:
    def __init__(self, storage: Storage, clock: Clock,
                 subresources: dict[str, Callable[..., Any]] | None = None) -> None:
        self.storage = storage
        self.clock = clock
        self.registry = storage.registry
        # Extra per-subresource handlers (binding, token, scale, log, exec, ...),
        # keyed "pods/binding": async fn(request, info, rt) -> web.StreamResponse
        self.subresources: dict[str, Callable[..., Any]] = subresources or {}
        # Handlers for virtual (never stored) kinds like SelfSubjectAccessReview.
        self.virtual: dict[str, Callable[..., Any]] = {}
        self._line_cache: OrderedDict[tuple[str, str, str, str], bytes] = OrderedDict()
        # additionalPrinterColumns of CRDs, keyed (group, version, plural).
        self.crd_columns: dict[tuple[str, str, str], list[dict[str, Any]]] = {}

    def resource_type(self, info: RequestInfo) -> ResourceType:
        rt = self.registry.get(info.group, info.version, info.resource)
        if rt is None:
            raise errors.StatusError(
                "the server could not find the requested resource", 404, "NotFound"
            )
        return rt

    async def handle(self, request: web.Request, info: RequestInfo) -> web.StreamResponse:
        rt = self.resource_type(info)
        q = request.query
        if (info.verb not in ("watch", "list", "deletecollection")
                and info.verb not in rt.verbs and not info.subresource
                and not (info.verb == "get" and rt.kind in VIRTUAL_KINDS)):
            raise errors.method_not_allowed(
                "the server does not allow this method on the requested resource"
            )
        if info.verb in ("list", "watch", "deletecollection") and info.verb not in rt.verbs:
            raise errors.method_not_allowed(
                "the server does not allow this method on the requested resource"
            )
        namespace = info.namespace if rt.namespaced else None
        if rt.kind == "Namespace":
            namespace = None
        if rt.namespaced and not namespace and info.verb not in ("list", "watch"):
            raise errors.StatusError(
                "the server could not find the requested resource", 404, "NotFound"
            )
        if info.subresource and info.subresource not in ("status", "finalize"):
            key = f"{rt.plural}/{info.subresource}"
            handler = self.subresources.get(key)
            if handler is None or rt.subresource(info.subresource) is None:
                raise errors.StatusError(
                    "the server could not find the requested resource", 404, "NotFound"
                )
            result: web.StreamResponse = await handler(request, info, rt)
            return result
        if info.subresource and rt.subresource(info.subresource) is None:
            raise errors.StatusError(
                "the server could not find the requested resource", 404, "NotFound"
            )
        if rt.kind in VIRTUAL_KINDS:
            vh = self.virtual.get(rt.kind)
            if vh is None or request.method != "POST":
                raise errors.method_not_allowed(
                    "the server does not allow this method on the requested resource"
                )
            vresult: web.StreamResponse = await vh(request, info, rt)
            return vresult
        method = request.method
        if info.verb == "watch":
            return await self.watch(request, info, rt, namespace)
        if info.verb == "list":
            return await self.list(request, info, rt, namespace)
        if method in ("GET", "HEAD"):
            obj = await self.storage.get(rt, namespace, info.name)
            return self.render_one(request, rt, obj)
        if method == "POST":
            if info.name:
                raise errors.method_not_allowed(
                    "the server does not allow this method on the requested resource"
                )
            body = await self.read_body(request)
            opts = write_options(q)
            res = await self.storage.create(rt, namespace, body, opts)
            return json_response(res.obj, 201, warnings=res.warnings)
        if method == "PUT":
            body = await self.read_body(request)
            opts = write_options(q, info.subresource)
            res = await self.storage.update(rt, namespace, info.name, body, opts)
            return json_response(res.obj, 200, warnings=res.warnings)
        if method == "PATCH":
            return await self.patch(request, info, rt, namespace)
        if method == "DELETE":
            if not info.name:
                return await self.delete_collection(request, info, rt, namespace)
            dopts = await self.delete_options(request)
            d = await self.storage.delete(rt, namespace, info.name, dopts)
            if not d.gone or (rt.kind == "Pod" and rt.group == ""):
                return json_response(d.obj)
            return json_response(self.success_status(rt, d.obj))
        raise errors.method_not_allowed(f"method {method} is not allowed")

    # ---- bodies ---------------------------------------------------------------------
    async def read_body(self, request: web.Request) -> Any:
        raw = await read_all(request)
        ct = request.headers.get("Content-Type", "application/json")
        if negotiate.media_type(ct) == negotiate.PROTOBUF_CT:
            from podnet.apiserver import protobuf

            return protobuf.decode(raw)
        return negotiate.decode_body(raw, ct)

    async def delete_options(self, request: web.Request) -> DeleteOptions:
        q = request.query
        body: dict[str, Any] = {}
        raw = await read_all(request)
        if raw.strip():
            ct = request.headers.get("Content-Type", "application/json")
            if negotiate.media_type(ct) == negotiate.PROTOBUF_CT:
                from podnet.apiserver import protobuf

                body = protobuf.decode(raw)
            else:
                decoded = negotiate.decode_body(raw, ct)
                if isinstance(decoded, dict):
                    body = decoded
        grace = body.get("gracePeriodSeconds")
        if "gracePeriodSeconds" in q:
            grace = int(q["gracePeriodSeconds"])
        policy = body.get("propagationPolicy") or q.get("propagationPolicy") or ""
        if body.get("orphanDependents") is True or q.get("orphanDependents") == "true":
            policy = "Orphan"
        if policy and policy not in ("Background", "Foreground", "Orphan"):
            raise errors.invalid("DeleteOptions", "", [errors.not_supported(
                "propagationPolicy", policy, ["Foreground", "Background", "Orphan", "nil"])])
        pre = body.get("preconditions") or {}
        dry = body.get("dryRun") or q.getall("dryRun", [])
        return DeleteOptions(
            grace_period_seconds=int(grace) if grace is not None else None,
            propagation_policy=policy,
            precondition_uid=pre.get("uid") or "",
            precondition_resource_version=pre.get("resourceVersion") or "",
            dry_run=bool(dry),
        )

    def success_status(self, rt: ResourceType, obj: dict[str, Any]) -> dict[str, Any]:
        meta = obj.get("metadata") or {}
        details: dict[str, Any] = {"name": meta.get("name", ""), "kind": rt.plural,
                                   "uid": meta.get("uid", "")}
        if rt.group:
            details["group"] = rt.group
        return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                "details": details}

    # ---- reads ----------------------------------------------------------------------
    def matcher(self, request: web.Request, rt: ResourceType) -> Callable[[dict[str, Any]],
                                                                          bool] | None:
        q = request.query
        label = q.get("labelSelector", "")
        field = q.get("fieldSelector", "")
        lsel = selectors.LabelSelector.parse(label) if label else None
        fsel = selectors.FieldSelector.parse(field, rt.kind, rt.group) if field else None
        lpred = None
        if lsel is not None and not lsel.empty:
            lpred = lambda obj: lsel.matches((obj.get("metadata") or {}).get("labels")  # noqa: E731
                                             or {})
        fpred = None
        if fsel is not None and not fsel.empty:
            fpred = fsel.matches
        return matches_all(lpred, fpred)

    def render_one(self, request: web.Request, rt: ResourceType,
                   obj: dict[str, Any]) -> web.Response:
        wants = negotiate.parse_accept(request.headers.get("Accept", ""))
        if wants.table:
            table = self.table(rt, [obj], request)
            table["metadata"] = {"resourceVersion": obj["metadata"].get("resourceVersion", "")}
            return json_response(table, content_type=negotiate.TABLE_CT)
        return json_response(obj)

    def table(self, rt: ResourceType, objs: list[dict[str, Any]],
              request: web.Request) -> dict[str, Any]:
        include = request.query.get("includeObject", "Metadata")
        custom = self.custom_columns(rt)
        return tables.build_table(rt, objs, self.clock.now(), include_object=include,
                                  custom_columns=custom)

    def custom_columns(self, rt: ResourceType) -> list[dict[str, Any]] | None:
        cols: list[dict[str, Any]] | None = self.crd_columns.get(
            (rt.group, rt.version, rt.plural))
        return cols

    async def list(self, request: web.Request, info: RequestInfo, rt: ResourceType,
                   namespace: str | None) -> web.StreamResponse:
        q = request.query
        match = self.matcher(request, rt)
        limit = int(q.get("limit", "0") or 0)
        wants = negotiate.parse_accept(request.headers.get("Accept", ""))
        if match is None and not limit and not q.get("continue") and not wants.table \
                and rt.structured:
            values, rev = await self.storage.list_raw(rt, namespace)
            body = (b'{"kind":"' + rt.list_kind.encode() + b'","apiVersion":"'
                    + rt.api_version.encode() + b'","metadata":{"resourceVersion":"'
                    + str(rev).encode() + b'"},"items":[' + b",".join(values) + b"]}")
            return web.Response(body=body, headers={"Content-Type": "application/json"})
        result = await self.storage.list(rt, namespace, match=match, limit=limit,
                                         continue_token=q.get("continue", ""),
                                         resource_version=q.get("resourceVersion", ""))
        meta: dict[str, Any] = {"resourceVersion": result.resource_version}
        if result.continue_token:
            meta["continue"] = result.continue_token
        if wants.table:
            table = self.table(rt, result.items, request)
            table["metadata"] = meta
            return json_response(table, content_type=negotiate.TABLE_CT)
        return json_response({"kind": rt.list_kind, "apiVersion": rt.api_version,
                              "metadata": meta, "items": result.items})

    async def watch(self, request: web.Request, info: RequestInfo, rt: ResourceType,
                    namespace: str | None) -> web.StreamResponse:
        q = request.query
        match = self.matcher(request, rt)
        if info.name:
            name = info.name
            prev = match
            match = matches_all(prev, lambda o: (o.get("metadata") or {}).get("name") == name)
        rv = q.get("resourceVersion", "")
        events = self.storage.watch(rt, namespace, rv, match=match,
                                    send_initial=query_bool(q, "sendInitialEvents") or None)
        wants = negotiate.parse_accept(request.headers.get("Accept", ""))
        timeout = float(q["timeoutSeconds"]) if q.get("timeoutSeconds") else None
        first = [True]

        def render(etype: str, obj: dict[str, Any]) -> dict[str, Any]:
            if not wants.table:
                return obj
            table = self.table(rt, [obj], request)
            if not first[0]:
                table["columnDefinitions"] = []
            first[0] = False
            table["metadata"] = {"resourceVersion": obj["metadata"].get("resourceVersion", "")}
            return table

        def bookmark() -> dict[str, Any]:
            return {"kind": rt.kind, "apiVersion": rt.api_version,
                    "metadata": {"resourceVersion": str(self.storage.revision())}}

        ct = negotiate.TABLE_CT if wants.table else "application/json"
        return await watchstream.stream(
            request, events, content_type=ct, render=render, timeout=timeout,
            bookmarks=query_bool(q, "allowWatchBookmarks"), bookmark_object=bookmark,
            encode=None if wants.table else self.encode_event,
        )

    def encode_event(self, etype: str, obj: dict[str, Any]) -> bytes:
        """One watch event line, encoded once and shared by every watcher sending it."""
        meta = obj.get("metadata") or {}
        key = (etype, meta.get("uid", ""), meta.get("resourceVersion", ""),
               obj.get("apiVersion", ""))
        line = self._line_cache.get(key)
        if line is None:
            line = jsonutil.dumps({"type": etype, "object": obj}) + b"\n"
            self._line_cache[key] = line
            if len(self._line_cache) > 4096:
                self._line_cache.popitem(last=False)
        return line

    # ---- patch ----------------------------------------------------------------------
    async def patch(self, request: web.Request, info: RequestInfo, rt: ResourceType,
                    namespace: str | None) -> web.StreamResponse:
        ct = request.headers.get("Content-Type", "")
        ptype = negotiate.PATCH_TYPES.get(negotiate.media_type(ct))
        if ptype is None or ptype == "apply-cbor":
            raise errors.unsupported_media_type(
                "the body of the request was in an unknown format - accepted media types "
                "include: application/json-patch+json, application/merge-patch+json, "
                "application/apply-patch+yaml"
                + (", application/strategic-merge-patch+json" if rt.structured else "")
            )
        if ptype == "strategic" and not rt.structured:
            raise errors.unsupported_media_type(
                "the body of the request was in an unknown format - accepted media types "
                "include: application/json-patch+json, application/merge-patch+json, "
                "application/apply-patch+yaml"
            )
        raw = await read_all(request)
        body = negotiate.decode_body(raw, "application/yaml" if ptype == "apply" else
                                     "application/json")
        opts = write_options(request.query, info.subresource)
        if ptype == "apply":
            return await self.apply(request, info, rt, namespace, body, opts)
        if ptype == "json":
            if not isinstance(body, list):
                raise errors.bad_request(
                    "json: cannot unmarshal object into Go value of type jsonpatch.Patch"
                )
        elif not isinstance(body, dict):
            raise errors.bad_request("json: cannot unmarshal array into Go value of type "
                                     "map[string]interface {}")
        node = semantics.schema_node(rt)
        warnings: list[str] = []
        clean = ptype != "json" and semantics.patch_is_clean(rt, body)

        def change(live: dict[str, Any]) -> dict[str, Any]:
            live_rv = (live.get("metadata") or {}).get("resourceVersion")
            if ptype == "json":
                new = api_patch.json_patch(live, body)
            elif ptype == "merge":
                new = api_patch.json_merge_patch(live, body, copy=False)  # `live` is ours
            else:
                new = api_patch.strategic_merge_patch(live, body, node)
            if not isinstance(new, dict):
                raise errors.bad_request("the patch result is not an object")
            if "resourceVersion" not in (body.get("metadata") or {} if isinstance(body, dict)
                                         else {}):
                new.setdefault("metadata", {})["resourceVersion"] = live_rv
            if clean:
                semantics.check_envelope(rt, new, namespace)
            else:
                warnings.extend(semantics.check_body(rt, new, namespace, opts.field_validation))
            return new

        res = await self.storage.modify(rt, namespace, info.name, change, opts)
        return json_response(res.obj, warnings=warnings)

    async def apply(self, request: web.Request, info: RequestInfo, rt: ResourceType,
                    namespace: str | None, body: Any, opts: WriteOptions) -> web.StreamResponse:
        from podnet.api import apply as ssa

        if not isinstance(body, dict):
            raise errors.bad_request("apply patch must be an object")
        if not opts.field_manager:
            raise errors.bad_request(
                "PATCH, application/apply-patch+yaml requests must have a fieldManager query "
                "parameter"
            )
        meta = body.get("metadata") or {}
        if meta.get("name") and meta["name"] != info.name:
            raise errors.bad_request(
                f"the name of the object ({meta['name']}) does not match the name on the URL "
                f"({info.name})"
            )
        node = semantics.schema_node(rt)
        warnings = semantics.check_body(rt, jsonutil.deepcopy(body), namespace,
                                        opts.field_validation)
        now = self.storage.now_plus(0)

        def change(live: dict[str, Any]) -> dict[str, Any]:
            new = ssa.server_side_apply(live, body, opts.field_manager, opts.force, node, now)
            new.setdefault("metadata", {})["resourceVersion"] = (
                meta.get("resourceVersion") or live["metadata"].get("resourceVersion"))
            return new

        async def create() -> Any:
            fresh = ssa.server_side_apply(None, body, opts.field_manager, opts.force, node, now)
            fresh.setdefault("metadata", {})["name"] = info.name
            return await self.storage.create(rt, namespace, fresh, WriteOptions(
                dry_run=opts.dry_run, field_manager=opts.field_manager,
                field_validation="Ignore", subresource=opts.subresource, applied=True))

        res = await self.storage.modify(rt, namespace, info.name, change,
                                        WriteOptions(dry_run=opts.dry_run,
                                                     field_manager=opts.field_manager,
                                                     field_validation="Ignore",
                                                     subresource=opts.subresource,
                                                     force=opts.force, applied=True),
                                        create=create if not info.subresource else None)
        return json_response(res.obj, 201 if res.created else 200, warnings=warnings)

    async def delete_collection(self, request: web.Request, info: RequestInfo,
                                rt: ResourceType, namespace: str | None) -> web.StreamResponse:
        match = self.matcher(request, rt)
        opts = await self.delete_options(request)
        result = await self.storage.list(rt, namespace, match=match)
        items = []
        for obj in result.items:
            meta = obj["metadata"]
            try:
                d = await self.storage.delete(rt, meta.get("namespace"), meta["name"], opts)
            except errors.StatusError as err:
                if err.code == 404:
                    continue
                raise
            items.append(d.obj)
        return json_response({"kind": rt.list_kind, "apiVersion": rt.api_version,
                              "metadata": {"resourceVersion": str(self.storage.revision())},
                              "items": items})
