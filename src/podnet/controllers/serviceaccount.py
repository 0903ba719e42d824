"""A `default` ServiceAccount in every active namespace (pkg/controller/serviceaccount),
recreated if someone deletes it. Keys are namespace names."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from podnet.api.errors import StatusError
from podnet.controllers.base import NAMESPACES, SERVICEACCOUNTS, Controller, Deps
from podnet.controllers.common import JSON, is_deleting, name_of, namespace_of

DEFAULT = "default"


def desired_service_accounts(ns: Mapping[str, Any]) -> list[JSON]:
    """What an active namespace must contain; nothing for a terminating one (creating
    into it would fail, and it is being emptied anyway)."""
    if is_deleting(ns) or (ns.get("status") or {}).get("phase") == "Terminating":
        return []
    return [{
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {"name": DEFAULT, "namespace": name_of(ns)},
    }]


class ServiceAccountController(Controller):
    name = "serviceaccount-controller"

    def __init__(self, deps: Deps) -> None:
        super().__init__(deps)
        self.namespaces = deps.informers.informer(NAMESPACES)
        self.serviceaccounts = deps.informers.informer(SERVICEACCOUNTS)
        self.namespaces.on_add(self.enqueue)
        self.namespaces.on_update(lambda _old, new: self.enqueue(new))
        self.serviceaccounts.on_delete(self._sa_deleted)

    def _sa_deleted(self, sa: JSON) -> None:
        if name_of(sa) == DEFAULT:
            self.queue.add(namespace_of(sa))

    async def sync(self, key: str) -> None:
        ns = self.namespaces.cache.get(key)
        if ns is None:
            return
        for sa in desired_service_accounts(ns):
            if self.serviceaccounts.cache.get_by(key, name_of(sa)) is not None:
                continue
            try:
                await self.client.create(SERVICEACCOUNTS, sa)
            except StatusError as err:
                if err.reason != "AlreadyExists":
                    raise
