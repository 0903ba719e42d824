"""Informers: list, then watch from where the list left off, into an indexed cache.

The loop is client-go's reflector: list (paged) → replace the cache → watch from the
list's resourceVersion → apply events, remembering the last resourceVersion seen (object
or BOOKMARK) → when the watch ends, watch again from there → on 410 Expired, list again.
Other errors back off exponentially (the sleep is injected, so tests never wait).

Handlers (`on_add`, `on_update`, `on_delete`) are plain callables run inline; they should
be cheap (enqueue a key), because the cache must not fall behind the stream.
"""

from __future__ import annotations

import asyncio
import builtins
import logging
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from typing import Any

from podnet.api.errors import StatusError
from podnet.api.resources import ResourceType
from podnet.client.rest import JSON, ApiClient

log = logging.getLogger(__name__)

IndexFn = Callable[[JSON], Iterable[str]]
AddHandler = Callable[[JSON], None]
UpdateHandler = Callable[[JSON, JSON], None]
DeleteHandler = Callable[[JSON], None]
Sleep = Callable[[float], Awaitable[None]]


def object_key(obj: Mapping[str, Any]) -> str:
    """`ns/name` for namespaced objects, `name` for cluster-scoped ones (client-go's
    MetaNamespaceKeyFunc), so keys round-trip through `split_key`."""
    meta = obj.get("metadata") or {}
    ns = meta.get("namespace")
    name = str(meta.get("name", ""))
    return f"{ns}/{name}" if ns else name


def split_key(key: str) -> tuple[str | None, str]:
    ns, sep, name = key.partition("/")
    return (ns, name) if sep else (None, ns)


def by_namespace(obj: JSON) -> list[str]:
    """Index function: the object's namespace."""
    ns = (obj.get("metadata") or {}).get("namespace")
    return [str(ns)] if ns else []


def by_label(label: str) -> IndexFn:
    """Index function factory: the value of one label (e.g. `kubernetes.io/service-name`)."""

    def index(obj: JSON) -> list[str]:
        value = ((obj.get("metadata") or {}).get("labels") or {}).get(label)
        return [str(value)] if value is not None else []

    return index


def by_owner_uid(obj: JSON) -> list[str]:
    """Index function: the uid of every owner (the garbage collector's reverse edges)."""
    refs = (obj.get("metadata") or {}).get("ownerReferences") or []
    return [str(r["uid"]) for r in refs if r.get("uid")]


def by_controller_uid(obj: JSON) -> list[str]:
    """Index function: the uid of the controlling owner, if any."""
    refs = (obj.get("metadata") or {}).get("ownerReferences") or []
    return [str(r["uid"]) for r in refs if r.get("controller") and r.get("uid")]


def by_uid(obj: JSON) -> list[str]:
    uid = (obj.get("metadata") or {}).get("uid")
    return [str(uid)] if uid else []


class Cache:
    """Objects by key, plus named secondary indexes kept up to date on every change.

    Objects handed out are the cache's own: treat them as read-only (deep-copy before
    changing anything).
    """

    def __init__(self, indexers: Mapping[str, IndexFn] | None = None) -> None:
        self._items: dict[str, JSON] = {}
        self._indexers: dict[str, IndexFn] = dict(indexers or {})
        self._indexes: dict[str, dict[str, set[str]]] = {n: {} for n in self._indexers}

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: object) -> bool:
        return key in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._items))

    def add_index(self, name: str, fn: IndexFn) -> None:
        """Add an index (idempotent by name); existing objects are indexed at once."""
        if name in self._indexers:
            return
        self._indexers[name] = fn
        index: dict[str, set[str]] = {}
        for key, obj in self._items.items():
            for value in fn(obj):
                index.setdefault(value, set()).add(key)
        self._indexes[name] = index

    def get(self, key: str) -> JSON | None:
        return self._items.get(key)

    def get_by(self, namespace: str | None, name: str) -> JSON | None:
        return self._items.get(f"{namespace}/{name}" if namespace else name)

    def keys(self) -> list[str]:
        return list(self._items)

    def list(self, namespace: str | None = None) -> builtins.list[JSON]:
        if namespace is None:
            return list(self._items.values())
        prefix = namespace + "/"
        return [obj for key, obj in self._items.items() if key.startswith(prefix)]

    def by_index(self, name: str, value: str) -> builtins.list[JSON]:
        keys = self._indexes[name].get(value, set())
        return [self._items[k] for k in sorted(keys)]

    def index_keys(self, name: str, value: str) -> builtins.list[str]:
        return sorted(self._indexes[name].get(value, set()))

    def upsert(self, obj: JSON) -> JSON | None:
        """Store `obj`; return the previous version, if any."""
        key = object_key(obj)
        old = self._items.get(key)
        if old is not None:
            self._unindex(key, old)
        self._items[key] = obj
        for name, fn in self._indexers.items():
            for value in fn(obj):
                self._indexes[name].setdefault(value, set()).add(key)
        return old

    def remove(self, key: str) -> JSON | None:
        old = self._items.pop(key, None)
        if old is not None:
            self._unindex(key, old)
        return old

    def _unindex(self, key: str, obj: JSON) -> None:
        for name, fn in self._indexers.items():
            index = self._indexes[name]
            for value in fn(obj):
                keys = index.get(value)
                if keys is not None:
                    keys.discard(key)
                    if not keys:
                        del index[value]


class Informer:
    """List+watch one resource type (optionally one namespace / label selector) into a
    `Cache`, calling handlers on changes. `run()` until cancelled; `synced` is set after
    the first complete list."""

    def __init__(
        self,
        client: ApiClient,
        rt: ResourceType,
        namespace: str | None = None,
        label_selector: str | None = None,
        *,
        field_selector: str | None = None,
        sleep: Sleep = asyncio.sleep,
        backoff_base: float = 0.5,
        backoff_cap: float = 30.0,
        watch_timeout: int = 300,
        page_size: int = 500,
    ) -> None:
        self.client = client
        self.rt = rt
        self.namespace = namespace
        self.label_selector = label_selector
        self.field_selector = field_selector
        self.cache = Cache({"namespace": by_namespace})
        self.synced = asyncio.Event()
        self.resource_version = ""
        self._sleep = sleep
        self._backoff_base = backoff_base
        self._backoff_cap = backoff_cap
        self._watch_timeout = watch_timeout
        self._page_size = page_size
        self._on_add: list[AddHandler] = []
        self._on_update: list[UpdateHandler] = []
        self._on_delete: list[DeleteHandler] = []
        self.lists = 0  # how many times we listed (observability; tests check re-lists)

    # -- handlers -------------------------------------------------------------------

    def on_add(self, fn: AddHandler) -> None:
        self._on_add.append(fn)
        for obj in self.cache.list():  # late registration still sees what is known
            fn(obj)

    def on_update(self, fn: UpdateHandler) -> None:
        self._on_update.append(fn)

    def on_delete(self, fn: DeleteHandler) -> None:
        self._on_delete.append(fn)

    def on_change(self, fn: AddHandler) -> None:
        """One handler for all three: called with the new (or, on delete, last) object."""
        self.on_add(fn)
        self.on_update(lambda _old, new: fn(new))
        self.on_delete(fn)

    async def wait_synced(self) -> None:
        await self.synced.wait()

    # -- the loop -------------------------------------------------------------------

    async def run(self) -> None:
        failures = 0
        empty = 0
        need_list = True
        while True:
            try:
                if need_list:
                    await self._list()
                    need_list = False
                if await self._watch() == 0:
                    # A server that keeps ending watches at once must not make us spin.
                    empty += 1
                    if empty > 1:
                        await self._sleep(self._delay(empty - 1))
                else:
                    empty = 0
                failures = 0
            except asyncio.CancelledError:
                raise
            except StatusError as err:
                if err.code == 410:
                    log.info("component=informer resource=%s event=expired relist", self.rt.plural)
                    need_list = True
                    failures = 0
                    continue
                failures += 1
                log.warning(
                    "component=informer resource=%s event=error code=%s error=%s",
                    self.rt.plural, err.code, err,
                )
                await self._sleep(self._delay(failures))
            except Exception as err:
                failures += 1
                log.warning(
                    "component=informer resource=%s event=error error=%r", self.rt.plural, err
                )
                await self._sleep(self._delay(failures))
                # Without a resourceVersion there is nothing to resume from.
                need_list = need_list or not self.resource_version

    def _delay(self, failures: int) -> float:
        return float(min(self._backoff_cap, self._backoff_base * 2 ** (failures - 1)))

    async def _list(self) -> None:
        result = await self.client.list_all(
            self.rt,
            self.namespace,
            label_selector=self.label_selector,
            field_selector=self.field_selector,
            page_size=self._page_size,
        )
        self.lists += 1
        self.replace(result.items, result.resource_version)

    def replace(self, items: Iterable[JSON], resource_version: str) -> None:
        """Make the cache equal to a fresh list, firing add/update/delete for the delta
        (objects deleted while we were not watching get their delete call here)."""
        fresh = {object_key(o): o for o in items}
        for key in [k for k in self.cache if k not in fresh]:
            old = self.cache.remove(key)
            if old is not None:
                self._fire_delete(old)
        for obj in fresh.values():
            old = self.cache.upsert(obj)
            if old is None:
                self._fire_add(obj)
            elif _rv(old) != _rv(obj):
                self._fire_update(old, obj)
        self.resource_version = resource_version
        self.synced.set()

    async def _watch(self) -> int:
        """Follow one watch until the server ends it; return how many events came."""
        count = 0
        async for etype, obj in self.client.watch(
            self.rt,
            self.namespace,
            resource_version=self.resource_version,
            label_selector=self.label_selector,
            field_selector=self.field_selector,
            timeout_seconds=self._watch_timeout,
            allow_bookmarks=True,
        ):
            self.apply(etype, obj)
            count += 1
        return count

    def apply(self, etype: str, obj: JSON) -> None:
        """Apply one watch event to the cache and fire handlers."""
        rv = _rv(obj)
        if etype in ("ADDED", "MODIFIED"):
            old = self.cache.upsert(obj)
            if old is None:
                self._fire_add(obj)
            else:
                self._fire_update(old, obj)
        elif etype == "DELETED":
            # The event carries the object's final state, which is what handlers want.
            self.cache.remove(object_key(obj))
            self._fire_delete(obj)
        if rv:
            self.resource_version = rv

    def _fire_add(self, obj: JSON) -> None:
        for fn in self._on_add:
            _safely(fn, obj)

    def _fire_update(self, old: JSON, new: JSON) -> None:
        for fn in self._on_update:
            _safely(fn, old, new)

    def _fire_delete(self, obj: JSON) -> None:
        for fn in self._on_delete:
            _safely(fn, obj)


def _safely(fn: Callable[..., None], *args: JSON) -> None:
    """A failing handler must not kill the informer loop (others still need events)."""
    try:
        fn(*args)
    except Exception:
        log.exception("component=informer event=handler-error")


def _rv(obj: Mapping[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("resourceVersion", ""))


class SharedInformers:
    """One informer per (resource type, namespace), shared by every controller that asks.

    Controllers call `informer(rt)` while being constructed, add indexes and handlers,
    then the owner calls `start()` and `wait_synced()`.
    """

    def __init__(self, client: ApiClient, *, sleep: Sleep = asyncio.sleep) -> None:
        self.client = client
        self._sleep = sleep
        self._informers: dict[tuple[str, str, str, str], Informer] = {}
        self._tasks: list[asyncio.Task[None]] = []

    def informer(self, rt: ResourceType, namespace: str | None = None) -> Informer:
        key = (rt.group, rt.version, rt.plural, namespace or "")
        inf = self._informers.get(key)
        if inf is None:
            inf = Informer(self.client, rt, namespace, sleep=self._sleep)
            self._informers[key] = inf
        return inf

    def all(self) -> list[Informer]:
        return list(self._informers.values())

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        # Informers are started in creation order, so a second start() only picks up
        # the ones created since the first.
        running = len(self._tasks)
        for inf in list(self._informers.values())[running:]:
            self._tasks.append(loop.create_task(inf.run(), name=f"informer-{inf.rt.plural}"))

    async def wait_synced(self) -> None:
        await asyncio.gather(*(inf.wait_synced() for inf in self._informers.values()))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
