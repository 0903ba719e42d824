"""Shared helpers for the HTTP-level API server tests (in-process, memory store)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from podnet.testing.apiserver import InProcessApi

NS = "/api/v1/namespaces/default"
CONFIGMAPS = f"{NS}/configmaps"
SERVICES = f"{NS}/services"
PODS = f"{NS}/pods"
DEPLOYMENTS = "/apis/apps/v1/namespaces/default/deployments"
CLUSTERROLES = "/apis/rbac.authorization.k8s.io/v1/clusterroles"
TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io"


def configmap(name: str, labels: dict[str, str] | None = None,
              **data: str) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if labels:
        meta["labels"] = labels
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": dict(data)}


def service(name: str, *ports: int, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
            "spec": {"selector": {"app": name},
                     "ports": [{"port": p} for p in (ports or (80,))], **spec}}


def deployment(name: str, replicas: int = 1) -> dict[str, Any]:
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels},
                         "spec": {"containers": [{"name": "c", "image": "busybox"}]}},
        },
    }


def pod(name: str, node: str = "", phase: str = "") -> dict[str, Any]:
    obj: dict[str, Any] = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
                           "spec": {"containers": [{"name": "c", "image": "busybox"}]}}
    if node:
        obj["spec"]["nodeName"] = node
    if phase:
        obj["status"] = {"phase": phase}
    return obj


def status_of(body: Any) -> tuple[str, str]:
    """(reason, message) of a Status body."""
    assert isinstance(body, dict) and body.get("kind") == "Status", body
    return body["reason"], body["message"]


async def created(api: InProcessApi, path: str, obj: dict[str, Any]) -> dict[str, Any]:
    code, body, _ = await api.post(path, obj)
    assert code == 201, body
    out: dict[str, Any] = body
    return out


async def list_rv(api: InProcessApi, path: str) -> str:
    code, body, _ = await api.get(path)
    assert code == 200, body
    return str(body["metadata"]["resourceVersion"])


async def names(api: InProcessApi, path: str) -> list[str]:
    code, body, _ = await api.get(path)
    assert code == 200, body
    return [o["metadata"]["name"] for o in body["items"]]


async def watch_events(api: InProcessApi, path: str, query: str, count: int | None = None,
                       token: str | None = "admin-token",
                       headers: dict[str, str] | None = None,
                       ) -> tuple[int, list[dict[str, Any]]]:
    """Events of a watch: until `count` arrived (then a short grace for extras), the
    stream ends, or it is idle for a moment. The connection is closed afterwards."""
    hdrs = dict(headers or {})
    if token:
        hdrs["Authorization"] = f"Bearer {token}"
    sep = "&" if "?" in path else "?"
    # A timeoutSeconds in `query` comes first and wins over this safety net.
    url = f"{api.base}{path}{sep}watch=true&{query}&timeoutSeconds=10"
    events: list[dict[str, Any]] = []
    async with api.session.get(url, headers=hdrs) as resp:
        if resp.status != 200:
            return resp.status, [json.loads(await resp.read())]
        while True:
            wait = 0.3 if count is None or len(events) >= count else 5.0
            try:
                line = await asyncio.wait_for(resp.content.readline(), wait)
            except TimeoutError:
                break
            if not line:
                break
            events.append(json.loads(line))
    return resp.status, events
