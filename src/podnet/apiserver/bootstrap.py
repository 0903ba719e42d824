"""What a fresh control plane must hold before anyone talks to it.

The system namespaces and the default RBAC roles and bindings, created when missing
(and default roles brought back to their defaults when their autoupdate annotation
says so), exactly as kube-apiserver's bootstrap controllers do on every start.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from podnet.api import errors
from podnet.apiserver import bootstrap_rbac
from podnet.apiserver.storage import WriteOptions

if TYPE_CHECKING:
    from podnet.apiserver.app import ApiServer

SYSTEM_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
MANAGER = "kube-apiserver"
_AUTOUPDATE = "rbac.authorization.kubernetes.io/autoupdate"


async def run(server: ApiServer) -> None:
    storage = server.storage
    ns_rt = storage.registry.get("", "v1", "namespaces")
    assert ns_rt is not None
    opts = WriteOptions(field_manager=MANAGER, field_validation="Ignore")
    for name in SYSTEM_NAMESPACES:
        try:
            await storage.get(ns_rt, None, name)
        except errors.StatusError:
            await _create(server, ns_rt.group, ns_rt.plural,
                          {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}},
                          opts)
    for obj in bootstrap_rbac.default_objects():
        plural = obj["kind"].lower() + "s"
        rt = storage.registry.get("rbac.authorization.k8s.io", "v1", plural)
        assert rt is not None
        name = obj["metadata"]["name"]
        try:
            live = await storage.get(rt, None, name)
        except errors.StatusError:
            await _create(server, rt.group, rt.plural, obj, opts)
            continue
        if (live.get("metadata", {}).get("annotations") or {}).get(_AUTOUPDATE) == "true" \
                and _body(live) != _body(obj):

            def reset(cur: dict[str, Any], want: dict[str, Any] = obj) -> dict[str, Any]:
                for key in ("rules", "aggregationRule", "subjects", "roleRef"):
                    if key in want:
                        cur[key] = want[key]
                return cur

            await storage.modify(rt, None, name, reset, opts)


def _body(obj: dict[str, Any]) -> dict[str, Any]:
    return {k: obj.get(k) for k in ("rules", "aggregationRule", "subjects", "roleRef")
            if k in obj}


async def _create(server: ApiServer, group: str, plural: str, obj: dict[str, Any],
                  opts: WriteOptions) -> None:
    rt = server.storage.registry.get(group, "v1", plural)
    assert rt is not None
    try:
        await server.storage.create(rt, None, dict(obj), opts)
    except errors.StatusError as err:
        if err.reason != "AlreadyExists":
            raise
