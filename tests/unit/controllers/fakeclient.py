"""An in-memory stand-in for ApiClient, enough for reconciler tests: it keeps objects,
assigns names/uids/resourceVersions like the API server, enforces optimistic concurrency
and records every write as `verb plural ns/name`."""

from __future__ import annotations

import asyncio
import copy
import itertools
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

from podnet.api.errors import already_exists, conflict, not_found
from podnet.api.resources import ResourceType
from podnet.client.rest import ListResult, WatchEvent


class FixedClock:
    def __init__(self, now: datetime = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)) -> None:
        self.t = now

    def now(self) -> datetime:
        return self.t


class FakeClient:
    def __init__(self) -> None:
        self.objects: dict[tuple[str, str, str], dict[str, Any]] = {}
        self.writes: list[str] = []
        self.rv = 100
        self._seq = itertools.count(1)

    def _key(self, rt: ResourceType, ns: str | None, name: str) -> tuple[str, str, str]:
        return (rt.plural, (ns or "") if rt.namespaced else "", name)

    def _log(self, verb: str, rt: ResourceType, ns: str | None, name: str) -> None:
        self.writes.append(f"{verb} {rt.plural} {ns + '/' if ns and rt.namespaced else ''}{name}")

    def put(self, rt: ResourceType, obj: dict[str, Any]) -> dict[str, Any]:
        """Seed an object as if it had been created earlier."""
        obj = copy.deepcopy(obj)
        m = obj.setdefault("metadata", {})
        self.rv += 1
        m.setdefault("uid", f"uid-{m['name']}")
        m["resourceVersion"] = str(self.rv)
        obj.setdefault("kind", rt.kind)
        obj.setdefault("apiVersion", rt.api_version)
        self.objects[self._key(rt, m.get("namespace"), m["name"])] = obj
        return copy.deepcopy(obj)

    async def warm(self, connections: int) -> None:
        """No connections to open."""

    def stored(self, rt: ResourceType) -> list[dict[str, Any]]:
        return [o for (p, _, _), o in self.objects.items() if p == rt.plural]

    async def get(self, rt: ResourceType, name: str, namespace: str | None = None,
                  **_: Any) -> dict[str, Any]:
        obj = self.objects.get(self._key(rt, namespace, name))
        if obj is None:
            raise not_found(rt.plural, name, rt.group)
        return copy.deepcopy(obj)

    async def get_path(self, path: str, params: Any = None) -> dict[str, Any]:
        raise not_found("discovery", path)

    async def list_all(self, rt: ResourceType, namespace: str | None = None,
                       **_: Any) -> ListResult:
        items = [copy.deepcopy(o) for (p, ns, _), o in sorted(self.objects.items())
                 if p == rt.plural and (namespace is None or ns == namespace)]
        return ListResult(items, str(self.rv), "")

    async def create(self, rt: ResourceType, obj: Any, namespace: str | None = None,
                     **_: Any) -> dict[str, Any]:
        obj = copy.deepcopy(dict(obj))
        m = obj["metadata"]
        if not m.get("name"):
            m["name"] = f"{m.pop('generateName')}{next(self._seq):05d}"
        ns = namespace or m.get("namespace")
        if self._key(rt, ns, m["name"]) in self.objects:
            raise already_exists(rt.plural, m["name"], rt.group)
        m["uid"] = f"uid-{m['name']}"
        m["creationTimestamp"] = "2024-05-01T12:00:00Z"
        self._log("create", rt, ns, m["name"])
        return self.put(rt, obj)

    async def update(self, rt: ResourceType, obj: Any, *, subresource: str | None = None,
                     **_: Any) -> dict[str, Any]:
        m = obj["metadata"]
        key = self._key(rt, m.get("namespace"), m["name"])
        current = self.objects.get(key)
        if current is None:
            raise not_found(rt.plural, m["name"], rt.group)
        if m.get("resourceVersion") != current["metadata"]["resourceVersion"]:
            raise conflict(rt.plural, m["name"], rt.group)
        self._log("update" + (f"/{subresource}" if subresource else ""), rt,
                  m.get("namespace"), m["name"])
        return self.put(rt, dict(obj))

    async def update_status(self, rt: ResourceType, obj: Any) -> dict[str, Any]:
        return await self.update(rt, obj, subresource="status")

    async def patch(self, rt: ResourceType, name: str, patch: Any,
                    namespace: str | None = None, **_: Any) -> dict[str, Any]:
        current = await self.get(rt, name, namespace)
        for k, v in patch.items():
            if isinstance(v, dict):
                current.setdefault(k, {}).update(v)
            else:
                current[k] = v
        self._log("patch", rt, namespace, name)
        return self.put(rt, current)

    async def delete(self, rt: ResourceType, name: str, namespace: str | None = None,
                     **_: Any) -> dict[str, Any]:
        obj = self.objects.pop(self._key(rt, namespace, name), None)
        if obj is None:
            raise not_found(rt.plural, name, rt.group)
        self._log("delete", rt, namespace, name)
        return obj

    async def watch(self, rt: ResourceType, namespace: str | None = None,
                    **_: Any) -> AsyncIterator[WatchEvent]:
        """A watch that never delivers: tests that run informers see only the list."""
        await asyncio.Event().wait()
        yield WatchEvent("BOOKMARK", {})  # pragma: no cover - makes this a generator
