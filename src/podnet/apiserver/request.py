"""Parse an API request path and query into what it asks for (pure).

`/api/v1/namespaces/default/pods/p/log?follow=true` becomes a `RequestInfo` with verb,
resource, subresource, namespace and name — the same attributes RBAC and audit use in
Kubernetes (k8s.io/apiserver's RequestInfoFactory).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RequestInfo:
    resource_request: bool
    path: str
    verb: str  # RBAC verb: get list watch create update patch delete deletecollection
    api_prefix: str = ""  # "api" | "apis"
    group: str = ""
    version: str = ""
    namespace: str = ""
    resource: str = ""
    subresource: str = ""
    name: str = ""
    parts: tuple[str, ...] = ()


_HTTP_TO_VERB = {
    "POST": "create",
    "PUT": "update",
    "PATCH": "patch",
    "DELETE": "delete",
    "GET": "get",
    "HEAD": "get",
}


def parse(method: str, path: str, query: dict[str, str]) -> RequestInfo:
    """RequestInfo for any path; non-resource paths keep the lower-case HTTP verb."""
    parts = [p for p in path.strip("/").split("/") if p]
    if not parts or parts[0] not in ("api", "apis"):
        return RequestInfo(False, path, method.lower())
    prefix = parts[0]
    rest = parts[1:]
    if prefix == "api":
        if not rest:
            return RequestInfo(False, path, method.lower())
        group, version, rest = "", rest[0], rest[1:]
    else:
        if len(rest) < 2:
            return RequestInfo(False, path, method.lower())
        group, version, rest = rest[0], rest[1], rest[2:]
    if not rest:
        return RequestInfo(False, path, method.lower())
    verb = _HTTP_TO_VERB.get(method.upper(), method.lower())
    watch_prefix = False
    if rest[0] == "watch":
        watch_prefix = True
        rest = rest[1:]
    namespace = ""
    if rest and rest[0] == "namespaces" and len(rest) >= 3 and rest[2] not in (
        "status",
        "finalize",
    ):
        namespace = rest[1]
        rest = rest[2:]
    elif rest and rest[0] == "namespaces" and len(rest) >= 2:
        # The namespaces resource itself: /namespaces/<name>[/status|/finalize]
        namespace = rest[1]
    resource = rest[0] if rest else ""
    name = rest[1] if len(rest) > 1 else ""
    subresource = rest[2] if len(rest) > 2 else ""
    if method.upper() in ("GET", "HEAD"):
        if not name:
            verb = "list"
        if watch_prefix or query.get("watch") in ("true", "1"):
            verb = "watch"
    elif method.upper() == "DELETE" and not name:
        verb = "deletecollection"
    return RequestInfo(
        True,
        path,
        verb,
        prefix,
        group,
        version,
        namespace,
        resource,
        subresource,
        name,
        tuple(rest[3:]),
    )
