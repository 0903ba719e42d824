"""CustomResourceDefinitions: turn a stored CRD into served resource types.

When a CRD is written, its served versions join the registry (so discovery, CRUD and
watch work for the custom resource at once) and its status says Established, as the
real apiserver's CRD controllers do.
"""

from __future__ import annotations

from typing import Any

from podnet.api.resources import Registry, ResourceType, Subresource

CLEANUP_FINALIZER = "customresourcecleanup.apiextensions.k8s.io"


def add_cleanup_finalizer(crd: dict[str, Any]) -> dict[str, Any]:
    fins = crd["metadata"].setdefault("finalizers", [])
    if CLEANUP_FINALIZER not in fins:
        fins.append(CLEANUP_FINALIZER)
    return crd


def remove_cleanup_finalizer(crd: dict[str, Any]) -> dict[str, Any]:
    fins = [f for f in crd["metadata"].get("finalizers") or [] if f != CLEANUP_FINALIZER]
    if fins:
        crd["metadata"]["finalizers"] = fins
    else:
        crd["metadata"].pop("finalizers", None)
    return crd


def drop_finalizers(obj: dict[str, Any]) -> dict[str, Any]:
    obj["metadata"].pop("finalizers", None)
    return obj


def resource_types(crd: dict[str, Any]) -> list[ResourceType]:
    spec = crd.get("spec") or {}
    names = spec.get("names") or {}
    group = spec.get("group", "")
    namespaced = spec.get("scope", "Namespaced") == "Namespaced"
    result = []
    versions = [v for v in spec.get("versions") or [] if v.get("served", True)]
    # The storage version first, then the rest in the order given.
    versions.sort(key=lambda v: 0 if v.get("storage") else 1)
    for v in versions:
        subs: list[Subresource] = []
        vsubs = v.get("subresources") or {}
        if "status" in vsubs:
            subs.append(Subresource("status", names.get("kind", ""), ("get", "patch", "update")))
        if "scale" in vsubs:
            subs.append(Subresource("scale", "Scale", ("get", "patch", "update"),
                                    group="autoscaling", version="v1"))
        result.append(
            ResourceType(
                group=group,
                version=v.get("name", ""),
                kind=names.get("kind", ""),
                plural=names.get("plural", ""),
                namespaced=namespaced,
                short_names=tuple(names.get("shortNames") or ()),
                categories=tuple(names.get("categories") or ()),
                subresources=tuple(subs),
                structured=False,
                singular=names.get("singular", ""),
            )
        )
    return result


def printer_columns(crd: dict[str, Any]) -> dict[tuple[str, str, str], list[dict[str, Any]]]:
    spec = crd.get("spec") or {}
    group = spec.get("group", "")
    plural = (spec.get("names") or {}).get("plural", "")
    out = {}
    for v in spec.get("versions") or []:
        cols = v.get("additionalPrinterColumns")
        if cols:
            out[(group, v.get("name", ""), plural)] = cols
    return out


def register(registry: Registry, crd: dict[str, Any]) -> None:
    spec = crd.get("spec") or {}
    group = spec.get("group", "")
    plural = (spec.get("names") or {}).get("plural", "")
    registry.remove_group_resource(group, plural)
    for rt in resource_types(crd):
        if registry.get(rt.group, rt.version, rt.plural) is None:
            registry.add(rt)


def unregister(registry: Registry, crd: dict[str, Any]) -> None:
    spec = crd.get("spec") or {}
    registry.remove_group_resource(spec.get("group", ""),
                                   (spec.get("names") or {}).get("plural", ""))


def established_status(crd: dict[str, Any], now: str) -> dict[str, Any]:
    names = (crd.get("spec") or {}).get("names") or {}
    accepted = dict(names)
    accepted.setdefault("singular", names.get("kind", "").lower())
    accepted.setdefault("listKind", names.get("kind", "") + "List")
    return {
        "acceptedNames": accepted,
        "conditions": [
            {"type": "NamesAccepted", "status": "True", "lastTransitionTime": now,
             "reason": "NoConflicts", "message": "no conflicts found"},
            {"type": "Established", "status": "True", "lastTransitionTime": now,
             "reason": "InitialNamesAccepted", "message": "the initial names have been accepted"},
        ],
        "storedVersions": [v.get("name") for v in (crd.get("spec") or {}).get("versions") or []
                           if v.get("storage")],
    }
