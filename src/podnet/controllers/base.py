"""What every reconciler shares: a work queue of keys, workers, and the dependencies
(client, shared informers, clock, event recorder) handed in by the manager."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from podnet.api.resources import Registry, ResourceType
from podnet.client.informer import SharedInformers, object_key
from podnet.client.rest import ApiClient
from podnet.client.workqueue import WorkQueue, run_worker
from podnet.controllers.common import Clock, controller_ref, namespace_of
from podnet.controllers.events import EventRecorder

Sleep = Callable[[float], Awaitable[None]]

_REGISTRY = Registry.builtin()


def builtin(group: str, version: str, plural: str) -> ResourceType:
    """A built-in resource type, looked up once (fails loudly on a typo)."""
    rt = _REGISTRY.get(group, version, plural)
    if rt is None:
        raise LookupError(f"no built-in resource {plural}.{group}/{version}")
    return rt


PODS = builtin("", "v1", "pods")
SERVICES = builtin("", "v1", "services")
ENDPOINTS = builtin("", "v1", "endpoints")
NAMESPACES = builtin("", "v1", "namespaces")
SERVICEACCOUNTS = builtin("", "v1", "serviceaccounts")
NODES = builtin("", "v1", "nodes")
DEPLOYMENTS = builtin("apps", "v1", "deployments")
REPLICASETS = builtin("apps", "v1", "replicasets")
ENDPOINTSLICES = builtin("discovery.k8s.io", "v1", "endpointslices")


@dataclass
class Deps:
    """Everything a controller may use; nothing else (components talk only through the
    API: no store, no apiserver internals)."""

    client: ApiClient
    informers: SharedInformers
    clock: Clock
    recorder: EventRecorder
    sleep: Sleep = asyncio.sleep


class Controller:
    """A reconciler: handlers turn events into keys; `sync(key)` makes the world match."""

    name = "controller"

    def __init__(self, deps: Deps) -> None:
        self.deps = deps
        self.client = deps.client
        self.clock = deps.clock
        self.recorder = deps.recorder
        self.queue = WorkQueue(sleep=deps.sleep)

    async def sync(self, key: str) -> None:
        raise NotImplementedError

    async def run(self, workers: int = 1) -> None:
        await asyncio.gather(
            *(run_worker(self.queue, self.sync, self.name) for _ in range(workers))
        )

    def enqueue(self, obj: Mapping[str, Any]) -> None:
        self.queue.add(object_key(obj))

    def enqueue_controller(self, obj: Mapping[str, Any], kind: str) -> None:
        """Enqueue the controlling owner of `obj` if it is of `kind`."""
        ref = controller_ref(obj)
        if ref is not None and ref.get("kind") == kind:
            self.queue.add(f"{namespace_of(obj)}/{ref.get('name')}")
