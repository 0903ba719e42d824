"""RBAC authorization for every request, over an in-memory policy kept in step with writes.

The four RBAC kinds are loaded once at start; every later write to them (seen through
the storage hook) marks the policy stale, and the next check rebuilds it. Checks are
then index lookups (see `podnet.api.rbac.Policy`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from podnet.api import rbac
from podnet.apiserver.authn import UserInfo
from podnet.apiserver.request import RequestInfo
from podnet.util import jsonutil

if TYPE_CHECKING:
    from podnet.apiserver.storage import Storage

_KINDS = (("Role", "roles"), ("ClusterRole", "clusterroles"), ("RoleBinding", "rolebindings"),
          ("ClusterRoleBinding", "clusterrolebindings"))


@dataclass(frozen=True, slots=True)
class AuthzDecision:
    allowed: bool
    message: str = ""
    reason: str = ""


def attributes(user: UserInfo, info: RequestInfo) -> rbac.Attributes:
    if not info.resource_request:
        return rbac.Attributes(user=user, verb=info.verb, path=info.path,
                               resource_request=False)
    return rbac.Attributes(
        user=user,
        verb=info.verb,
        namespace=info.namespace,
        api_group=info.group,
        resource=info.resource,
        subresource=info.subresource,
        name=info.name,
    )


class Authorizer:
    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self._objects: dict[tuple[str, str, str], dict[str, Any]] = {}
        self._policy: rbac.Policy | None = None

    async def load(self, storage: Storage) -> None:
        for kind, plural in _KINDS:
            rt = storage.registry.get("rbac.authorization.k8s.io", "v1", plural)
            assert rt is not None
            listed = await storage.store.list(rt.key_prefix())
            for kv in listed.items:
                self.observe(kind, "ADDED", jsonutil.loads(kv.value))

    def observe(self, kind: str, event: str, obj: dict[str, Any]) -> None:
        meta = obj.get("metadata") or {}
        key = (kind, meta.get("namespace") or "", meta.get("name") or "")
        if event == "DELETED":
            self._objects.pop(key, None)
        else:
            obj = dict(obj)
            obj.setdefault("kind", kind)
            self._objects[key] = obj
        self._policy = None

    @property
    def policy(self) -> rbac.Policy:
        if self._policy is None:
            objs = list(self._objects.values())
            crs = [o for o in objs if o.get("kind") == "ClusterRole"]
            others = [o for o in objs if o.get("kind") != "ClusterRole"]
            self._policy = rbac.Policy.from_objects([*rbac.aggregate_objects(crs), *others])
        return self._policy

    def check(self, attrs: rbac.Attributes) -> AuthzDecision:
        if not self.enabled:
            return AuthzDecision(True)
        d = rbac.authorize(attrs, self.policy)
        if d.allowed:
            return AuthzDecision(True, reason=d.reason)
        return AuthzDecision(False, rbac.forbidden_message(attrs, d.reason), d.reason)

    def authorize(self, user: UserInfo, info: RequestInfo) -> AuthzDecision:
        return self.check(attributes(user, info))

    def rules_for(self, user: UserInfo, namespace: str) -> rbac.RulesReview:
        return rbac.rules_for(user, namespace, self.policy)
