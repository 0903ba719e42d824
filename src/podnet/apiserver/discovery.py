"""Discovery documents built from the resource Registry: aggregated and legacy.

kubectl 1.32 asks `/api` and `/apis` for aggregated discovery (`APIGroupDiscoveryList`,
two requests in total) but still fetches the legacy per-group-version
`APIResourceList` for `auth can-i`, and the Python client's DynamicClient uses only the
legacy forms. So both are served, from the same Registry, by the pure builders here.

Facts that matter to clients (measured, see shared/reference/kubectl-wire.md §1):
a resource without `responseKind` is silently dropped; `shortNames` make `get po` work;
`categories: ["all"]` make `get all` work; the first version listed is the preferred one.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any

from podnet.api.resources import Registry, ResourceType, Subresource

AGGREGATED_V2 = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
AGGREGATED_V2BETA1 = (
    "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList"
)
# The content type is what tells client-go the body is aggregated: with a plain
# `application/json` it parses the same bytes as APIVersions / APIGroupList.
AGGREGATED_MEDIA_TYPES = {"v2": AGGREGATED_V2, "v2beta1": AGGREGATED_V2BETA1}


def _parse_media_range(item: str) -> tuple[str, dict[str, str]]:
    base, *params = (p.strip() for p in item.split(";"))
    parsed: dict[str, str] = {}
    for p in params:
        key, _, value = p.partition("=")
        parsed[key.strip().lower()] = value.strip().strip('"')
    return base.lower(), parsed


def negotiate_aggregated(accept: str | None) -> str | None:
    """The aggregated media type to answer with, or None for the legacy JSON forms.

    Clients list their preference in order (kubectl: v2, then v2beta1, then plain JSON);
    honour `q` weights when given, otherwise the order. A plain `application/json` or
    `*/*` ahead of the aggregated types means the client wants legacy discovery.
    """
    if not accept:
        return None
    ranked: list[tuple[float, int, str | None]] = []
    for index, item in enumerate(accept.split(",")):
        if not item.strip():
            continue
        base, params = _parse_media_range(item)
        try:
            q = float(params.get("q", "1"))
        except ValueError:
            q = 1.0
        if q <= 0:
            continue
        choice: str | None = None
        if (
            base == "application/json"
            and params.get("g") == "apidiscovery.k8s.io"
            and params.get("as") == "APIGroupDiscoveryList"
        ):
            choice = AGGREGATED_MEDIA_TYPES.get(params.get("v", ""))
            if choice is None:
                continue  # a version we do not serve: skip, try the next
        elif "as" in params or "g" in params:
            continue  # some other typed form (e.g. Table): not ours to answer
        ranked.append((-q, index, choice))
    if not ranked:
        return None
    ranked.sort(key=lambda r: (r[0], r[1]))
    return ranked[0][2]


def wants_aggregated(accept: str | None) -> bool:
    """Whether the Accept header asks for aggregated discovery (v2 or v2beta1)."""
    return negotiate_aggregated(accept) is not None


def aggregated_content_type(accept: str | None) -> str:
    """The aggregated media type to answer with (v2 when the header names none we serve)."""
    return negotiate_aggregated(accept) or AGGREGATED_V2


def aggregated_api_version(media_type: str) -> str:
    """`apidiscovery.k8s.io/v2` or `/v2beta1`, matching the negotiated media type."""
    _, params = _parse_media_range(media_type)
    return f"apidiscovery.k8s.io/{params.get('v', 'v2')}"


def _response_kind(rt: ResourceType, sub: Subresource | None = None) -> dict[str, str]:
    if sub is None:
        return {"group": rt.group, "version": rt.version, "kind": rt.kind}
    return {
        "group": sub.group if sub.group else rt.group,
        "version": sub.version if sub.version else rt.version,
        "kind": sub.kind,
    }


def _aggregated_resource(rt: ResourceType) -> dict[str, Any]:
    res: dict[str, Any] = {
        "resource": rt.plural,
        "responseKind": _response_kind(rt),
        "scope": "Namespaced" if rt.namespaced else "Cluster",
        "singularResource": rt.singular_name,
        "verbs": list(rt.verbs),
    }
    if rt.short_names:
        res["shortNames"] = list(rt.short_names)
    if rt.categories:
        res["categories"] = list(rt.categories)
    if rt.subresources:
        res["subresources"] = [
            {
                "subresource": s.name,
                "responseKind": _response_kind(rt, s),
                "verbs": list(s.verbs),
            }
            for s in sorted(rt.subresources, key=lambda s: s.name)
        ]
    return res


def aggregated(
    registry: Registry,
    core: bool,
    api_version: str = "v2",
    *,
    content_type: str | None = None,
) -> dict[str, Any]:
    """`APIGroupDiscoveryList` for `/api` (`core=True`) or `/apis` (named groups).

    `api_version` is `v2` or `v2beta1` (or pass the negotiated `content_type`, which
    wins); the two shapes are identical for what we serve, but the body's apiVersion
    must match the content type. Versions are listed preferred first, resources sorted
    by name as the apiserver does.
    """
    if content_type:
        api_version = aggregated_api_version(content_type).rpartition("/")[2]
    items: list[dict[str, Any]] = []
    for group, versions in registry.groups():
        if (group == "") != core:
            continue
        items.append(
            {
                "metadata": {"name": group, "creationTimestamp": None},
                "versions": [
                    {
                        "version": version,
                        "resources": [
                            _aggregated_resource(rt)
                            for rt in sorted(
                                registry.in_group_version(group, version), key=lambda r: r.plural
                            )
                        ],
                        "freshness": "Current",
                    }
                    for version in versions
                ],
            }
        )
    return {
        "kind": "APIGroupDiscoveryList",
        "apiVersion": f"apidiscovery.k8s.io/{api_version}",
        "metadata": {},
        "items": items,
    }


def api_versions(server_address: str) -> dict[str, Any]:
    """Legacy `GET /api`: `APIVersions` naming only `v1`."""
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [
            {"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}
        ],
    }


def _group_entry(group: str, versions: list[str]) -> dict[str, Any]:
    gvs = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
    return {"name": group, "versions": gvs, "preferredVersion": gvs[0]}


def api_group_list(registry: Registry) -> dict[str, Any]:
    """Legacy `GET /apis`: `APIGroupList` of every named group, preferred version first."""
    return {
        "kind": "APIGroupList",
        "apiVersion": "v1",
        "groups": [_group_entry(g, vs) for g, vs in registry.groups() if g],
    }


def api_group(registry: Registry, group: str) -> dict[str, Any] | None:
    """`GET /apis/<group>`: one `APIGroup`, or None when the group is not served (404)."""
    for g, versions in registry.groups():
        if g == group and g:
            return {"kind": "APIGroup", "apiVersion": "v1", **_group_entry(g, versions)}
    return None


def storage_version_hash(group: str, version: str, kind: str) -> str:
    """The apiserver's opaque `storageVersionHash`: base64 of 8 bytes of sha256(g/v/k).

    Clients only compare it for equality (the storage migrator), so any stable value
    would do; this is the upstream recipe.
    """
    digest = hashlib.sha256(f"{group}/{version}/{kind}".encode()).digest()
    return base64.b64encode(digest[:8]).decode()


def api_resource_list(registry: Registry, group: str, version: str) -> dict[str, Any] | None:
    """`GET /api/v1` or `/apis/<g>/<v>`: `APIResourceList`, or None when not served.

    Subresources are their own entries (`pods/log`) with an empty singularName, and a
    `group`/`version` only when their kind lives elsewhere (`deployments/scale` answers
    an `autoscaling/v1` Scale), as the real apiserver lists them.
    """
    rts = sorted(registry.in_group_version(group, version), key=lambda r: r.plural)
    if not rts:
        return None
    resources: list[dict[str, Any]] = []
    for rt in rts:
        entry: dict[str, Any] = {
            "name": rt.plural,
            "singularName": rt.singular_name,
            "namespaced": rt.namespaced,
            "kind": rt.kind,
            "verbs": list(rt.verbs),
        }
        if rt.short_names:
            entry["shortNames"] = list(rt.short_names)
        if rt.categories:
            entry["categories"] = list(rt.categories)
        if "get" in rt.verbs or "list" in rt.verbs:
            # Only stored kinds have one; the create-only reviews do not.
            entry["storageVersionHash"] = storage_version_hash(rt.group, rt.version, rt.kind)
        resources.append(entry)
        for sub in sorted(rt.subresources, key=lambda s: s.name):
            sub_entry: dict[str, Any] = {
                "name": f"{rt.plural}/{sub.name}",
                "singularName": "",
                "namespaced": rt.namespaced,
                "kind": sub.kind,
                "verbs": list(sub.verbs),
            }
            if sub.group or sub.version:
                sub_entry["group"] = sub.group
                sub_entry["version"] = sub.version or rt.version
            resources.append(sub_entry)
    gv = f"{group}/{version}" if group else version
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": gv,
        "resources": resources,
    }
