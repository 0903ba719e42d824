"""Object semantics over the revisioned store: what makes a key-value log an API.

uid, generation, creationTimestamp, resourceVersion (= store revision), optimistic
concurrency, finalizers and deletionTimestamp, graceful pod deletion, namespace
lifecycle checks, defaulting, validation, admission (Service allocations) and
managedFields all happen here, once, for every write path (create, update, patch,
apply, status). The HTTP layer only parses requests and renders answers.
"""

from __future__ import annotations

import asyncio
import base64
import builtins
import secrets
import uuid
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from podnet.api import errors
from podnet.api.errors import Cause, StatusError
from podnet.api.resources import Registry, ResourceType
from podnet.apiserver import semantics
from podnet.apiserver.services import ServiceAllocations
from podnet.store.base import (
    CompactedError,
    ConflictError,
    Event,
    EventStream,
    KeyExistsError,
    KeyNotFoundError,
    KeyValue,
    Store,
)
from podnet.util import jsonutil
from podnet.util.clock import Clock, rfc3339

# Objects the apiserver writes through this layer get this manager when none is given.
DEFAULT_MANAGER = "podnet"
MAX_RETRIES = 8
_NAME_CHARS = "bcdfghjklmnpqrstvwxz2456789"


@dataclass(frozen=True, slots=True)
class WriteOptions:
    dry_run: bool = False
    field_manager: str = ""
    field_validation: str = "Strict"  # Strict | Warn | Ignore
    subresource: str = ""  # "" | "status" | "finalize" | ...
    force: bool = False  # server-side apply: take conflicting fields
    # Server-side apply computed managedFields itself; do not record an Update on top.
    applied: bool = False


@dataclass(frozen=True, slots=True)
class DeleteOptions:
    grace_period_seconds: int | None = None
    propagation_policy: str = ""  # Background | Foreground | Orphan
    precondition_uid: str = ""
    precondition_resource_version: str = ""
    dry_run: bool = False


@dataclass
class WriteResult:
    obj: dict[str, Any]
    created: bool = False
    warnings: list[str] = field(default_factory=list)


@dataclass
class DeleteResult:
    obj: dict[str, Any]
    gone: bool  # True when the object left the store (not just marked for deletion)


@dataclass
class ListResult:
    items: list[dict[str, Any]]
    resource_version: str
    continue_token: str = ""
    remaining: int | None = None


# Hook called after every committed write: (resource type, event type, new-or-last object).
WriteHook = Callable[[ResourceType, str, dict[str, Any]], Awaitable[None]]


def _status_has_subresource(rt: ResourceType) -> bool:
    return rt.subresource("status") is not None


def encode_continue(revision: int, start: str) -> str:
    raw = jsonutil.dumps({"v": "meta.k8s.io/v1", "rv": revision, "start": start})
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_continue(token: str) -> tuple[int, str]:
    try:
        padded = token + "=" * (-len(token) % 4)
        data = jsonutil.loads(base64.urlsafe_b64decode(padded))
        return int(data["rv"]), str(data["start"])
    except Exception as exc:  # any malformed token is the client's error
        raise errors.bad_request("continue key is not valid: incorrect encoded start "
                                 "resourceVersion (version meta.k8s.io/v1)") from exc


class Storage:
    """CRUD with Kubernetes object semantics for every resource type in `registry`."""

    def __init__(
        self,
        store: Store,
        registry: Registry,
        clock: Clock,
        services: ServiceAllocations | None = None,
    ) -> None:
        self.store = store
        self.registry = registry
        self.clock = clock
        self.services = services or ServiceAllocations.create()
        self.hooks: list[WriteHook] = []
        self._event_cache: OrderedDict[tuple[str, int, bool, str], dict[str, Any]] = OrderedDict()
        self._service_lock = asyncio.Lock()

    # ---- start-up -------------------------------------------------------------------
    async def start(self) -> None:
        svc = self._rt("", "v1", "services")
        listed = await self.store.list(svc.key_prefix())
        self.services.rebuild(jsonutil.loads(kv.value) for kv in listed.items)

    def _rt(self, group: str, version: str, plural: str) -> ResourceType:
        rt = self.registry.get(group, version, plural)
        assert rt is not None, (group, version, plural)
        return rt

    # ---- reads ----------------------------------------------------------------------
    def _decode(self, rt: ResourceType, kv: KeyValue) -> dict[str, Any]:
        obj: dict[str, Any] = jsonutil.loads(kv.value)
        if not rt.structured and obj.get("apiVersion") != rt.api_version:
            # One stored object served at several versions of an unstructured kind.
            obj["apiVersion"] = rt.api_version
        return obj

    def _decode_event(self, rt: ResourceType, etype: str, kv: KeyValue) -> dict[str, Any]:
        """Decode a watch event's object once for all watchers (they must not mutate it):
        with 1,000 watchers, decoding per watcher would dominate the fan-out."""
        # One decode per stored version: an event's object, and the same version as the
        # `prev` of the next event (a selector watch matches both). DELETED differs: its
        # resourceVersion is the deletion's.
        key = (kv.key, kv.mod_revision, etype == "DELETED", rt.api_version)
        obj = self._event_cache.get(key)
        if obj is None:
            obj = self._decode(rt, kv)
            if etype == "DELETED":
                obj["metadata"]["resourceVersion"] = str(kv.mod_revision)
            self._event_cache[key] = obj
            if len(self._event_cache) > 4096:
                self._event_cache.popitem(last=False)
        return obj

    async def get(self, rt: ResourceType, namespace: str | None, name: str) -> dict[str, Any]:
        kv = await self.store.get(rt.key(namespace, name))
        if kv is None:
            raise errors.not_found(rt.plural, name, rt.group)
        return self._decode(rt, kv)

    async def get_kv(self, rt: ResourceType, namespace: str | None, name: str) -> KeyValue:
        kv = await self.store.get(rt.key(namespace, name))
        if kv is None:
            raise errors.not_found(rt.plural, name, rt.group)
        return kv

    async def list(
        self,
        rt: ResourceType,
        namespace: str | None,
        *,
        match: Callable[[dict[str, Any]], bool] | None = None,
        limit: int = 0,
        continue_token: str = "",
        resource_version: str = "",
    ) -> ListResult:
        prefix = rt.key_prefix(namespace)
        revision = 0
        start_after = ""
        if continue_token:
            revision, start_after = decode_continue(continue_token)
            start_after = prefix + start_after
        items: list[dict[str, Any]] = []
        more = False
        last_key = ""
        try:
            while True:
                want = 0 if not limit else max(limit - len(items), 1) * (1 if not match else 4)
                result = await self.store.list(
                    prefix, start_after=start_after, limit=want, revision=revision
                )
                revision = result.revision
                for kv in result.items:
                    last_key = kv.key
                    obj = self._decode(rt, kv)
                    if match is None or match(obj):
                        items.append(obj)
                        if limit and len(items) >= limit:
                            break
                if limit and len(items) >= limit:
                    more = result.more or last_key != (result.items[-1].key if result.items
                                                       else last_key)
                    if not more:
                        # Peek: is there anything after the last returned key?
                        peek = await self.store.list(
                            prefix, start_after=last_key, limit=1, revision=revision
                        )
                        more = bool(peek.items)
                    break
                if not result.more:
                    break
                start_after = result.items[-1].key
        except CompactedError as exc:
            raise errors.gone(
                "The provided continue parameter is too old to display a consistent list "
                "result. You can start a new list without the continue parameter, or use "
                "the continue token in this response to retrieve the remainder of the "
                "results. Continuing with the provided token results in an inconsistent "
                "list - objects that were created, modified, or deleted between the time "
                "the first chunk was returned and now may show up in the list."
            ) from exc
        token = encode_continue(revision, last_key[len(prefix):]) if more else ""
        return ListResult(items, str(revision), token)

    async def list_raw(self, rt: ResourceType,
                       namespace: str | None) -> tuple[builtins.list[bytes], int]:
        """Stored JSON of every object, for the fast unfiltered list path."""
        result = await self.store.list(rt.key_prefix(namespace))
        return [kv.value for kv in result.items], result.revision

    # ---- namespace checks -----------------------------------------------------------
    async def _check_namespace(self, rt: ResourceType, namespace: str | None) -> None:
        if not rt.namespaced or not namespace:
            return
        kv = await self.store.get(f"/registry/core/namespaces/{namespace}")
        if kv is None:
            raise errors.not_found("namespaces", namespace)
        ns = jsonutil.loads(kv.value)
        if ns.get("metadata", {}).get("deletionTimestamp"):
            raise errors.forbidden(
                f"{rt.plural} \"{{name}}\" is forbidden: unable to create new content in "
                f"namespace {namespace} because it is being terminated",
                rt.plural,
                group=rt.group,
            )

    # ---- create ---------------------------------------------------------------------
    async def create(
        self,
        rt: ResourceType,
        namespace: str | None,
        obj: dict[str, Any],
        opts: WriteOptions = WriteOptions(),
    ) -> WriteResult:
        warnings = semantics.check_body(rt, obj, namespace, opts.field_validation)
        meta = obj.setdefault("metadata", {})
        if not isinstance(meta, dict):
            raise errors.bad_request("metadata must be an object")
        if rt.namespaced:
            meta["namespace"] = namespace
        else:
            meta.pop("namespace", None)
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = meta["generateName"] + "".join(
                secrets.choice(_NAME_CHARS) for _ in range(5)
            )
        name = meta.get("name") or ""
        try:
            await self._check_namespace(rt, namespace)
        except StatusError as e:
            if e.reason == "Forbidden":
                e.message = e.message.replace("{name}", name)
            raise
        if rt.subresource("status") is not None and not opts.subresource:
            # PrepareForCreate: status is the system's to set, never the creator's.
            obj.pop("status", None)
        obj = semantics.default(rt, obj)
        causes = semantics.validate_create(rt, obj)
        if causes:
            raise errors.invalid(rt.kind, name, causes, rt.group)
        now = self.clock.now()
        meta = obj["metadata"]
        for k in ("resourceVersion", "deletionTimestamp", "deletionGracePeriodSeconds"):
            meta.pop(k, None)
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = rfc3339(now)
        if semantics.has_generation(rt):
            meta["generation"] = 1
        semantics.on_create(rt, obj, now)
        if not opts.applied:
            obj = semantics.record_managed(rt, None, obj, opts.field_manager or DEFAULT_MANAGER,
                                           rfc3339(now), opts.subresource)
        async def write() -> None:
            try:
                await self.store.create(rt.key(namespace, name), _encoder(obj))
            except KeyExistsError:
                raise errors.already_exists(rt.plural, name, rt.group) from None

        if not await self._admit_and_write(rt, name, obj, None, opts.dry_run, write):
            return WriteResult(obj, True, warnings)
        await self._after(rt, "ADDED", obj)
        return WriteResult(obj, True, warnings)

    async def _admit_and_write(
        self,
        rt: ResourceType,
        name: str,
        new: dict[str, Any],
        old: dict[str, Any] | None,
        dry_run: bool,
        write: Callable[[], Awaitable[None]],
    ) -> bool:
        """Service allocation, then the store write; allocations are given back if the
        write fails or is a dry run. False when nothing was written (dry run)."""
        if not (rt.kind == "Service" and rt.group == ""):
            if dry_run:
                return False
            await write()
            return True
        async with self._service_lock:
            causes, undo = self.services.admit(new, old)
            if causes:
                raise errors.invalid(rt.kind, name, causes, rt.group)
            if dry_run:
                undo()
                return False
            try:
                await write()
            except BaseException:
                undo()
                raise
            if old is not None:
                self.services.released_by(new, old)
        return True

    async def _after(self, rt: ResourceType, event: str, obj: dict[str, Any]) -> None:
        for hook in self.hooks:
            await hook(rt, event, obj)

    # ---- update / patch -------------------------------------------------------------
    async def update(
        self,
        rt: ResourceType,
        namespace: str | None,
        name: str,
        obj: dict[str, Any],
        opts: WriteOptions = WriteOptions(),
    ) -> WriteResult:
        """PUT: replace the object (or its status) if the resourceVersion still matches."""
        warnings = semantics.check_body(rt, obj, namespace, opts.field_validation)
        meta = obj.setdefault("metadata", {})
        if meta.get("name") and meta["name"] != name:
            raise errors.bad_request(
                f"the name of the object ({meta['name']}) does not match the name on the URL "
                f"({name})"
            )
        meta["name"] = name
        kv = await self.get_kv(rt, namespace, name)
        want_rv = meta.get("resourceVersion")
        if want_rv and want_rv != str(kv.mod_revision):
            raise errors.conflict(rt.plural, name, rt.group)
        result = await self._write_update(rt, namespace, name, kv, lambda old: obj, opts)
        result.warnings[:0] = warnings
        return result

    async def modify(
        self,
        rt: ResourceType,
        namespace: str | None,
        name: str,
        change: Callable[[dict[str, Any]], dict[str, Any]],
        opts: WriteOptions = WriteOptions(),
        *,
        create: Callable[[], Awaitable[WriteResult]] | None = None,
    ) -> WriteResult:
        """Read-modify-write with retries on conflict (patch, apply, scale, bindings).

        `change` gets a copy of the live object and returns the wanted object; if it
        carries a resourceVersion different from the live one, that is a conflict.
        """
        for _ in range(MAX_RETRIES):
            kv = await self.store.get(rt.key(namespace, name))
            if kv is None:
                if create is not None:
                    return await create()
                raise errors.not_found(rt.plural, name, rt.group)
            try:
                return await self._write_update(rt, namespace, name, kv, change, opts)
            except _Retry:
                continue
        raise errors.conflict(rt.plural, name, rt.group)

    async def _write_update(
        self,
        rt: ResourceType,
        namespace: str | None,
        name: str,
        kv: KeyValue,
        change: Callable[[dict[str, Any]], dict[str, Any]],
        opts: WriteOptions,
    ) -> WriteResult:
        old = self._decode(rt, kv)
        new = change(jsonutil.deepcopy(old))
        if not isinstance(new, dict):
            raise errors.bad_request("the body of the request is not an object")
        new_meta = new.setdefault("metadata", {})
        rv = new_meta.get("resourceVersion")
        if rv and rv != str(kv.mod_revision):
            raise errors.conflict(rt.plural, name, rt.group)
        new = semantics.merge_for_subresource(rt, old, new, opts.subresource)
        new_meta = new["metadata"]
        old_meta = old["metadata"]
        # System fields always come from the stored object.
        for k in ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds",
                  "generation"):
            if k in old_meta:
                new_meta[k] = old_meta[k]
            else:
                new_meta.pop(k, None)
        new_meta["name"] = name
        if rt.namespaced:
            new_meta["namespace"] = namespace
        new.setdefault("apiVersion", old.get("apiVersion"))
        new.setdefault("kind", old.get("kind"))
        new = semantics.default(rt, new, create=False)
        if rt.kind == "Service" and rt.group == "":
            new = semantics.service_update(old, new)
        new_meta = new["metadata"]  # defaulting may have added it
        if old_meta.get("deletionTimestamp"):
            # Only finalizers may be removed once an object is being deleted.
            added = set(new_meta.get("finalizers") or []) - set(old_meta.get("finalizers") or [])
            if added:
                raise errors.invalid(rt.kind, name, [errors.forbidden_field(
                    "metadata.finalizers", "no new finalizers can be added if the object is "
                    "being deleted, found new finalizers "
                    + semantics.go_strings(sorted(added)))], rt.group)
        causes = semantics.validate_update(rt, new, old, opts.subresource)
        if causes:
            raise errors.invalid(rt.kind, name, causes, rt.group)
        if semantics.has_generation(rt) and semantics.spec_changed(old, new):
            new_meta["generation"] = int(old_meta.get("generation", 1)) + 1
        now = self.clock.now()
        if not opts.applied:
            new = semantics.record_managed(rt, old, new, opts.field_manager or DEFAULT_MANAGER,
                                           rfc3339(now), opts.subresource)
        new_meta = new["metadata"]
        new_meta.pop("resourceVersion", None)
        if semantics.same_object(old, new):
            return WriteResult(old)
        # Last finalizer gone from an object being deleted: it goes now.
        if (
            old_meta.get("deletionTimestamp")
            and not new_meta.get("finalizers")
            and not semantics.blocks_deletion(rt, new)
        ):
            if opts.dry_run:
                return WriteResult(new)
            try:
                gone = await self.store.delete(kv.key, kv.mod_revision)
            except ConflictError:
                raise _Retry() from None
            except KeyNotFoundError:
                raise errors.not_found(rt.plural, name, rt.group) from None
            last = jsonutil.loads(gone.value)
            await self._release(rt, last)
            await self._after(rt, "DELETED", last)
            return WriteResult(last)
        async def write() -> None:
            try:
                await self.store.update(kv.key, _encoder(new), kv.mod_revision)
            except ConflictError:
                raise _Retry() from None
            except KeyNotFoundError:
                raise errors.not_found(rt.plural, name, rt.group) from None

        if not await self._admit_and_write(rt, name, new, old, opts.dry_run, write):
            return WriteResult(new)
        await self._after(rt, "MODIFIED", new)
        return WriteResult(new)

    # ---- delete ---------------------------------------------------------------------
    async def delete(
        self,
        rt: ResourceType,
        namespace: str | None,
        name: str,
        opts: DeleteOptions = DeleteOptions(),
    ) -> DeleteResult:
        for _ in range(MAX_RETRIES):
            kv = await self.get_kv(rt, namespace, name)
            obj = self._decode(rt, kv)
            meta = obj["metadata"]
            if opts.precondition_uid and opts.precondition_uid != meta.get("uid"):
                raise errors.conflict(
                    rt.plural, name, rt.group,
                    f"Precondition failed: UID in precondition: {opts.precondition_uid}, "
                    f"UID in object meta: {meta.get('uid')}",
                )
            if (
                opts.precondition_resource_version
                and opts.precondition_resource_version != str(kv.mod_revision)
            ):
                raise errors.conflict(
                    rt.plural, name, rt.group,
                    "Precondition failed: ResourceVersion in precondition: "
                    f"{opts.precondition_resource_version}, ResourceVersion in object meta: "
                    f"{kv.mod_revision}",
                )
            plan = semantics.plan_delete(rt, obj, opts, self.clock.now())
            if opts.dry_run:
                return DeleteResult(plan.obj if plan.obj is not None else obj, plan.obj is None)
            try:
                if plan.obj is not None:
                    if semantics.same_object(obj, plan.obj):
                        return DeleteResult(obj, False)
                    plan.obj["metadata"].pop("resourceVersion", None)
                    await self.store.update(kv.key, _encoder(plan.obj), kv.mod_revision)
                    await self._after(rt, "MODIFIED", plan.obj)
                    return DeleteResult(plan.obj, False)
                gone = await self.store.delete(kv.key, kv.mod_revision)
            except ConflictError:
                continue
            except KeyNotFoundError:
                raise errors.not_found(rt.plural, name, rt.group) from None
            last = jsonutil.loads(gone.value)
            last["metadata"]["resourceVersion"] = str(gone.mod_revision)
            await self._release(rt, last)
            await self._after(rt, "DELETED", last)
            return DeleteResult(last, True)
        raise errors.conflict(rt.plural, name, rt.group)

    async def _release(self, rt: ResourceType, last: dict[str, Any]) -> None:
        if rt.kind == "Service" and rt.group == "":
            async with self._service_lock:
                self.services.released_by(None, last)

    # ---- watch ----------------------------------------------------------------------
    def watch(
        self,
        rt: ResourceType,
        namespace: str | None,
        resource_version: str,
        *,
        match: Callable[[dict[str, Any]], bool] | None = None,
        send_initial: bool | None = None,
    ) -> ResourceWatch:
        """(type, object) events, Kubernetes style.

        resourceVersion "" or "0": synthetic ADDED for every current object, then changes.
        A specific resourceVersion: changes after it; 410 Gone if it is compacted.
        With a selector, objects moving out of it are sent as DELETED and into it as ADDED.
        """
        return ResourceWatch(self, rt, namespace, resource_version, match,
                             bool(send_initial))

    def translate(self, rt: ResourceType, ev: Event,
                  match: Callable[[dict[str, Any]], bool] | None
                  ) -> tuple[str, dict[str, Any]] | None:
        """A store event as a watcher with `match` sees it, or None when it sees nothing."""
        obj = self._decode_event(rt, ev.type, ev.kv)
        if match is None:
            return ev.type, obj
        now_in = ev.type != "DELETED" and match(obj)
        was_in = ev.prev is not None and match(self._decode_event(rt, "PREV", ev.prev))
        if ev.type == "DELETED":
            return ("DELETED", obj) if was_in else None
        if now_in:
            return ("MODIFIED" if was_in else "ADDED"), obj
        return ("DELETED", obj) if was_in else None

    def revision(self) -> int:
        return self.store.revision()

    def now_plus(self, seconds: int) -> str:
        return rfc3339(self.clock.now() + timedelta(seconds=seconds))


class _Retry(Exception):
    """Internal: the compare-and-swap lost a race; read again and retry."""


def _encoder(obj: dict[str, Any]) -> Callable[[int], bytes]:
    def encode(revision: int) -> bytes:
        obj["metadata"]["resourceVersion"] = str(revision)
        return jsonutil.dumps(obj)

    return encode


def causes_message(causes: list[Cause]) -> str:
    return "; ".join(f"{c.field}: {c.message}" for c in causes)


def matches_all(*preds: Callable[[dict[str, Any]], bool] | None) -> Callable[
        [dict[str, Any]], bool] | None:
    active = [p for p in preds if p is not None]
    if not active:
        return None
    if len(active) == 1:
        return active[0]
    return lambda obj: all(p(obj) for p in active)


def obj_labels(obj: Mapping[str, Any]) -> Mapping[str, str]:
    labels: Mapping[str, str] = (obj.get("metadata") or {}).get("labels") or {}
    return labels


class ResourceWatch:
    """The events of one watch request (`Storage.watch`). `anext` waits for the next one;
    `take_ready` hands over, without awaiting, those already at hand. A watch stream that
    has one event drains what came with it in one go: a burst's events otherwise reached
    each watcher at one per turn of the API server's event loop, and a turn lasts as long
    as every request handler ready in it."""

    def __init__(self, storage: Storage, rt: ResourceType, namespace: str | None,
                 resource_version: str, match: Callable[[dict[str, Any]], bool] | None,
                 send_initial: bool) -> None:
        self._storage = storage
        self._rt = rt
        self._prefix = rt.key_prefix(namespace)
        self._rv = resource_version
        self._match = match
        self._send_initial = send_initial
        self._initial: deque[tuple[str, dict[str, Any]]] = deque()
        self._watch: EventStream | None = None
        self._started = False

    def __aiter__(self) -> ResourceWatch:
        return self

    async def _start(self) -> None:
        store = self._storage.store
        if self._rv in ("", "0") or self._send_initial:
            listed = await store.list(self._prefix)
            start = listed.revision
            for kv in listed.items:
                obj = self._storage._decode(self._rt, kv)
                if self._match is None or self._match(obj):
                    self._initial.append(("ADDED", obj))
        else:
            try:
                start = int(self._rv)
            except ValueError:
                raise errors.bad_request(f'invalid resource version "{self._rv}"') from None
            if start < store.compacted_revision():
                raise errors.gone(
                    f"too old resource version: {start} ({store.compacted_revision() + 1})")
        self._watch = store.watch(self._prefix, start)

    async def __anext__(self) -> tuple[str, dict[str, Any]]:
        if not self._started:
            self._started = True
            await self._start()
        if self._initial:
            return self._initial.popleft()
        assert self._watch is not None
        while True:
            try:
                ev = await self._watch.__anext__()
            except CompactedError as exc:
                raise errors.gone(f"too old resource version: {exc.requested} "
                                  f"({exc.compacted + 1})") from exc
            out = self._storage.translate(self._rt, ev, self._match)
            if out is not None:
                return out

    def take_ready(self, limit: int) -> list[tuple[str, dict[str, Any]]]:
        """Up to `limit` events at hand now, in order (possibly none)."""
        out: list[tuple[str, dict[str, Any]]] = []
        while self._initial and len(out) < limit:
            out.append(self._initial.popleft())
        while self._watch is not None and len(out) < limit:
            evs = self._watch.take_ready(limit - len(out))
            if not evs:
                break
            for ev in evs:
                item = self._storage.translate(self._rt, ev, self._match)
                if item is not None:
                    out.append(item)
        return out

    async def aclose(self) -> None:
        if self._watch is not None:
            await self._watch.aclose()
